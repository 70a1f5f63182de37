"""Job handler for kind 'metrics' (cron every 6 hours): recompute the daily telemetry rollups."""

from __future__ import annotations

from typing import Any

import psycopg

from workers.export.context import HandlerContext, InvalidPayload, require_database_url


def run_metrics(ctx: HandlerContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Payload {"days": 2} (default): recompute private.telemetry_daily for the last N UTC days."""
    days = payload.get("days", 2)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        raise InvalidPayload(f"payload 'days' must be an integer 1-366, got {days!r}")
    url = require_database_url(ctx.settings, ctx.database_url)
    with psycopg.connect(url, application_name="backline-metrics", prepare_threshold=None) as conn:
        row = conn.execute("select private.telemetry_rollup_daily(%s)", (days,)).fetchone()
    return {"days": days, "rollup_rows": int(row[0]) if row else 0}
