"""Users enqueue their own export/thumbnail jobs (RLS + rpc enqueue_job) within a per-plan daily limit."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as


def count_jobs(db: psycopg.Connection[Any], owner: uuid.UUID | None = None) -> int:
    row = db.execute(
        "select count(*) from public.jobs where owner_id is not distinct from %s", (owner,)
    ).fetchone()
    assert row
    return int(row[0])


def test_owner_enqueues_and_reads_their_job_stranger_cannot(
    db: psycopg.Connection[Any], make_user: Any
) -> None:
    owner, stranger = make_user(), make_user()
    with keep_as(db, owner) as cur:
        job_id = cur.execute("select public.enqueue_job('export', '{\"format\": \"zip\"}')").fetchone()[0]  # type: ignore[index]
    with act_as(db, owner) as cur:
        row = cur.execute("select kind, owner_id, status, priority from public.jobs where id = %s", (job_id,))
        assert row.fetchone() == ("export", owner, "queued", 0)
    with act_as(db, stranger) as cur:
        assert cur.execute("select id from public.jobs where id = %s", (job_id,)).fetchone() is None
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select id from public.jobs")
    with act_as(db, None, "service_role") as cur:
        assert cur.execute("select owner_id from public.jobs where id = %s", (job_id,)).fetchone() == (owner,)


def test_owner_inserts_allowed_kind_directly(db: psycopg.Connection[Any], make_user: Any) -> None:
    owner = make_user()
    with act_as(db, owner) as cur:
        cur.execute(
            "insert into public.jobs (kind, payload, owner_id) values ('thumbnail', '{}', %s)", (owner,)
        )
        assert cur.execute("select count(*) from public.jobs").fetchone() == (1,)


@pytest.mark.parametrize(
    ("columns", "values", "error"),
    [
        ("kind, owner_id", "'thumbnail', '{other}'", psycopg.errors.InsufficientPrivilege),  # someone else's
        ("kind, owner_id", "'cleanup', '{me}'", psycopg.errors.InsufficientPrivilege),  # not user-enqueueable
        ("kind, owner_id, priority", "'export', '{me}', 100", psycopg.errors.InsufficientPrivilege),
        ("kind, owner_id, status", "'export', '{me}', 'succeeded'", psycopg.errors.InsufficientPrivilege),
    ],
)
def test_users_cannot_insert_other_jobs(
    db: psycopg.Connection[Any], make_user: Any, columns: str, values: str, error: type[Exception]
) -> None:
    me, other = make_user(), make_user()
    query = f"insert into public.jobs ({columns}) values ({values.format(me=me, other=other)})"
    with act_as(db, me) as cur, pytest.raises(error):
        cur.execute(query)
    assert count_jobs(db, me) == 0 and count_jobs(db, other) == 0


def test_rpc_refuses_service_kinds_and_anon(db: psycopg.Connection[Any], make_user: Any) -> None:
    me = make_user()
    with (
        act_as(db, me) as cur,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot be enqueued"),
    ):
        cur.execute("select public.enqueue_job('erasure', '{}')")
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select public.enqueue_job('export', '{}')")
    with act_as(db, me) as cur, pytest.raises(psycopg.errors.CheckViolation):
        cur.execute("select public.enqueue_job('export', '[1]')")
    assert count_jobs(db, me) == 0


def test_users_cannot_change_claim_or_delete_jobs(db: psycopg.Connection[Any], make_user: Any) -> None:
    me = make_user()
    with keep_as(db, me) as cur:
        job_id = cur.execute("select public.enqueue_job('export')").fetchone()[0]  # type: ignore[index]
    for query in (
        "update public.jobs set status = 'succeeded' where id = %s",
        "delete from public.jobs where id = %s",
        "select * from private.job_claim('me', null, 1, '1 minute') where id = %s",
    ):
        with act_as(db, me) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute(query, (job_id,))
    assert db.execute("select status from public.jobs where id = %s", (job_id,)).fetchone() == ("queued",)


def test_daily_limit_follows_the_plan(db: psycopg.Connection[Any], make_user: Any) -> None:
    me = make_user()
    free_limit = db.execute("select exports_per_day from public.plans where id = 'free'").fetchone()[0]  # type: ignore[index]
    for _ in range(free_limit):
        with keep_as(db, me) as cur:
            cur.execute("select public.enqueue_job('export')")
    with act_as(db, me) as cur, pytest.raises(psycopg.Error, match="rate limit exceeded") as info:
        cur.execute("select public.enqueue_job('export')")
    assert info.value.sqlstate == "PT429"
    assert count_jobs(db, me) == free_limit
    # Another kind has its own limit; the service role is not limited.
    with act_as(db, me) as cur:
        cur.execute("select public.enqueue_job('thumbnail')")
    db.execute("select private.job_enqueue('export', '{}', %s)", (me,))
    assert count_jobs(db, me) == free_limit + 1
    # Upgrading raises the limit.
    db.execute("update public.profiles set plan = 'pro' where id = %s", (me,))
    with act_as(db, me) as cur:
        cur.execute("select public.enqueue_job('export')")


def test_rpcs_of_other_modules_enqueue_through_the_same_limit(
    db: psycopg.Connection[Any], make_user: Any
) -> None:
    """A definer RPC (like request_export / request_account_deletion) enqueueing during a user's request."""
    db.execute(
        "create function private.test_request(p_kind text) returns uuid language sql security definer"
        " set search_path = '' as $$ select private.job_enqueue(p_kind, '{}', (select auth.uid())) $$;"
        " grant execute on function private.test_request(text) to authenticated"
    )
    me = make_user()
    limit = db.execute("select exports_per_day from public.plans where id = 'free'").fetchone()[0]  # type: ignore[index]
    for _ in range(limit):
        with keep_as(db, me) as cur:
            cur.execute("select private.test_request('export')")
    with act_as(db, me) as cur, pytest.raises(psycopg.Error, match="rate limit exceeded"):
        cur.execute("select private.test_request('export')")
    # A kind without a plan limit (erasure) is not limited.
    for _ in range(3):
        with keep_as(db, me) as cur:
            cur.execute("select private.test_request('erasure')")
    assert db.execute(
        "select kind, count(*) from public.jobs where owner_id = %s group by kind order by kind", (me,)
    ).fetchall() == [("erasure", 3), ("export", limit)]
