"""Issue #13 item 8: the weekly usage report runs Sundays 00:00 UTC and reaches the operators' channel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from tests.health.conftest import Receiver, health_env
from tests.helpers import backline, create_user


def _seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        for anonymous in (False, False, True):
            user = create_user(conn, anonymous=anonymous)
            conn.execute("insert into public.profiles (id) values (%s) on conflict do nothing", (user,))
        conn.execute(
            "insert into public.jobs (kind, status, attempts, finished_at) values"
            " ('export', 'succeeded', 1, now()), ('export', 'dead', 5, now()),"
            " ('thumbnail', 'succeeded', 1, now())"
        )


def test_schedule_is_sunday_midnight_utc(clone_url: str) -> None:
    with psycopg.connect(clone_url) as conn:
        schedule, next_run = conn.execute(
            "select schedule, next_run_at from private.cron_schedules where name = 'usage-report'"
        ).fetchone()  # type: ignore[misc]
    assert schedule == "0 0 * * 0"
    when = next_run.astimezone(UTC)
    assert (when.isoweekday(), when.hour, when.minute) == (7, 0, 0)
    assert (when - datetime.now(UTC)).days < 7


def test_report_is_posted_once_as_a_readable_summary_and_kept_as_the_result(
    clone_url: str, receiver: Receiver, data_dir: Path
) -> None:
    _seed(clone_url)
    result = backline(
        "cron", "run", "usage-report", "--json", env=health_env(clone_url, data_dir, webhook=receiver.url)
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded" and job["result"]["delivered_to"] == "webhook"
    assert job["result"]["users"]["total"] == 3
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    text = post["text"]
    assert text.startswith("test-deploy: weekly usage report")
    assert "3 users (1 anonymous, 3 new this week)" in text
    assert "Jobs: 4 (1 dead)" in text and "Plans: free 3" in text  # 4: the report's own job too
    blocks = json.dumps(post["blocks"])
    assert (
        "export: 1 dead, 1 succeeded" in blocks
        and "thumbnail: 1 succeeded" in blocks
        and "usage_report: 1 running" in blocks
    )


def test_without_a_webhook_the_report_is_logged(clone_url: str, data_dir: Path) -> None:
    result = backline(
        "cron", "run", "usage-report", "--json", env=health_env(clone_url, data_dir, webhook=None)
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"]["delivered_to"] == "log"
    assert "test-deploy: weekly usage report" in result.stderr


def test_a_refused_report_fails_the_attempt_so_it_is_retried(
    clone_url: str, receiver: Receiver, data_dir: Path
) -> None:
    receiver.refuse = 1
    result = backline(
        "cron", "run", "usage-report", "--json", env=health_env(clone_url, data_dir, webhook=receiver.url)
    )
    assert result.returncode == 1
    job = json.loads(result.stdout)
    assert job["status"] == "queued" and "alert webhook answered HTTP 500" in job["last_error"]
    assert receiver.posts == []
