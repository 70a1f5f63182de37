"""The health-check schedule posts one alert per check going bad and one recovery, across runs and processes.

Each scenario breaks one real thing (the AI proxy process, the dead-letter queue, cron),
runs the schedule repeatedly the way an external scheduler does (`backline cron run
health-check`, each run its own process), and counts what a local webhook receiver got.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from tests.health.conftest import AIService, Receiver, health_env, run_health_job
from tests.helpers import backline
from tests.jobs.jobtools import cli_env
from workers.settings import PROJECT_ROOT


def _ok(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    job: dict[str, object] = json.loads(result.stdout)
    assert job["status"] == "succeeded", job
    return job


def _about(texts: list[str], check: str) -> list[str]:
    return [t for t in texts if f"`{check}`" in t]


def test_killed_ai_service_alerts_once_then_recovers_once(
    ai_service: AIService, receiver: Receiver, data_dir: Path
) -> None:
    env = health_env(ai_service.db_url, data_dir, webhook=receiver.url, ai_url=ai_service.base_url)
    job = _ok(run_health_job(env))
    checks = {c["name"]: c["status"] for c in job["result"]["checks"]}  # type: ignore[index]
    assert set(checks.values()) == {"ok"}, job
    assert receiver.posts == []  # all healthy: nothing to say

    ai_service.kill()
    for _ in range(2):
        _ok(run_health_job(env))
    texts = receiver.texts()
    assert len(texts) == 1, texts
    assert texts[0].startswith("test-deploy: health check `ai` is FAIL") and "/healthz" in texts[0]
    assert receiver.posts[0]["blocks"][0]["type"] == "section"

    ai_service.start()
    for _ in range(2):
        _ok(run_health_job(env))
    texts = receiver.texts()
    assert len(texts) == 2, texts
    assert texts[1].startswith("test-deploy: health check `ai` recovered after")


def _make_dead_job(conn: psycopg.Connection[tuple[object, ...]]) -> uuid.UUID:
    """A job that used its last attempt, through the queue's own functions."""
    job_id = conn.execute("select private.job_enqueue('echo', '{\"fail\": \"boom\"}'::jsonb)").fetchone()[0]  # type: ignore[index]
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (job_id,))
    claimed = conn.execute(
        "select id from private.job_claim('test-worker', array['echo'], 10, interval '1 minute')"
    ).fetchall()
    assert (job_id,) in claimed
    conn.execute("select private.job_fail(%s, 'test-worker', 'boom')", (job_id,))
    assert conn.execute("select status from public.jobs where id = %s", (job_id,)).fetchone() == ("dead",)
    return job_id  # type: ignore[no-any-return]


def test_dead_letters_alert_once_across_concurrent_processes_then_recover(
    healthy_url: str, receiver: Receiver, data_dir: Path
) -> None:
    env = health_env(healthy_url, data_dir, webhook=receiver.url)
    _ok(run_health_job(env))
    assert receiver.posts == []
    with psycopg.connect(healthy_url, autocommit=True) as conn:
        dead = [_make_dead_job(conn) for _ in range(3)]

    # Two schedule runs at the same moment (two worker processes), then a third later.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "workers.cli.main", "cron", "run", "health-check", "--json"],
            env=cli_env(healthy_url, **{k: v for k, v in env.items() if k != "DATABASE_URL"}),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    _ok(run_health_job(env))
    texts = receiver.texts()
    assert len(texts) == 1, texts
    assert "`queue` is FAIL" in texts[0] and "3 dead job(s)" in texts[0] and "echo 3" in texts[0]

    for job_id in dead:  # the operator's fix: re-queue them (docs/health.md#queue)
        retried = backline("jobs", "retry", str(job_id), env={"DATABASE_URL": healthy_url})
        assert retried.returncode == 0, retried.stderr
    for _ in range(2):
        _ok(run_health_job(env))
    texts = receiver.texts()
    assert len(texts) == 2, texts
    assert "`queue` recovered" in texts[1]


def test_stopped_cron_alerts_once_then_recovers_when_workers_tick(
    healthy_url: str, receiver: Receiver, data_dir: Path
) -> None:
    env = health_env(healthy_url, data_dir, webhook=receiver.url)
    _ok(run_health_job(env))
    assert receiver.posts == []
    # No worker ticked for hours: metrics' run at its due time never happened.
    with psycopg.connect(healthy_url, autocommit=True) as conn:
        conn.execute(
            "update private.cron_schedules set last_run_at = now() - interval '7 hours',"
            " next_run_at = now() - interval '1 hour' where name = 'metrics'"
        )
    for _ in range(2):
        _ok(run_health_job(env))
    texts = receiver.texts()
    assert len(_about(texts, "cron")) == 1 and len(texts) == 1, texts
    assert "`cron` is FAIL" in texts[0] and "did not run: metrics (due 6" in texts[0]

    # Workers start again: one tick fires the overdue schedule.
    tick = backline("workers", "run", "echo", "--once", env={"DATABASE_URL": healthy_url})
    assert tick.returncode == 0, tick.stderr
    for _ in range(2):
        _ok(run_health_job(env))
    texts = receiver.texts()
    assert len(texts) == 2, texts
    assert "`cron` recovered" in texts[1]


def test_a_refused_delivery_is_sent_again_next_run_and_only_then(
    healthy_url: str, receiver: Receiver, data_dir: Path
) -> None:
    env = health_env(healthy_url, data_dir, webhook=receiver.url, ai_url="http://127.0.0.1:9/unused")
    receiver.refuse = 1
    failed = run_health_job(env)
    assert failed.returncode == 1
    job = json.loads(failed.stdout)
    assert job["status"] != "succeeded" and "alert webhook answered HTTP 500" in job["last_error"]
    assert receiver.posts == []
    _ok(run_health_job(env))
    _ok(run_health_job(env))
    texts = receiver.texts()
    assert len(texts) == 1 and "`ai` is FAIL" in texts[0], texts
    with psycopg.connect(healthy_url) as conn:
        row = conn.execute(
            "select status, alerting, notified_at is not null from private.health_alerts"
            " where check_name = 'ai'"
        ).fetchone()
    assert row == ("fail", True, True)


def test_without_a_webhook_the_alert_is_logged_once(healthy_url: str, data_dir: Path) -> None:
    env = health_env(healthy_url, data_dir, webhook=None, ai_url="http://127.0.0.1:9")
    first = run_health_job(env)
    job = _ok(first)
    assert job["result"]["channel"] == "log"  # type: ignore[index]
    assert [n["check"] for n in job["result"]["notices"]] == ["ai"]  # type: ignore[index]
    assert "test-deploy: health check `ai` is FAIL" in first.stderr
    again = run_health_job(env)
    assert _ok(again)["result"]["notices"] == []  # type: ignore[index]
    assert "`ai` is FAIL" not in again.stderr  # said once, not every run
