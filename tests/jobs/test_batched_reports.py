"""Batched completion and failure (issue #16): private.job_complete_many / job_fail_many.

One statement records many finished jobs, each with its own result or error; a job whose
lease was lost is refused on its own (left unchanged, missing from the answer) while the
rest of the batch is recorded; bad input is refused with 22023 and changes nothing.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.helpers import act_as
from tests.jobs.test_queue_sql import claim, enqueue, job

Conn = psycopg.Connection[Any]


def complete_many(db: Conn, worker: str, ids: list[uuid.UUID], results: list[Any] | None) -> set[uuid.UUID]:
    rows = db.execute(
        "select * from private.job_complete_many(%s, %s::uuid[], %s::jsonb[])",
        (worker, ids, None if results is None else [None if r is None else Jsonb(r) for r in results]),
    ).fetchall()
    return {r[0] for r in rows}


def fail_many(
    db: Conn, worker: str, ids: list[uuid.UUID], errors: list[str | None], retry: list[bool] | None = None
) -> dict[uuid.UUID, str]:
    rows = db.execute(
        "select id, status from private.job_fail_many(%s, %s::uuid[], %s::text[], %s::boolean[])",
        (worker, ids, errors, retry),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def test_complete_many_keeps_each_result_and_refuses_only_the_lost_lease(db: Conn) -> None:
    ids = [enqueue(db, payload={"n": n}) for n in range(4)]
    claim(db, "w1")
    # Job 3's lease was lost: expired and taken over by w2.
    db.execute("update public.jobs set locked_by = 'w2' where id = %s", (ids[3],))
    recorded = complete_many(db, "w1", ids, [{"n": 0}, None, {"n": 2}, {"n": 3}])
    assert recorded == set(ids[:3])
    rows = [job(db, i) for i in ids]
    assert [r["status"] for r in rows] == ["succeeded", "succeeded", "succeeded", "running"]
    assert [r["result"] for r in rows] == [{"n": 0}, None, {"n": 2}, None]
    assert all(r["finished_at"] is not None and r["locked_by"] is None for r in rows[:3])
    assert rows[3]["locked_by"] == "w2" and rows[3]["finished_at"] is None
    # Exactly once: the same report again records nothing and changes nothing.
    assert complete_many(db, "w1", ids[:3], [{"again": 1}] * 3) == set()
    assert [job(db, i)["result"] for i in ids[:3]] == [{"n": 0}, None, {"n": 2}]


def test_complete_many_without_results_and_with_nothing_to_report(db: Conn) -> None:
    ids = [enqueue(db) for _ in range(2)]
    claim(db, "w1")
    assert complete_many(db, "w1", [], None) == set()
    assert complete_many(db, "w1", ids, None) == set(ids)
    assert {job(db, i)["status"] for i in ids} == {"succeeded"}


def test_fail_many_backs_off_dead_letters_and_parks_per_job(db: Conn) -> None:
    db.execute(
        "update public.job_kinds set max_attempts = 2, backoff_base = '10 seconds' where kind = 'echo'"
    )
    retry, permanent, last, lost = (enqueue(db) for _ in range(4))
    db.execute("update public.jobs set attempts = 1 where id = %s", (last,))  # its claim makes it 2 of 2
    claim(db, "w1")
    db.execute("update public.jobs set locked_by = 'w2' where id = %s", (lost,))
    recorded = fail_many(
        db, "w1", [retry, permanent, last, lost], ["boom", "bad input", "", "x"], [True, False, True, True]
    )
    assert recorded == {retry: "queued", permanent: "failed", last: "dead"}
    row = job(db, retry)
    assert row["last_error"] == "boom" and row["locked_by"] is None and row["finished_at"] is None
    backoff = db.execute("select run_after - updated_at from public.jobs where id = %s", (retry,)).fetchone()
    assert backoff is not None and backoff[0].total_seconds() == pytest.approx(10, abs=0.5)
    assert job(db, permanent)["finished_at"] is not None and job(db, permanent)["last_error"] == "bad input"
    assert job(db, last)["last_error"] == "unknown error" and job(db, last)["finished_at"] is not None
    assert job(db, lost)["status"] == "running" and job(db, lost)["last_error"] is None


def test_fail_many_retries_by_default(db: Conn) -> None:
    ids = [enqueue(db) for _ in range(2)]
    claim(db, "w1")
    assert fail_many(db, "w1", ids, ["a", "b"]) == {ids[0]: "queued", ids[1]: "queued"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("select private.job_complete_many(null, %(ids)s, null)", "worker id"),
        ("select private.job_complete_many('', %(ids)s, null)", "worker id"),
        ("select private.job_complete_many('w1', null, null)", "must be an array"),
        ("select private.job_complete_many('w1', %(ids)s, array['{}']::jsonb[])", "one entry per job"),
        ("select private.job_complete_many('w1', %(ids)s || %(ids)s, null)", "more than once"),
        ("select private.job_complete_many('w1', %(ids)s || array[null::uuid], null)", "must not be null"),
        (
            "select private.job_complete_many('w1', array(select gen_random_uuid()"
            " from generate_series(1, 1001)), null)",
            "at most 1000",
        ),
        ("select private.job_fail_many('w1', %(ids)s, array['x'])", "one entry per job"),
        ("select private.job_fail_many('w1', %(ids)s, null)", "one entry per job"),
        ("select private.job_fail_many('w1', %(ids)s, array['x', 'y'], array[true])", "retry flags"),
        ("select private.job_fail_many(null, %(ids)s, array['x', 'y'])", "worker id"),
    ],
)
def test_bad_batches_are_refused_and_change_nothing(db: Conn, call: str, message: str) -> None:
    ids = [enqueue(db) for _ in range(2)]
    claim(db, "w1")
    before = db.execute("select id, status, updated_at from public.jobs order by id").fetchall()
    with pytest.raises(psycopg.Error, match=message) as err, db.transaction():
        db.execute(call, {"ids": ids})
    assert err.value.sqlstate == "22023"  # PostgREST: HTTP 400
    assert err.value.diag.message_hint
    assert db.execute("select id, status, updated_at from public.jobs order by id").fetchall() == before


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize("schema", ["private", "public"])
def test_api_users_cannot_report_jobs(db: Conn, make_user: Any, role: str, schema: str) -> None:
    user = make_user() if role == "authenticated" else None
    job_id = enqueue(db)
    claim(db, "w1")
    for call in (
        f"select {schema}.job_complete_many('w1', array['{job_id}']::uuid[], null)",
        f"select {schema}.job_fail_many('w1', array['{job_id}']::uuid[], array['x'])",
    ):
        with act_as(db, user, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute(call)
    with act_as(db, None, "service_role") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select private.job_check_batch('w1', '{}', 0, 'x')")
    assert job(db, job_id)["status"] == "running"


def test_service_role_reports_through_the_public_wrappers(db: Conn) -> None:
    done, failed = enqueue(db), enqueue(db)
    with act_as(db, None, "service_role") as cur:
        cur.execute("select id from public.job_claim('svc', array['echo'], 5, '1 minute')")
        rows = cur.execute(
            "select * from public.job_complete_many('svc', %s::uuid[], array['{\"ok\": 1}']::jsonb[])",
            ([done],),
        ).fetchall()
        assert rows == [(done,)]
        rows = cur.execute(
            "select id, status from public.job_fail_many('svc', %s::uuid[], array['no'], array[false])",
            ([failed],),
        ).fetchall()
        assert rows == [(failed, "failed")]
        found = cur.execute(
            "select result, status from public.jobs where id = any(%s) order by status", ([done, failed],)
        )
        assert found.fetchall() == [(None, "failed"), ({"ok": 1}, "succeeded")]


# -- the queue client and the worker runtime ----------------------------------------------------


def test_report_and_claim_is_one_transaction(clone_url: str) -> None:
    from tests.jobs.jobtools import enqueue as enqueue_url
    from tests.jobs.jobtools import job_row
    from workers.jobs.errors import QueueError
    from workers.jobs.queue_sql import SqlQueue

    ids = [enqueue_url(clone_url, "echo", {"n": n}) for n in range(4)]
    queue = SqlQueue(clone_url)
    try:
        first = queue.claim("w1", ["echo"], 2, 30)
        done, failed = first[0].id, first[1].id
        recorded, statuses, claimed = queue.report_and_claim(
            "w1", [(done, {"ok": 1})], [(failed, "boom", False)], ["echo"], 1, 30
        )
        assert recorded == {done} and statuses == {failed: "failed"} and len(claimed) == 1
        # All or nothing: a refused claim (limit out of range) records nothing either.
        with pytest.raises(QueueError, match="claim limit"):
            queue.report_and_claim("w1", [(claimed[0].id, {"ok": 2})], [], ["echo"], 5000, 30)
        assert job_row(clone_url, claimed[0].id)["status"] == "running"
        assert queue.report_and_claim("w1", [], [], ["echo"], 0, 30) == (set(), {}, [])
    finally:
        queue.close()
    assert job_row(clone_url, done)["result"] == {"ok": 1}
    assert job_row(clone_url, failed)["status"] == "failed"
    assert sum(job_row(clone_url, i)["status"] == "queued" for i in ids) == 1


class CountingQueue:
    """SqlQueue that records which calls the worker makes (the database stays real)."""

    def __init__(self, url: str) -> None:
        from workers.jobs.queue_sql import SqlQueue

        self.inner = SqlQueue(url, pool_size=6)
        self.calls: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("complete", "fail", "complete_many", "fail_many", "report_and_claim", "claim"):

            def counted(*args: Any) -> Any:
                size = len(args[1]) + len(args[2]) if name == "report_and_claim" else 1
                self.calls.append((name, size))
                return attr(*args)

            return counted
        return attr


def test_worker_records_a_batch_of_finished_jobs_with_one_call(clone_url: str) -> None:
    import io
    import threading

    from tests.jobs.jobtools import job_row
    from tests.jobs.test_worker import settings
    from workers.jobs.context import JobContext
    from workers.jobs.logs import JobLog
    from workers.jobs.worker import Worker

    with psycopg.connect(clone_url, autocommit=True) as conn:
        rows = conn.execute(
            "select private.job_enqueue('echo', jsonb_build_object('n', n)) from generate_series(1, 16) n"
        ).fetchall()
    barrier = threading.Barrier(8)

    def together(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        barrier.wait(10)  # the eight of a claim finish at once
        return {"n": payload["n"]}

    class Writes(io.StringIO):
        """The log stream, remembering each write: a batch's lines go out in one."""

        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    stream = Writes()
    queue = CountingQueue(clone_url)
    worker = Worker(
        queue,  # type: ignore[arg-type]
        {"echo": together},
        settings=settings(),
        concurrency=8,
        cron=False,
        log=JobLog("json", stream),
        report_wait_seconds=5.0,  # only "no handler running" (or a full batch) flushes
    )
    try:
        worker.run(once=True)
    finally:
        queue.inner.close()
    reports = [c for c in queue.calls if c[0] != "claim"]
    assert reports == [("report_and_claim", 8), ("report_and_claim", 8)]
    assert worker.stats.succeeded == 16
    assert [job_row(clone_url, r[0])["result"] for r in rows] == [{"n": n} for n in range(1, 17)]
    # Every job is logged claimed, then succeeded; each batch of eight lines is one write.
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    jobs = [(e["event"], e["job_id"]) for e in lines if e["event"].startswith("job.")]
    ids = {str(r[0]) for r in rows}
    for job_id in ids:
        assert [e for e, j in jobs if j == job_id] == ["job.claimed", "job.succeeded"]
    batches = [w for w in stream.writes if '"event":"job.' in w]
    assert [(w.count("\n"), {json.loads(x)["event"] for x in w.splitlines()}) for w in batches] == [
        (8, {"job.claimed"}),
        (8, {"job.succeeded"}),
        (8, {"job.claimed"}),
        (8, {"job.succeeded"}),
    ]


