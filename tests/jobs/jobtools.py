"""Helpers for the job tests: run the CLI in a subprocess, wait for a job state."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers.settings import PROJECT_ROOT


def cli_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "PYTHONPATH": str(PROJECT_ROOT),
            "BACKLINE_JOBS_LEASE_SECONDS": "2",
            "BACKLINE_JOBS_POLL_SECONDS": "0.2",
            "BACKLINE_JOBS_DRAIN_SECONDS": "10",
        }
    )
    env.update(extra)
    return env


def start_cli(url: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli.main", *args],
        env=cli_env(url, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def job_row(url: str, job_id: uuid.UUID) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        row = conn.execute("select * from public.jobs where id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def enqueue(url: str, kind: str, payload: dict[str, Any] | None = None, **kw: Any) -> uuid.UUID:
    from psycopg.types.json import Jsonb

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select private.job_enqueue(%s, %s)", (kind, Jsonb(payload or {}))).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))
