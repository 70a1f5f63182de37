"""Announce each check's transitions once: an alert when it goes bad, a recovery when it is ok again.

State is one row per check in private.health_alerts. For each check a process
takes the row with `select ... for update skip locked` (creating it first if
new), decides, sends, and records, all in one transaction: a second process
running the schedule at the same time skips a row that is being handled and,
once it is committed, sees `alerting` already set, so a transition is announced
exactly once across processes. If the channel refuses a message, the status is
recorded but `alerting` is not changed, so the next run sends it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from psycopg.types.json import Jsonb

from workers.db.connect import connect
from workers.health import messages
from workers.health.checks import CheckResult
from workers.health.webhook import Channel, DeliveryError


@dataclass(frozen=True)
class Notice:
    kind: Literal["alert", "recovery"]
    check: str
    status: str
    delivered: bool

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "check": self.check, "status": self.status, "delivered": self.delivered}


@dataclass
class AlertRun:
    channel: str
    notices: list[Notice] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # rows another process was handling
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "notices": [n.as_dict() for n in self.notices],
            "skipped": self.skipped,
            "errors": self.errors,
        }


def announce(url: str, results: list[CheckResult], channel: Channel, *, label: str) -> AlertRun:
    """Record every result and send the alerts and recoveries its transition calls for."""
    run = AlertRun(channel.name)
    with connect(url) as conn:
        for result in results:
            with conn.transaction():
                conn.execute(
                    "insert into private.health_alerts (check_name, status, detail, value)"
                    " values (%s, 'ok', '', null) on conflict (check_name) do nothing",
                    (result.name,),
                )
                row = conn.execute(
                    "select a.alerting, a.status, a.status_since, now() from private.health_alerts a"
                    " where a.check_name = %s for update skip locked",
                    (result.name,),
                ).fetchone()
                if row is None:
                    run.skipped.append(result.name)
                    continue
                alerting, status_since, now = bool(row[0]), _time(row[2]), _time(row[3])
                bad = not result.ok
                notice_kind: Literal["alert", "recovery"] | None = None
                if bad and not alerting:
                    notice_kind = "alert"
                elif not bad and alerting:
                    notice_kind = "recovery"
                delivered = False
                if notice_kind is not None:
                    message = (
                        messages.alert(label, result)
                        if notice_kind == "alert"
                        else messages.recovery(label, result, min(status_since, now), now)
                    )
                    try:
                        channel.send(message)
                        delivered = True
                    except DeliveryError as exc:
                        run.errors.append(f"{result.name} {notice_kind}: {exc}")
                    run.notices.append(Notice(notice_kind, result.name, result.status, delivered))
                conn.execute(
                    "update private.health_alerts a"
                    "   set status = %s, detail = %s, value = %s, checked_at = now(),"
                    "       status_since = case when (a.status = 'ok') = (%s = 'ok')"
                    "                           then a.status_since else now() end,"
                    "       alerting = %s, notified_at = case when %s then now() else a.notified_at end"
                    " where a.check_name = %s",
                    (
                        result.status,
                        result.detail[:2000],
                        Jsonb(result.value),
                        result.status,
                        bad if delivered else bool(alerting),
                        delivered,
                        result.name,
                    ),
                )
    return run


def _time(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value
