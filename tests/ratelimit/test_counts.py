"""The limiter's per-key counter (private.rate_limit_counts) never drifts from the events.

A take reads the counter instead of counting the window, so every path that
inserts or deletes events must move it by exactly the rows it touched: takes,
expiries, refusals, the purge, the batched cleanup, concurrent takers, and the
events already present when the counter was introduced.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from workers.db import migrations
from workers.settings import PROJECT_ROOT

TAKE = "select allowed, remaining, retry_after_seconds from private.rate_limit_take(%s, %s, %s::interval, %s)"
COUNTER_MIGRATION = "20261207130000"


def counted(conn: psycopg.Connection[Any], key: str) -> tuple[int | None, int]:
    """(the key's counter, or None without a row; the key's event rows)."""
    row = conn.execute(
        "select (select used from private.rate_limit_counts where key = %(k)s),"
        " (select count(*)::integer from private.rate_limit_events where key = %(k)s)",
        {"k": key},
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def take(conn: psycopg.Connection[Any], key: str, limit: int, window: str, cost: int = 1) -> tuple[Any, ...]:
    row = conn.execute(TAKE, (key, limit, window, cost)).fetchone()
    assert row is not None
    return tuple(row)


def forget(conn: psycopg.Connection[Any], key: str) -> None:
    """Remove a committed key from the shared database, counter included."""
    conn.execute("delete from private.rate_limit_events where key = %s", (key,))
    conn.execute("delete from private.rate_limit_counts where key = %s", (key,))


def test_takes_refusals_and_expiry_move_the_counter_by_exactly_the_rows(db):
    db.autocommit = True  # each take is its own transaction, as in production
    key = f"count:{time.time_ns()}"
    try:
        assert take(db, key, 3, "1 second", 2)[:2] == (True, 1)
        assert counted(db, key) == (2, 2)
        # cost above what remains: refused, nothing counted
        assert take(db, key, 3, "1 second", 2)[:2] == (False, 1)
        assert counted(db, key) == (2, 2)
        time.sleep(0.6)
        assert take(db, key, 3, "1 second", 1)[:2] == (True, 0)
        assert counted(db, key) == (3, 3)
        time.sleep(0.5)  # the first two left the window, the third has not
        # refused (1 + 3 > 3) while expiring two rows: the counter drops by those two only
        refused = take(db, key, 3, "1 second", 3)
        assert refused[:2] == (False, 2) and refused[2] >= 1
        assert counted(db, key) == (1, 1)
        assert take(db, key, 3, "1 second", 2)[:2] == (True, 0)
        assert counted(db, key) == (3, 3)
    finally:
        forget(db, key)


@pytest.mark.parametrize(
    ("key", "limit", "window", "cost"),
    [
        (None, 1, "1 hour", 1),
        ("", 1, "1 hour", 1),
        ("k" * 201, 1, "1 hour", 1),
        ("bad", -1, "1 hour", 1),
        ("bad", 1, "0 seconds", 1),
        ("bad", 3, "1 hour", 0),
        ("bad", 3, "1 hour", 4),
        ("bad", 3, "1 hour", None),
    ],
)
def test_bad_input_is_refused_and_leaves_counter_and_events_alone(db, key, limit, window, cost):
    take(db, "bad", 3, "1 hour", 2)
    db.execute("savepoint before_bad")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute(TAKE, (key, limit, window, cost))
    db.execute("rollback to savepoint before_bad")
    assert counted(db, "bad") == (2, 2)


def test_purge_lowers_counters_by_what_it_deleted_and_drops_idle_keys(db):
    for _ in range(3):
        take(db, "idle", 10, "1 hour")
    for _ in range(2):
        take(db, "busy", 10, "1 hour")
    take(db, "recent", 10, "1 hour")
    # Moving events back in time keeps their number: as if the hours had passed.
    db.execute("update private.rate_limit_events set at = at - interval '2 days' where key = 'idle'")
    db.execute(
        "update private.rate_limit_events set at = at - interval '2 days'"
        " where id = (select min(id) from private.rate_limit_events where key = 'busy')"
    )
    db.execute("delete from private.rate_limit_events where key not in ('idle', 'busy', 'recent')")
    db.execute("delete from private.rate_limit_counts where key not in ('idle', 'busy', 'recent')")

    assert db.execute("select private.rate_limit_purge()").fetchone() == (4,)
    assert counted(db, "idle") == (None, 0)
    assert counted(db, "busy") == (1, 1)
    assert counted(db, "recent") == (1, 1)
    # the next take of a key whose counter was dropped starts from its (zero) events
    assert take(db, "idle", 3, "1 hour")[:2] == (True, 2)
    assert counted(db, "idle") == (1, 1)


def test_cleanup_batches_lower_counters_and_drop_emptied_keys(db):
    db.execute("delete from private.rate_limit_events")
    db.execute("delete from private.rate_limit_counts")
    for _ in range(3):
        take(db, "old", 10, "1 hour")
    take(db, "new", 10, "1 hour")
    db.execute("update private.rate_limit_events set at = at - interval '3 days' where key = 'old'")

    assert len(db.execute("select * from private.cleanup_rate_limit_events(10, true)").fetchall()) == 3
    assert counted(db, "old") == (3, 3)  # a dry run changes nothing
    items = db.execute("select * from private.cleanup_rate_limit_events(2, false)").fetchall()
    assert len(items) == 2 and all(i[0].startswith("rate limit event ") and "(old at " in i[0] for i in items)
    assert counted(db, "old") == (1, 1)
    assert len(db.execute("select * from private.cleanup_rate_limit_events(2, false)").fetchall()) == 1
    assert counted(db, "old") == (None, 0)
    assert counted(db, "new") == (1, 1)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("select * from private.cleanup_rate_limit_events(0, false)")


def test_a_drifted_counter_is_dropped_by_the_purge_and_recounted(db):
    for _ in range(2):
        take(db, "drifted", 10, "1 hour")
    # e.g. rows edited by hand: the counter no longer matches the events
    db.execute("update private.rate_limit_counts set used = -1 where key = 'drifted'")
    db.execute("select private.rate_limit_purge()")
    assert counted(db, "drifted") == (None, 2)
    assert take(db, "drifted", 3, "1 hour")[:2] == (True, 0)
    assert counted(db, "drifted") == (3, 3)


def test_concurrent_takers_and_purges_keep_the_counter_exact(clone_url):
    """Takers on several connections (expiring each other's events) and a purge, on one key."""
    key = "user:1:concurrent"
    stop = time.monotonic() + 2.0
    errors: list[BaseException] = []
    admitted = [0]
    lock = threading.Lock()

    def taker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(clone_url, autocommit=True) as conn:
                while time.monotonic() < stop:
                    cost = rng.randint(1, 3)
                    if take(conn, key, 6, "0.2 seconds", cost)[0]:
                        with lock:
                            admitted[0] += cost
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def purger() -> None:
        try:
            with psycopg.connect(clone_url, autocommit=True) as conn:
                while time.monotonic() < stop:
                    conn.execute("select private.rate_limit_purge('0.3 seconds')")
                    time.sleep(0.05)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=taker, args=(seed,)) for seed in range(6)]
    threads.append(threading.Thread(target=purger))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert admitted[0] > 6  # the window slid: more than one window's worth got through
    with psycopg.connect(clone_url) as conn:
        used, events = counted(conn, key)
        assert events <= 6
        # a key whose events all went has no counter row once a purge ran, else the row matches
        assert used == events or (used is None and events == 0)


