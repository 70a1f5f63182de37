"""Handlers that ship with the job runtime itself: `echo` (diagnostics) and `usage_report`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers.jobs.context import JobContext
from workers.jobs.errors import JobInterrupted, PermanentJobError


def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Return the payload. Diagnostics for a deployment (and the tests and benchmark).

    {"sleep": seconds} works that long (heartbeating, stoppable); {"fail": "msg"}
    raises; {"fail_permanently": "msg"} fails without retry.
    """
    sleep = float(payload.get("sleep", 0) or 0)
    deadline = time.monotonic() + sleep
    while time.monotonic() < deadline:
        if ctx.should_stop():
            raise JobInterrupted("echo interrupted")
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
    if payload.get("fail_permanently"):
        raise PermanentJobError(str(payload["fail_permanently"]))
    if payload.get("fail"):
        raise RuntimeError(str(payload["fail"]))
    return {"echo": payload, "attempt": ctx.attempt}


def usage_report(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Weekly usage summary: users, storage, jobs of the last 7 days.

    Posted as a readable message to the alert channel (BACKLINE_ALERT_WEBHOOK_URL, else the
    log) and stored as the job's result. A refused post fails the attempt, so it is retried.
    """
    if not ctx.database_url:
        raise PermanentJobError("usage_report needs a database URL (DATABASE_URL)")
    with psycopg.connect(ctx.database_url, row_factory=dict_row, prepare_threshold=None) as conn:
        users = conn.execute(
            "select count(*) as total, count(*) filter (where p.is_anonymous) as anonymous,"
            " count(*) filter (where p.created_at > now() - interval '7 days') as new_last_7_days,"
            " coalesce(sum(p.storage_used), 0)::bigint as storage_bytes"
            " from public.profiles p"
        ).fetchone()
        plans = conn.execute(
            "select plan, count(*) as users from public.profiles group by plan order by plan"
        ).fetchall()
        jobs = conn.execute(
            "select kind, status, count(*) as jobs from public.jobs"
            " where created_at > now() - interval '7 days' group by kind, status order by kind, status"
        ).fetchall()
    report: dict[str, Any] = {"users": users, "plans": plans, "jobs_last_7_days": jobs}
    from workers.health.messages import usage_report as usage_message
    from workers.health.webhook import channel_for

    channel = channel_for(ctx.settings)
    channel.send(usage_message(ctx.settings.alert_label, report, datetime.now(UTC)))
    return report | {"delivered_to": channel.name}
