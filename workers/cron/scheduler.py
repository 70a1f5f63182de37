"""Fire due schedules exactly once across processes.

The schedules and their state are rows of private.cron_schedules; this module
only computes times. A due schedule is fired by private.cron_fire(name, due,
next), a compare-and-set on next_run_at in the same transaction as the
enqueue: of several workers ticking at once, exactly one gets the job id.
Runs missed while no worker was up are coalesced into one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from workers.cron.expr import CronError, CronExpr
from workers.jobs.logs import JobLog
from workers.jobs.queue import Queue


def tick(queue: Queue, log: JobLog, *, worker: str = "", now: datetime | None = None) -> list[uuid.UUID]:
    """Initialise unset schedules and fire the due ones; returns the jobs this caller enqueued."""
    now = now or datetime.now(UTC)
    fired: list[uuid.UUID] = []
    for schedule in queue.cron_list():
        if not schedule.enabled:
            continue
        try:
            expr = CronExpr.parse(schedule.schedule)
        except CronError as exc:
            log.event("cron.invalid", worker=worker, schedule=schedule.name, error=str(exc))
            continue
        if schedule.next_run_at is None:
            queue.cron_set_next(schedule.name, None, expr.next_after(now))
            continue
        if schedule.next_run_at > now:
            continue
        next_run = expr.next_after(max(now, schedule.next_run_at))
        job_id = queue.cron_fire(schedule.name, schedule.next_run_at, next_run)
        if job_id is not None:
            fired.append(job_id)
            log.event(
                "cron.fired",
                worker=worker,
                schedule=schedule.name,
                kind=schedule.job_kind,
                job_id=str(job_id),
                due=schedule.next_run_at.isoformat(),
                next=next_run.isoformat(),
            )
    return fired


def next_run(schedule_text: str, now: datetime | None = None) -> datetime:
    return CronExpr.parse(schedule_text).next_after(now or datetime.now(UTC))
