"""Words for the alert channel: a check going bad, recovering, and the weekly usage report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from workers.health.checks import CheckResult
from workers.health.webhook import Message

RUNBOOK = "docs/health.md"
ICONS = {"fail": ":red_circle:", "warn": ":warning:", "ok": ":white_check_mark:"}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 2880:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d {minutes // 60 % 24} h"


def alert(label: str, result: CheckResult) -> Message:
    """A check is not ok (first run it is seen so)."""
    head = f"{label}: health check `{result.name}` is {result.status.upper()}"
    return Message(
        text=f"{head}: {result.detail}",
        blocks=[
            _section(f"{ICONS[result.status]} *{head}*\n{result.detail}"),
            _context(f"What to do: {RUNBOOK}#{result.name} · `backline health` shows every check"),
        ],
    )


def recovery(label: str, result: CheckResult, bad_since: datetime, now: datetime) -> Message:
    """A check that was alerted on is ok again."""
    head = f"{label}: health check `{result.name}` recovered after {_duration(now - bad_since)}"
    return Message(
        text=f"{head}: {result.detail}",
        blocks=[_section(f"{ICONS['ok']} *{head}*\n{result.detail}")],
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def usage_report(label: str, report: dict[str, Any], now: datetime) -> Message:
    """The weekly usage summary (workers.jobs.builtin.usage_report's result) as a readable message."""
    users = report["users"]
    week = f"{(now - timedelta(days=7)).date().isoformat()} to {now.date().isoformat()}"
    plans = ", ".join(f"{p['plan']} {p['users']:,}" for p in report["plans"]) or "none"
    jobs: dict[str, dict[str, int]] = {}
    for row in report["jobs_last_7_days"]:
        jobs.setdefault(row["kind"], {})[row["status"]] = int(row["jobs"])
    job_lines = [
        f"• {kind}: " + ", ".join(f"{n:,} {status}" for status, n in sorted(by_status.items()))
        for kind, by_status in sorted(jobs.items())
    ] or ["• none"]
    dead = sum(by_status.get("dead", 0) for by_status in jobs.values())
    summary = (
        f"{users['total']:,} users ({users['anonymous']:,} anonymous,"
        f" {users['new_last_7_days']:,} new this week),"
        f" {_size(int(users['storage_bytes']))} stored"
    )
    text = (
        f"{label}: weekly usage report, {week}. {summary}. Plans: {plans}."
        f" Jobs: {sum(sum(s.values()) for s in jobs.values()):,} ({dead:,} dead)."
    )
    return Message(
        text=text,
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": f"Weekly usage report ({week})"}},
            _section(f"*Users*: {summary}\n*Plans*: {plans}"),
            _section("*Jobs of the last 7 days*\n" + "\n".join(job_lines)),
            _context(f"{label} · stored as the usage_report job's result too"),
        ],
    )