def test_counter_of_fifty_simultaneous_takes_matches_the_ten_admitted(clone_url):
    barrier = threading.Barrier(50)

    def request() -> None:
        with psycopg.connect(clone_url, autocommit=True) as conn:
            barrier.wait()
            take(conn, "user:1:burst", 10, "1 hour")

    threads = [threading.Thread(target=request) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(clone_url) as conn:
        assert counted(conn, "user:1:burst") == (10, 10)
        assert take(conn, "user:1:burst", 10, "1 hour")[:2] == (False, 0)


def test_events_present_before_the_counter_migration_are_counted(make_database, tmp_path: Path):
    """A live database upgraded with events in its windows: they still count after the migration."""
    folder = tmp_path / "migrations"
    shutil.copytree(PROJECT_ROOT / "migrations", folder)
    later = sorted(p for p in folder.iterdir() if p.name >= COUNTER_MIGRATION)
    assert later and later[0].name.startswith(COUNTER_MIGRATION)
    held = tmp_path / "held"
    held.mkdir()
    for p in later:
        p.rename(held / p.name)
    url = make_database(migrated=False)
    migrations.migrate(url, folder)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select to_regclass('private.rate_limit_counts')").fetchone() == (None,)
        for _ in range(3):  # the limiter as it was: events only
            take(conn, "before", 5, "1 hour")
        take(conn, "expired", 5, "1 hour")
        conn.execute(
            "update private.rate_limit_events set at = at - interval '2 hours' where key = 'expired'"
        )

    for p in later:
        (held / p.name).rename(folder / p.name)
    migrations.migrate(url, folder)
    with psycopg.connect(url, autocommit=True) as conn:
        assert take(conn, "before", 5, "1 hour", 2)[:2] == (True, 0)
        assert counted(conn, "before") == (5, 5)
        assert take(conn, "before", 5, "1 hour")[0] is False
        assert take(conn, "expired", 1, "1 hour")[:2] == (True, 0)  # its old event expired, uncounted
        assert counted(conn, "expired") == (1, 1)


def test_read_only_check_refuses_exactly_the_full_window(db):
    """rate_limit_check trusts a counter under the limit and counts the window otherwise."""
    check = "select private.rate_limit_check(%s, %s, '1 hour')"
    for _ in range(3):
        take(db, "reader", 10, "1 hour")
    db.execute("savepoint filled")
    db.execute(check, ("reader", 4))  # counter 3 < 4: passes
    with pytest.raises(psycopg.Error) as refused:
        db.execute(check, ("reader", 3))  # counter 3 at the limit, all 3 in the window
    assert refused.value.sqlstate == "PT429"
    assert refused.value.diag.message_hint.startswith("Retry after ")
    db.execute("rollback to savepoint filled")
    # Two expired but not yet deleted: the counter (3) is over the limit, the window (1) is not.
    db.execute(
        "update private.rate_limit_events set at = at - interval '2 hours'"
        " where id in (select id from private.rate_limit_events where key = 'reader' order by id limit 2)"
    )
    db.execute(check, ("reader", 2))
    with pytest.raises(psycopg.Error) as refused:
        db.execute(check, ("reader", 1))
    assert refused.value.sqlstate == "PT429"
    db.execute("rollback to savepoint filled")
    # A key without a counter row (events from before the counter) is counted from its events.
    db.execute("delete from private.rate_limit_counts where key = 'reader'")
    with pytest.raises(psycopg.Error) as refused:
        db.execute(check, ("reader", 3))
    assert refused.value.sqlstate == "PT429"
