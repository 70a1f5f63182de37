"""The `health_check` job (cron schedule health-check, every 5 minutes): check, then alert once."""

from __future__ import annotations

from typing import Any

from workers.health.alerts import announce
from workers.health.checks import run_checks
from workers.health.webhook import channel_for
from workers.jobs.context import JobContext
from workers.jobs.errors import PermanentJobError


def run_health_check(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Run every check and announce transitions; a refused delivery fails the attempt (retried).

    The result lists each check and what was announced. When the channel refused a message
    the attempt fails with that error: the state kept the alert pending, so the retry (or the
    next scheduled run) sends it.
    """
    if not ctx.database_url:
        raise PermanentJobError("health_check needs a database URL (DATABASE_URL): alert state is kept there")
    results = run_checks(ctx.settings, ctx.database_url)
    run = announce(ctx.database_url, results, channel_for(ctx.settings), label=ctx.settings.alert_label)
    if run.errors:
        raise RuntimeError("; ".join(run.errors))
    return {"checks": [r.as_dict() for r in results], **run.as_dict()}