def test_a_lost_lease_in_a_batch_is_refused_alone(clone_url: str) -> None:
    import io
    import json
    import threading

    from tests.jobs.jobtools import job_row
    from tests.jobs.test_worker import settings
    from workers.jobs.context import JobContext
    from workers.jobs.logs import JobLog
    from workers.jobs.worker import Worker

    with psycopg.connect(clone_url, autocommit=True) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "select private.job_enqueue('echo', jsonb_build_object('n', n)) from generate_series(0, 3) n"
            ).fetchall()
        ]
    barrier = threading.Barrier(4)

    def handler(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        if payload["n"] == 0:  # meanwhile its lease expired and another worker took it
            with psycopg.connect(clone_url, autocommit=True) as conn:
                conn.execute("update public.jobs set locked_by = 'other' where id = %s", (ctx.job_id,))
        if payload["n"] == 1:
            barrier.wait(10)
            raise RuntimeError("try later")
        barrier.wait(10)
        return {"n": payload["n"]}

    log = io.StringIO()
    queue = CountingQueue(clone_url)
    worker = Worker(
        queue,  # type: ignore[arg-type]
        {"echo": handler},
        settings=settings(),
        concurrency=4,
        cron=False,
        log=JobLog("json", log),
        report_wait_seconds=5.0,
    )
    try:
        worker.run(once=True)
    finally:
        queue.inner.close()
    assert [c for c in queue.calls if c[0] != "claim"] == [("report_and_claim", 4)]
    rows = [job_row(clone_url, i) for i in ids]
    assert [(r["status"], r["locked_by"]) for r in rows] == [
        ("running", "other"),
        ("queued", None),
        ("succeeded", None),
        ("succeeded", None),
    ]
    assert rows[1]["last_error"] == "try later" and rows[0]["result"] is None
    assert worker.stats.succeeded == 2 and worker.stats.failed == 1 and worker.stats.lease_lost == 1
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [e["job_id"] for e in events if e["event"] == "job.lease_lost"] == [str(ids[0])]


def test_updated_at_moves_on_every_write_path(clone_url: str) -> None:
    """Batched reports and claims keep updated_at moving like every other write (the trigger)."""
    from tests.jobs.jobtools import enqueue as enqueue_url

    job_id = enqueue_url(clone_url, "echo", {})
    seen = []
    with psycopg.connect(clone_url, autocommit=True) as conn:

        def stamp() -> Any:
            row = conn.execute("select updated_at from public.jobs where id = %s", (job_id,)).fetchone()
            assert row is not None
            seen.append(row[0])
            return row[0]

        stamp()
        for step in (
            "select count(*) from private.job_claim('w1', array['echo'], 1, '1 minute')",
            "select private.job_heartbeat(%(id)s, 'w1', '1 minute')",  # trigger path
            "select count(*) from private.job_fail_many('w1', array[%(id)s]::uuid[], array['x'])",
            "update public.jobs set run_after = now() where id = %(id)s",  # an operator, trigger path
            "select count(*) from private.job_claim('w1', array['echo'], 1, '1 minute')",
            "select count(*) from private.job_complete_many('w1', array[%(id)s]::uuid[], null)",
            "update public.jobs set updated_at = updated_at, result = '{}' where id = %(id)s",
        ):
            conn.execute(step, {"id": job_id})
            stamp()
    assert all(a < b for a, b in itertools.pairwise(seen)), seen
