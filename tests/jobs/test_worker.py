"""The worker runtime on a real database: exclusivity, crash recovery, retries, graceful stop, wake-up."""

from __future__ import annotations

import io
import json
import signal
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg

from tests.jobs.jobtools import enqueue, job_row, start_cli, wait_for
from workers.jobs.context import JobContext
from workers.jobs.logs import JobLog
from workers.jobs.queue_sql import SqlQueue
from workers.jobs.worker import Worker
from workers.settings import Settings


def settings(**env: Any) -> Settings:
    """Settings as the environment would give them (fields are read by their env names)."""
    values = {
        "BACKLINE_JOBS_LEASE_SECONDS": 5.0,
        "BACKLINE_JOBS_POLL_SECONDS": 0.2,
        "BACKLINE_JOBS_DRAIN_SECONDS": 5.0,
    } | env
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_two_workers_never_run_the_same_job(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute(
            "select private.job_enqueue('echo', jsonb_build_object('n', n)) from generate_series(1, 300) n"
        )
    runs: Counter[uuid.UUID] = Counter()
    lock = threading.Lock()

    def record(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        with lock:
            runs[ctx.job_id] += 1
        time.sleep(0.001)
        return {"n": payload["n"]}

    queues = [SqlQueue(clone_url, pool_size=6) for _ in range(2)]
    workers = [
        Worker(
            q,
            {"echo": record},
            settings=settings(),
            concurrency=4,
            cron=False,
            log=JobLog(stream=io.StringIO()),
        )
        for q in queues
    ]
    threads = [threading.Thread(target=w.run, kwargs={"once": True}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for q in queues:
        q.close()
    assert len(runs) == 300 and set(runs.values()) == {1}
    assert all(w.stats.succeeded > 0 for w in workers)  # both took part
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select status, attempts, count(*) from public.jobs group by 1, 2"
        ).fetchall() == [("succeeded", 1, 300)]


def test_job_of_a_killed_worker_completes_once_after_its_lease_expires(clone_url: str) -> None:
    job_id = enqueue(clone_url, "echo", {"sleep": 1.5})
    first = start_cli(clone_url, "workers", "run", "echo", "--no-cron", "--log-format", "json")
    try:
        wait_for(lambda: job_row(clone_url, job_id)["status"] == "running", what="first worker to claim")
        first_worker = job_row(clone_url, job_id)["locked_by"]
        first.send_signal(signal.SIGKILL)
        first.wait(5)
    finally:
        first.kill()
    assert job_row(clone_url, job_id)["status"] == "running"  # the lease still says the dead worker has it
    second = start_cli(clone_url, "workers", "run", "echo", "--no-cron", "--log-format", "json")
    try:
        wait_for(lambda: job_row(clone_url, job_id)["status"] == "succeeded", timeout=20, what="takeover")
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=15)
    row = job_row(clone_url, job_id)
    assert row["attempts"] == 2 and row["locked_by"] is None
    assert row["result"]["attempt"] == 2
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    done = [e for e in events if e["event"] == "job.succeeded" and e["job_id"] == str(job_id)]
    assert len(done) == 1 and done[0]["worker"] != first_worker
    assert second.returncode == 0


def test_sigterm_lets_the_running_job_finish(clone_url: str) -> None:
    job_id = enqueue(clone_url, "echo", {"sleep": 1.0})
    proc = start_cli(clone_url, "workers", "run", "echo", "--no-cron")
    wait_for(lambda: job_row(clone_url, job_id)["status"] == "running", what="claim")
    proc.send_signal(signal.SIGTERM)
    queued_meanwhile = enqueue(clone_url, "echo", {})
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert job_row(clone_url, job_id)["status"] == "succeeded"
    assert job_row(clone_url, queued_meanwhile)["status"] == "queued"  # nothing new claimed while draining


def test_sigterm_hands_back_a_job_that_outlasts_the_drain_time(clone_url: str) -> None:
    job_id = enqueue(clone_url, "echo", {"sleep": 60})
    proc = start_cli(clone_url, "workers", "run", "echo", "--no-cron", BACKLINE_JOBS_DRAIN_SECONDS="0.5")
    wait_for(lambda: job_row(clone_url, job_id)["status"] == "running", what="claim")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 5
    row = job_row(clone_url, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None
    assert "job.released" in err


def test_failing_job_is_retried_then_dead_lettered(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute(
            "update public.job_kinds set max_attempts = 3, backoff_base = '1 second' where kind = 'echo'"
        )
    job_id = enqueue(clone_url, "echo", {"fail": "upstream said no"})
    queue = SqlQueue(clone_url)
    log = io.StringIO()
    worker = Worker(queue, {"echo": _echo}, settings=settings(), cron=False, log=JobLog("json", log))
    try:
        for attempt in (1, 2, 3):
            with psycopg.connect(clone_url, autocommit=True) as conn:
                conn.execute(
                    "update public.jobs set run_after = now() where id = %s and status = 'queued'", (job_id,)
                )
            worker.run(once=True)
            row = job_row(clone_url, job_id)
            assert row["attempts"] == attempt and row["last_error"] == "upstream said no"
            assert row["status"] == ("dead" if attempt == 3 else "queued")
    finally:
        queue.close()
    events = [json.loads(line)["event"] for line in log.getvalue().splitlines()]
    assert [e for e in events if e.startswith("job.") and e != "job.claimed"] == [
        "job.retrying",
        "job.retrying",
        "job.dead",
    ]


def _echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    from workers.jobs.builtin import echo

    return echo(ctx, payload)


def test_notify_wakes_an_idle_worker_before_the_poll(clone_url: str) -> None:
    queue = SqlQueue(clone_url)
    worker = Worker(
        queue,
        {"echo": _echo},
        settings=settings(BACKLINE_JOBS_POLL_SECONDS=30.0),
        cron=False,
        listen_url=clone_url,
        log=JobLog(stream=io.StringIO()),
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        time.sleep(0.5)  # idle: claimed nothing, now waiting up to 30 s
        job_id = enqueue(clone_url, "echo", {})
        wait_for(
            lambda: job_row(clone_url, job_id)["status"] == "succeeded", timeout=5, what="NOTIFY wake-up"
        )
    finally:
        worker.request_stop()
        thread.join(10)
        queue.close()
    assert not thread.is_alive()


def test_handler_errors_never_crash_the_worker(clone_url: str) -> None:
    def bad_result(ctx: JobContext, payload: dict[str, Any]) -> Any:
        return ["not", "a", "dict"]

    bad = enqueue(clone_url, "echo", {})
    unknown = enqueue(clone_url, "usage_report", {})
    queue = SqlQueue(clone_url)
    worker = Worker(
        queue,
        {"echo": bad_result},
        settings=settings(),
        kinds=["echo", "usage_report"],
        cron=False,
        log=JobLog(stream=io.StringIO()),
    )
    try:
        worker.run(once=True)
    finally:
        queue.close()
    assert job_row(clone_url, bad)["status"] == "failed"
    assert "expected a dict" in job_row(clone_url, bad)["last_error"]
    assert job_row(clone_url, unknown)["status"] == "failed"
    assert "no handler" in job_row(clone_url, unknown)["last_error"]


def test_heartbeats_keep_a_job_longer_than_its_lease(clone_url: str) -> None:
    job_id = enqueue(clone_url, "echo", {"sleep": 4})
    lease = {"BACKLINE_JOBS_LEASE_SECONDS": 1.5}
    queues = [SqlQueue(clone_url), SqlQueue(clone_url)]
    busy = Worker(
        queues[0], {"echo": _echo}, settings=settings(**lease), cron=False, log=JobLog(stream=io.StringIO())
    )
    thread = threading.Thread(target=busy.run, kwargs={"once": True})
    thread.start()
    wait_for(lambda: job_row(clone_url, job_id)["status"] == "running", what="claim")
    # A second worker keeps claiming meanwhile: it would take the job if the lease ran out.
    thief = Worker(
        queues[1], {"echo": _echo}, settings=settings(**lease), cron=False, log=JobLog(stream=io.StringIO())
    )
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        thief.run(once=True)
        time.sleep(0.2)
    thread.join(10)
    for q in queues:
        q.close()
    row = job_row(clone_url, job_id)
    assert row["status"] == "succeeded" and row["attempts"] == 1
    assert busy.stats.succeeded == 1 and thief.stats.claimed == 0 and busy.stats.lease_lost == 0


def test_a_worker_that_lost_its_lease_stops_and_changes_nothing(clone_url: str) -> None:
    job_id = enqueue(clone_url, "echo", {"sleep": 30})
    queue = SqlQueue(clone_url)
    worker = Worker(
        queue,
        {"echo": _echo},
        settings=settings(BACKLINE_JOBS_LEASE_SECONDS=1.5),
        cron=False,
        log=JobLog(stream=io.StringIO()),
    )
    thread = threading.Thread(target=worker.run, kwargs={"once": True})
    thread.start()
    wait_for(lambda: job_row(clone_url, job_id)["status"] == "running", what="claim")
    with psycopg.connect(clone_url, autocommit=True) as conn:  # another worker took it over
        conn.execute("update public.jobs set locked_by = 'other-worker' where id = %s", (job_id,))
    thread.join(10)
    queue.close()
    assert not thread.is_alive()
    row = job_row(clone_url, job_id)
    assert row["status"] == "running" and row["locked_by"] == "other-worker"
    assert worker.stats.lease_lost >= 1 and worker.stats.succeeded == 0


def test_usage_report_summarises_users_and_jobs(clone_url: str) -> None:
    from tests.helpers import create_user
    from workers.jobs.registry import HANDLERS

    with psycopg.connect(clone_url, autocommit=True) as conn:
        create_user(conn)
        create_user(conn, anonymous=True)
    job_id = enqueue(clone_url, "usage_report", {})
    queue = SqlQueue(clone_url)
    Worker(
        queue,
        HANDLERS,
        settings=settings(),
        kinds=["usage_report"],
        cron=False,
        log=JobLog(stream=io.StringIO()),
    ).run(once=True)
    queue.close()
    result = job_row(clone_url, job_id)["result"]
    assert result["users"]["total"] == 2 and result["users"]["anonymous"] == 1
    assert result["plans"] == [{"plan": "free", "users": 2}]
    assert {"kind": "usage_report", "status": "running", "jobs": 1} in result["jobs_last_7_days"]
