"""Cron schedules fire exactly once across processes; `backline cron list|run`."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from typer.testing import CliRunner

from tests.jobs.jobtools import start_cli
from workers.cli.main import app
from workers.cron.scheduler import tick
from workers.jobs.logs import JobLog
from workers.jobs.queue_sql import SqlQueue


def add_schedule(
    url: str,
    name: str,
    schedule: str = "* * * * *",
    kind: str = "echo",
    next_run: str = "now() - interval '1 second'",
    payload: str = "{}",
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"insert into private.cron_schedules (name, schedule, job_kind, payload, next_run_at)"
            f" values (%s, %s, %s, %s, {next_run})",
            (name, schedule, kind, payload),
        )


def fired_jobs(url: str, name: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select id, kind from public.jobs where payload->>'schedule' = %s", (name,)
        ).fetchall()


def test_due_schedule_fires_once_across_two_worker_processes(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:  # only ours is due
        conn.execute("update private.cron_schedules set enabled = false")
    add_schedule(clone_url, "every-minute")
    procs = [
        start_cli(clone_url, "workers", "run", "usage_report", "--once", "--log-format", "json")
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=30)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(fired_jobs(clone_url, "every-minute")) == 1
    fired_logs = [line for out in outputs for line in out.splitlines() if '"cron.fired"' in line]
    assert len(fired_logs) == 1
    with psycopg.connect(clone_url) as conn:
        next_run, last_job = conn.execute(
            "select next_run_at, last_job_id from private.cron_schedules where name = 'every-minute'"
        ).fetchone()  # type: ignore[misc]
    assert (
        next_run > datetime.now(UTC) - timedelta(seconds=5)
        and last_job == fired_jobs(clone_url, "every-minute")[0][0]
    )


def test_concurrent_ticks_fire_each_due_run_once(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute("update private.cron_schedules set enabled = false")
    add_schedule(clone_url, "race")
    add_schedule(clone_url, "later", next_run="now() + interval '1 hour'")
    add_schedule(clone_url, "fresh", next_run="null")
    queues = [SqlQueue(clone_url, pool_size=1) for _ in range(6)]
    barrier = threading.Barrier(len(queues))
    results: list[int] = []

    def run(queue: SqlQueue) -> None:
        barrier.wait()
        results.append(len(tick(queue, JobLog(stream=io.StringIO()))))

    threads = [threading.Thread(target=run, args=(q,)) for q in queues]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for q in queues:
        q.close()
    assert sum(results) == 1
    assert len(fired_jobs(clone_url, "race")) == 1 and fired_jobs(clone_url, "later") == []
    with psycopg.connect(clone_url) as conn:
        fresh = conn.execute("select next_run_at from private.cron_schedules where name = 'fresh'").fetchone()
    assert fresh is not None and fresh[0] is not None  # initialised, not fired
    assert fired_jobs(clone_url, "fresh") == []


def test_cron_list_shows_the_schedules(clone_url: str) -> None:
    result = CliRunner().invoke(app, ["cron", "list", "--json", "--database-url", clone_url])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["privacy-cleanup"]["schedule"] == "0 2 * * *"
    assert rows["orphaned-files"]["schedule"] == "0 2 * * *"
    assert rows["metrics"]["schedule"] == "0 */6 * * *" and rows["metrics"]["job_kind"] == "metrics"
    # Issue #13 item 8: the collection tracker's weekly report, Sundays 00:00 UTC.
    assert rows["usage-report"]["schedule"] == "0 0 * * 0"
    next_report = datetime.fromisoformat(rows["usage-report"]["next_run_at"])
    assert next_report.astimezone(UTC).isoweekday() == 7
    assert (next_report.astimezone(UTC).hour, next_report.minute) == (0, 0)
    # Issue #14: health checks every 5 minutes (collection tracker: "ping endpoints every 5 minutes").
    assert rows["health-check"]["schedule"] == "*/5 * * * *"
    assert rows["health-check"]["job_kind"] == "health_check"
    assert rows["jobs-cleanup"]["payload"]["tasks"] == ["jobs", "rate_limit_events"]
    assert all(r["next_run_at"] for r in rows.values())


def test_cron_run_runs_the_job_in_process_and_records_it(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.jobs (kind, status, attempts, finished_at) values ('echo', 'succeeded', 1,"
            " now() - interval '8 days')"
        )
    result = CliRunner().invoke(
        app, ["cron", "run", "jobs-cleanup", "--dry-run", "--database-url", clone_url]
    )
    assert result.exit_code == 0, result.output
    assert "jobs: job " in result.output and "would delete 1" in result.output
    assert fired_jobs(clone_url, "jobs-cleanup") == []  # a dry run records nothing

    result = CliRunner().invoke(app, ["cron", "run", "jobs-cleanup", "--json", "--database-url", clone_url])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "succeeded" and out["result"]["tasks"]["jobs"] == 1
    assert len(fired_jobs(clone_url, "jobs-cleanup")) == 1
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select count(*) from public.jobs where status = 'succeeded'"
            " and finished_at < now() - interval '7 days'"
        ).fetchone() == (0,)


def test_cron_run_rejects_unknown_or_unhandled_schedules(clone_url: str) -> None:
    result = CliRunner().invoke(app, ["cron", "run", "nope", "--database-url", clone_url])
    assert result.exit_code == 1 and "no cron schedule named" in str(result.exception)
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute("insert into public.job_kinds (kind) values ('nobody_handles_this')")
    add_schedule(clone_url, "unhandled", kind="nobody_handles_this")
    result = CliRunner().invoke(app, ["cron", "run", "unhandled", "--database-url", clone_url])
    assert result.exit_code == 1 and "no handler registered" in str(result.exception)
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select count(*) from public.jobs").fetchone() == (0,)
