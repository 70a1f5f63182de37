"""The RPC transport (no database URL, only SUPABASE_URL + service key) against a local PostgREST stand-in."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from tests.jobs.fake_postgrest import SERVICE_KEY, FakePostgrest
from tests.jobs.jobtools import enqueue, job_row
from workers.jobs.builtin import echo
from workers.jobs.errors import LeaseLost, QueueError
from workers.jobs.logs import JobLog
from workers.jobs.queue import open_queue
from workers.jobs.queue_rpc import RpcQueue
from workers.jobs.worker import Worker
from workers.settings import Settings


@pytest.fixture
def api(clone_url: str) -> Iterator[FakePostgrest]:
    fake = FakePostgrest(clone_url).start()
    yield fake
    fake.stop()


def test_worker_runs_jobs_over_rpc_with_the_documented_requests(api: FakePostgrest, clone_url: str) -> None:
    job_id = enqueue(clone_url, "echo", {"hello": "world"})
    settings = Settings(
        _env_file=None,
        DATABASE_URL=None,
        SUPABASE_URL=api.url,
        SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY,
        BACKLINE_JOBS_POLL_SECONDS=0.1,
    )  # type: ignore[call-arg]
    queue = open_queue(settings, None)
    assert isinstance(queue, RpcQueue) and queue.database_url is None
    worker = Worker(
        queue, {"echo": echo}, settings=settings, kinds=["echo"], cron=False, log=JobLog(stream=io.StringIO())
    )
    worker.run(once=True)
    queue.close()

    row = job_row(clone_url, job_id)
    assert row["status"] == "succeeded" and row["result"]["echo"] == {"hello": "world"}
    paths = [r.path for r in api.requests]
    # Batched over RPC too (issue #16): one job_complete_many call records what finished.
    assert paths[0] == "/rest/v1/rpc/job_claim" and "/rest/v1/rpc/job_complete_many" in paths
    assert "/rest/v1/rpc/job_complete" not in paths
    for request in api.requests:
        assert request.method == "POST"
        assert request.headers["apikey"] == SERVICE_KEY
        assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
        assert request.headers["content-type"].startswith("application/json")
    claim = api.requests[0].body
    assert claim == {
        "p_worker": worker.id,
        "p_kinds": ["echo"],
        "p_limit": worker.concurrency,
        "p_lease": f"{settings.jobs_lease_seconds:g} seconds",
    }
    complete = next(r.body for r in api.requests if r.path.endswith("/job_complete_many"))
    assert complete["p_ids"] == [str(job_id)] and complete["p_worker"] == worker.id
    assert [r["echo"] for r in complete["p_results"]] == [{"hello": "world"}]


def test_rpc_batches_keep_results_per_job_and_refuse_a_lost_lease_per_job(
    api: FakePostgrest, clone_url: str
) -> None:
    queue = RpcQueue(api.url, SERVICE_KEY)
    ids = [queue.enqueue("echo", {"n": n}) for n in range(5)]
    assert {j.id for j in queue.claim("w1", ["echo"], 5, 30)} == set(ids)
    queue.heartbeat(ids[2], "w1", 60)
    import psycopg

    with psycopg.connect(clone_url, autocommit=True) as conn:  # job 2's lease was taken over
        conn.execute("update public.jobs set locked_by = 'w2' where id = %s", (ids[2],))
    recorded = queue.complete_many("w1", [(ids[0], {"n": 0}), (ids[1], None), (ids[2], {"n": 2})])
    assert recorded == {ids[0], ids[1]}
    statuses = queue.fail_many("w1", [(ids[3], "try again", True), (ids[4], "never", False)])
    assert statuses == {ids[3]: "queued", ids[4]: "failed"}
    assert queue.complete_many("w1", []) == set() and queue.fail_many("w1", []) == {}
    with pytest.raises(QueueError, match="more than once"):
        queue.complete_many("w1", [(ids[0], None), (ids[0], None)])
    queue.close()
    rows = [job_row(clone_url, i) for i in ids]
    assert [r["status"] for r in rows] == ["succeeded", "succeeded", "running", "queued", "failed"]
    assert [r["result"] for r in rows[:3]] == [{"n": 0}, None, None]
    assert [r["last_error"] for r in rows[3:]] == ["try again", "never"]
    bodies = [r.body for r in api.requests if r.path.endswith("/job_fail_many")]
    assert bodies[0] == {
        "p_worker": "w1",
        "p_ids": [str(ids[3]), str(ids[4])],
        "p_errors": ["try again", "never"],
        "p_retry": [True, False],
    }


def test_rpc_errors_map_to_the_same_exceptions(api: FakePostgrest, clone_url: str) -> None:
    queue = RpcQueue(api.url, SERVICE_KEY)
    job_id = queue.enqueue("echo", {"n": 1})
    [job] = queue.claim("w1", ["echo"], 5, 30)
    assert job.id == job_id and job.status == "running" and job.attempts == 1
    with pytest.raises(LeaseLost, match="not running under worker intruder"):
        queue.complete(job_id, "intruder", {})
    queue.heartbeat(job_id, "w1", 60)
    assert queue.fail(job_id, "w1", "boom") == "queued"
    with pytest.raises(QueueError, match="unknown job kind"):
        queue.enqueue("nope", {})
    assert "jobs" in queue.list_cleanups()
    assert queue.run_cleanup("jobs", 10, True) == []
    assert {s.name for s in queue.cron_list()} >= {"privacy-cleanup", "metrics"}
    queue.close()
    assert job_row(clone_url, job_id)["last_error"] == "boom"


def test_wrong_key_is_refused(api: FakePostgrest) -> None:
    queue = RpcQueue(api.url, "not-the-key")
    with pytest.raises(QueueError, match="JWT invalid"):
        queue.claim("w1", None, 1, 30)
    queue.close()


def test_rpc_worker_wakes_on_a_realtime_insert_before_the_poll(api: FakePostgrest, clone_url: str) -> None:
    from urllib.parse import parse_qs, urlparse

    from tests.jobs.fake_realtime import FakeRealtime
    from tests.jobs.jobtools import wait_for
    from workers.jobs.worker import RealtimeConfig

    realtime = FakeRealtime().start()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL=None,
        SUPABASE_URL=api.url,
        SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY,
        BACKLINE_JOBS_POLL_SECONDS=30,
    )
    queue = RpcQueue(api.url, SERVICE_KEY)
    worker = Worker(
        queue,
        {"echo": echo},
        settings=settings,
        kinds=["echo"],
        cron=False,
        realtime=RealtimeConfig(api.url, SERVICE_KEY, url=realtime.url),
        log=JobLog(stream=io.StringIO()),
    )
    import threading

    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert realtime.joined.wait(10), "the worker never joined a Realtime channel"
        job_id = enqueue(clone_url, "echo", {"via": "realtime"})
        realtime.push_insert({"id": str(job_id), "kind": "echo", "status": "queued"})
        wait_for(
            lambda: job_row(clone_url, job_id)["status"] == "succeeded", timeout=5, what="Realtime wake-up"
        )
    finally:
        worker.request_stop()
        thread.join(10)
        queue.close()
        realtime.stop()
    assert not thread.is_alive()
    url = urlparse(realtime.paths[0])
    assert url.path == "/realtime/v1/websocket" and parse_qs(url.query)["apikey"] == [SERVICE_KEY]
    join = next(m for m in realtime.messages if m["event"] == "phx_join")
    assert join["topic"] == "realtime:backline-jobs" and join["payload"]["access_token"] == SERVICE_KEY
    assert join["payload"]["config"]["postgres_changes"] == [
        {"event": "INSERT", "schema": "public", "table": "jobs"},
        {"event": "UPDATE", "schema": "public", "table": "jobs", "filter": "status=eq.queued"},
    ]
