"""The SQL queue functions: claim, complete, fail with backoff, dead letters, leases, privileges."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.helpers import act_as

LEASE = timedelta(seconds=30)


def enqueue(
    db: psycopg.Connection[Any],
    kind: str = "echo",
    payload: dict[str, Any] | None = None,
    priority: int = 0,
    run_after: str = "now()",
) -> uuid.UUID:
    row = db.execute(
        f"select private.job_enqueue(%s, %s, null, {run_after}, %s)", (kind, Jsonb(payload or {}), priority)
    ).fetchone()
    assert row
    return uuid.UUID(str(row[0]))


def claim(
    db: psycopg.Connection[Any], worker: str = "w1", kinds: list[str] | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from private.job_claim(%s, %s, %s, %s)", (worker, kinds, limit, LEASE)
        ).fetchall()


def job(db: psycopg.Connection[Any], job_id: uuid.UUID) -> dict[str, Any]:
    with db.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from public.jobs where id = %s", (job_id,)).fetchone()
    assert row
    return row


def test_claim_then_complete(db: psycopg.Connection[Any]) -> None:
    job_id = enqueue(db, payload={"n": 1})
    claimed = claim(db)
    assert [r["id"] for r in claimed] == [job_id]
    assert claimed[0]["status"] == "running" and claimed[0]["attempts"] == 1
    assert claimed[0]["locked_by"] == "w1" and claimed[0]["locked_until"] is not None
    assert claim(db, "w2") == []  # nobody else gets it
    db.execute("select private.job_complete(%s, 'w1', %s)", (job_id, Jsonb({"ok": True})))
    row = job(db, job_id)
    assert row["status"] == "succeeded" and row["result"] == {"ok": True}
    assert row["finished_at"] is not None and row["locked_by"] is None and row["locked_until"] is None


def test_claim_filters_kinds_orders_by_priority_and_skips_future_jobs(db: psycopg.Connection[Any]) -> None:
    low = enqueue(db, priority=0)
    high = enqueue(db, priority=5)
    later = enqueue(db, priority=10, run_after="now() + interval '1 hour'")
    other = enqueue(db, "cleanup", priority=9)
    assert [r["id"] for r in claim(db, kinds=["echo"], limit=1)] == [high]
    assert [r["id"] for r in claim(db, kinds=["echo"])] == [low]
    assert job(db, later)["status"] == "queued"
    assert job(db, other)["status"] == "queued"
    assert [r["id"] for r in claim(db, kinds=None)] == [other]


def test_only_the_lease_holder_completes_and_a_refusal_changes_nothing(db: psycopg.Connection[Any]) -> None:
    job_id = enqueue(db)
    claim(db, "w1")
    before = job(db, job_id)
    refused = pytest.raises(psycopg.Error, match="not running under")
    with refused as err, db.transaction():
        db.execute("select private.job_complete(%s, 'intruder', '{}')", (job_id,))
    assert err.value.sqlstate == "PT409"  # the lease is lost: HTTP 409 through the RPC wrappers
    assert job(db, job_id) == before


def test_failures_back_off_exponentially_then_dead_letter(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "update public.job_kinds set max_attempts = 3, backoff_base = '10 seconds' where kind = 'echo'"
    )
    job_id = enqueue(db)
    now = db.execute("select now()").fetchone()[0]  # type: ignore[index]
    delays = []
    for attempt in (1, 2, 3):
        db.execute("update public.jobs set run_after = now() - interval '1 second' where id = %s", (job_id,))
        assert [r["attempts"] for r in claim(db)] == [attempt]
        status = db.execute("select private.job_fail(%s, 'w1', %s)", (job_id, f"boom {attempt}")).fetchone()
        row = job(db, job_id)
        assert row["last_error"] == f"boom {attempt}"
        if attempt < 3:
            assert status == ("queued",) and row["finished_at"] is None
            delays.append(row["run_after"] - now)
    assert delays == [timedelta(seconds=10), timedelta(seconds=20)]
    row = job(db, job_id)
    assert status == ("dead",) and row["status"] == "dead" and row["finished_at"] is not None
    assert claim(db) == []  # parked, never claimed again by itself

    db.execute("select private.job_retry(%s)", (job_id,))
    row = job(db, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["finished_at"] is None
    refused = pytest.raises(psycopg.Error, match="only dead or failed")
    with refused as err, db.transaction():
        db.execute("select private.job_retry(%s)", (job_id,))
    assert err.value.sqlstate == "PT409"


def test_backoff_is_capped(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "update public.job_kinds set max_attempts = 50, backoff_base = '1 minute',"
        " backoff_max = '5 minutes' where kind = 'echo'"
    )
    job_id = enqueue(db)
    db.execute("update public.jobs set attempts = 20 where id = %s", (job_id,))
    claim(db)
    db.execute("select private.job_fail(%s, 'w1', 'x')", (job_id,))
    delay = db.execute("select run_after - now() from public.jobs where id = %s", (job_id,)).fetchone()
    assert delay == (timedelta(minutes=5),)


def test_permanent_failure_is_parked_as_failed_at_once(db: psycopg.Connection[Any]) -> None:
    job_id = enqueue(db)
    claim(db)
    assert db.execute("select private.job_fail(%s, 'w1', 'not an image', false)", (job_id,)).fetchone() == (
        "failed",
    )
    row = job(db, job_id)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["finished_at"] is not None


def test_expired_lease_goes_back_to_the_queue_or_dead(db: psycopg.Connection[Any]) -> None:
    db.execute("update public.job_kinds set max_attempts = 2 where kind = 'echo'")
    job_id = enqueue(db)
    claim(db, "crashed")
    db.execute("update public.jobs set locked_until = now() - interval '1 second' where id = %s", (job_id,))
    taken = claim(db, "w2")
    assert [(r["id"], r["locked_by"], r["attempts"]) for r in taken] == [(job_id, "w2", 2)]
    assert "lease expired" in taken[0]["last_error"]
    db.execute("update public.jobs set locked_until = now() - interval '1 second' where id = %s", (job_id,))
    assert claim(db, "w3") == []
    row = job(db, job_id)
    assert row["status"] == "dead" and "lease expired" in row["last_error"]


def test_heartbeat_extends_only_the_holders_lease(db: psycopg.Connection[Any]) -> None:
    job_id = enqueue(db)
    claim(db, "w1")
    until = db.execute("select private.job_heartbeat(%s, 'w1', '10 minutes')", (job_id,)).fetchone()
    assert job(db, job_id)["locked_until"] == until[0]  # type: ignore[index]
    with pytest.raises(psycopg.Error) as err, db.transaction():
        db.execute("select private.job_heartbeat(%s, 'w2', '10 minutes')", (job_id,))
    assert err.value.sqlstate == "PT409"


def test_release_hands_the_job_back_without_counting_the_attempt(db: psycopg.Connection[Any]) -> None:
    job_id = enqueue(db)
    claim(db, "w1")
    db.execute("select private.job_release(%s, 'w1')", (job_id,))
    row = job(db, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None


@pytest.mark.parametrize(
    ("kind", "payload", "error"),
    [("no_such_kind", {}, "unknown job kind"), ("echo", [1, 2], "must be a JSON object")],
)
def test_bad_enqueue_is_rejected_and_inserts_nothing(
    db: psycopg.Connection[Any], kind: str, payload: Any, error: str
) -> None:
    before = db.execute("select count(*) from public.jobs").fetchone()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=error), db.transaction():
        db.execute("select private.job_enqueue(%s, %s)", (kind, Jsonb(payload)))
    assert db.execute("select count(*) from public.jobs").fetchone() == before


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize("schema", ["private", "public"])
def test_api_users_cannot_touch_the_queue_functions(
    db: psycopg.Connection[Any], make_user: Any, role: str, schema: str
) -> None:
    user = make_user() if role == "authenticated" else None
    job_id = enqueue(db)
    for call in (
        f"select * from {schema}.job_claim('x', null, 1, '1 minute')",
        f"select {schema}.job_enqueue('echo', '{{}}')",
        f"select {schema}.job_retry('{job_id}')",
    ):
        with act_as(db, user, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute(call)
    assert job(db, job_id)["status"] == "queued"


def test_service_role_uses_the_public_wrappers(db: psycopg.Connection[Any]) -> None:
    job_id = enqueue(db)
    with act_as(db, None, "service_role") as cur:
        rows = cur.execute("select id from public.job_claim('svc', array['echo'], 5, '1 minute')").fetchall()
        assert rows == [(job_id,)]
        cur.execute("select public.job_complete(%s, 'svc', '{\"done\": 1}')", (job_id,))
        assert cur.execute("select status from public.jobs where id = %s", (job_id,)).fetchone() == (
            "succeeded",
        )


def test_jobs_are_in_the_realtime_publication(db: psycopg.Connection[Any]) -> None:
    row = db.execute(
        "select 1 from pg_publication_tables where pubname = 'supabase_realtime'"
        " and schemaname = 'public' and tablename = 'jobs'"
    ).fetchone()
    assert row == (1,)


def test_enqueue_notifies_listeners(clone_url: str) -> None:
    with (
        psycopg.connect(clone_url, autocommit=True) as listener,
        psycopg.connect(clone_url, autocommit=True) as db,
    ):
        listener.execute("listen backline_jobs")
        db.execute("select private.job_enqueue('echo', '{}')")
        db.execute("select private.job_enqueue('cleanup', '{}', null, now() + interval '1 hour')")
        notes = [n.payload for n in listener.notifies(timeout=2, stop_after=2)]
    assert notes == ["echo"]  # the future job wakes nobody
