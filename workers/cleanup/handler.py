"""The `cleanup` job kind: payload {"tasks": "all" | [names], "exclude": [...], "dry_run": false,
"batch_size": n}. Its result is the count per task."""

from __future__ import annotations

from typing import Any

from workers.cleanup.runner import available_tasks, run_cleanups, select_tasks
from workers.cleanup.tasks import CleanupContext
from workers.jobs.context import JobContext
from workers.jobs.errors import JobInterrupted, PermanentJobError
from workers.jobs.queue import open_queue


def run_cleanup_job(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    queue = open_queue(ctx.settings, ctx.database_url, pool_size=1)
    try:
        try:
            tasks = select_tasks(available_tasks(queue), payload.get("tasks", "all"), payload.get("exclude"))
        except Exception as exc:
            raise PermanentJobError(str(exc)) from None
        dry_run = bool(payload.get("dry_run", False))
        results = run_cleanups(
            queue,
            CleanupContext(ctx.settings, ctx.database_url),
            tasks,
            batch_size=int(payload.get("batch_size") or ctx.settings.cleanup_batch_size),
            dry_run=dry_run,
            on_batch=lambda _task, _items: ctx.heartbeat(),
            should_stop=ctx.should_stop,
            keep_items=False,
        )
    finally:
        queue.close()
    if ctx.should_stop():
        raise JobInterrupted("cleanup interrupted; it is idempotent and resumes on the next attempt")
    return {"dry_run": dry_run, "tasks": {r.task: r.count for r in results}}
