"""The queue's and the rate limiter's cleanup functions delete exactly what they should."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def add_job(
    db: psycopg.Connection[Any], status: str, finished_days_ago: float | None, created_days_ago: float = 40
) -> uuid.UUID:
    row = db.execute(
        "insert into public.jobs"
        " (kind, payload, status, attempts, finished_at, created_at, locked_by, locked_until)"
        " values ('echo', %s, %s, 1,"
        " case when %s::float8 is null then null else now() - make_interval(secs => %s * 86400) end,"
        " now() - make_interval(secs => %s * 86400),"
        " case when %s = 'running' then 'w' end, case when %s = 'running' then now() end) returning id",
        (Jsonb({}), status, finished_days_ago, finished_days_ago, created_days_ago, status, status),
    ).fetchone()
    assert row
    return uuid.UUID(str(row[0]))


def remaining(db: psycopg.Connection[Any], ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {r[0] for r in db.execute("select id from public.jobs where id = any(%s)", (ids,)).fetchall()}


def test_cleanup_jobs_deletes_exactly_the_expired_finished_jobs(db: psycopg.Connection[Any]) -> None:
    expired = [add_job(db, "succeeded", 8), add_job(db, "failed", 31), add_job(db, "dead", 31)]
    kept = [
        add_job(db, "succeeded", 6),
        add_job(db, "failed", 20),
        add_job(db, "dead", 29),
        add_job(db, "queued", None),
        add_job(db, "running", None),
    ]
    everything = expired + kept

    dry = [r[0] for r in db.execute("select item from private.cleanup_jobs(100, true)").fetchall()]
    assert len(dry) == 3 and all(str(j) in " ".join(dry) for j in expired)
    assert remaining(db, everything) == set(everything)  # dry run deleted nothing

    first = db.execute("select item from private.cleanup_jobs(2, false)").fetchall()
    second = db.execute("select item from private.cleanup_jobs(2, false)").fetchall()
    third = db.execute("select item from private.cleanup_jobs(2, false)").fetchall()
    assert (len(first), len(second), len(third)) == (2, 1, 0)  # bounded batches, then idempotent
    assert remaining(db, everything) == set(kept)


def test_cleanup_rate_limit_events_keeps_recent_windows(db: psycopg.Connection[Any]) -> None:
    db.execute("delete from private.rate_limit_events")
    db.execute(
        "insert into private.rate_limit_events (key, at) values"
        " ('old', now() - interval '3 days'), ('old', now() - interval '50 hours'),"
        " ('recent', now() - interval '23 hours'), ('recent', now())"
    )
    assert len(db.execute("select * from private.cleanup_rate_limit_events(10, true)").fetchall()) == 2
    assert db.execute("select count(*) from private.rate_limit_events").fetchone() == (4,)
    items = [
        r[0] for r in db.execute("select * from private.cleanup_rate_limit_events(10, false)").fetchall()
    ]
    assert len(items) == 2 and all("(old at" in i for i in items)
    assert db.execute("select key, count(*) from private.rate_limit_events group by key").fetchall() == [
        ("recent", 2)
    ]


def test_cleanups_are_service_role_only(db: psycopg.Connection[Any], make_user: Any) -> None:
    from tests.helpers import act_as

    add_job(db, "succeeded", 8)
    for role, user in (("anon", None), ("authenticated", make_user())):
        for call in (
            "select * from private.cleanup_jobs(10, false)",
            "select * from public.run_cleanup('jobs', 10, false)",
        ):
            with act_as(db, user, role) as cur:
                try:
                    cur.execute(call)
                except psycopg.errors.InsufficientPrivilege:
                    continue
                raise AssertionError(f"{role} could run {call}")
    with act_as(db, None, "service_role") as cur:
        assert len(cur.execute("select * from public.run_cleanup('jobs', 10, false)").fetchall()) == 1
