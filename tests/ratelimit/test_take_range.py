"""A take deletes only the events that left the window since its key's last take.

Deleted events stay in the (key, at) index until vacuum. A take that deleted
`at <= cutoff` walked all of them, so a hot key's takes grew slower until the
next vacuum. private.rate_limit_counts.purged_until (the last take's cutoff)
bounds the delete; these tests prove the bound is used, that every way of
losing it (no counter row, a longer window) falls back to the whole key, and
that the counter stays exact throughout.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tests.ratelimit.test_counts import counted, take

EVENTS_READ = (
    "select pg_stat_get_xact_tuples_returned('private.rate_limit_events_key_at_idx'::regclass)"
    " + pg_stat_get_xact_tuples_returned('private.rate_limit_events'::regclass)"
)


def purged_until(conn: psycopg.Connection[Any], key: str) -> datetime | None:
    row = conn.execute("select purged_until from private.rate_limit_counts where key = %s", (key,)).fetchone()
    assert row is not None
    value: datetime | None = row[0]
    return value


def old_events(conn: psycopg.Connection[Any], key: str, n: int, age: str) -> None:
    """n events of `key` older than `age`, counted, as if taken long ago."""
    conn.execute(
        "insert into private.rate_limit_events (key, at)"
        " select %s, clock_timestamp() - %s::interval - g * interval '1 ms' from generate_series(1, %s) g",
        (key, age, n),
    )
    conn.execute(
        "insert into private.rate_limit_counts as c (key, used) values (%s, %s)"
        " on conflict (key) do update set used = c.used + excluded.used",
        (key, n),
    )


def events_read(conn: psycopg.Connection[Any], key: str, limit: int, window: str) -> int:
    """Index entries and rows of the events table a take of `key` reads."""
    before = conn.execute(EVENTS_READ).fetchone()
    take(conn, key, limit, window)
    after = conn.execute(EVENTS_READ).fetchone()
    assert before is not None and after is not None
    return int(after[0] - before[0])


def test_a_take_reads_none_of_the_events_earlier_takes_deleted(db):
    # The index path, as a hot key's table gets it; on this test's nearly empty table the
    # planner may scan the heap instead, whose reads these counters do not show.
    db.execute("set local enable_seqscan = off")
    old_events(db, "hot", 500, "2 hours")
    assert events_read(db, "hot", 1000, "1 hour") >= 500  # the first take deletes all 500
    assert counted(db, "hot") == (1, 1)
    # The 500 deleted entries are still in the index; the next takes go past them.
    for _ in range(3):
        assert events_read(db, "hot", 1000, "1 hour") == 0
    assert counted(db, "hot") == (4, 4)


def test_each_take_records_its_cutoff(db):
    started = db.execute("select clock_timestamp()").fetchone()[0]
    take(db, "cut", 10, "1 hour")
    finished = db.execute("select clock_timestamp()").fetchone()[0]
    cutoff = purged_until(db, "cut")
    assert cutoff is not None
    assert started - timedelta(hours=1) <= cutoff <= finished - timedelta(hours=1)
    # a refusal that expires nothing leaves it
    assert take(db, "cut", 1, "1 hour")[0] is False
    assert purged_until(db, "cut") == cutoff
    # a refusal that expires an event moves it: the first event leaves a 0.2 s window, the second stays
    time.sleep(0.3)
    take(db, "cut", 10, "1 hour")
    assert take(db, "cut", 1, "0.2 seconds")[:2] == (False, 0)
    assert counted(db, "cut") == (1, 1)
    moved = purged_until(db, "cut")
    assert moved is not None and moved > cutoff + timedelta(minutes=59)


def test_events_at_or_before_the_last_cutoff_are_not_visited(db):
    take(db, "bound", 10, "1 hour")
    cutoff = purged_until(db, "bound")
    # A probe row below the recorded cutoff, which no take can create: it shows which
    # range the next delete covers. The old whole-key delete would remove it.
    db.execute(
        "insert into private.rate_limit_events (key, at) values ('bound', %s - interval '1 minute')",
        (cutoff,),
    )
    db.execute("update private.rate_limit_counts set used = used + 1 where key = 'bound'")
    take(db, "bound", 10, "1 hour")
    assert counted(db, "bound") == (3, 3)


def test_a_longer_window_deletes_from_the_key_start(db):
    take(db, "grow", 10, "1 hour")
    cutoff = purged_until(db, "grow")
    assert cutoff is not None
    db.execute(
        "insert into private.rate_limit_events (key, at) values ('grow', %s - interval '3 hours')", (cutoff,)
    )
    db.execute("update private.rate_limit_counts set used = used + 1 where key = 'grow'")
    # window 2 hours: its cutoff is before the recorded one, so the whole key is scanned
    take(db, "grow", 10, "2 hours")
    assert counted(db, "grow") == (2, 2)
    new_cutoff = purged_until(db, "grow")
    assert new_cutoff is not None and new_cutoff < cutoff


def test_a_key_whose_counter_was_dropped_deletes_from_its_start(db):
    old_events(db, "dropped", 3, "2 hours")
    take(db, "dropped", 10, "1 hour")
    db.execute("delete from private.rate_limit_counts where key = 'dropped'")  # as the purge may
    old_events(db, "dropped", 2, "3 hours")
    db.execute("delete from private.rate_limit_counts where key = 'dropped'")
    assert take(db, "dropped", 10, "1 hour")[:2] == (True, 8)
    assert counted(db, "dropped") == (2, 2)
    assert purged_until(db, "dropped") is not None
