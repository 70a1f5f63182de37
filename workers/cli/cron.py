"""`backline cron ...`: list, change (set) and run schedules (what CI or a scheduler calls), cleanups."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workers.cli.common import AsJson, DatabaseUrl, info, open_cli_queue, print_json, print_table, settings
from workers.errors import BacklineError

if TYPE_CHECKING:
    from workers.cleanup.runner import TaskResult
    from workers.jobs.models import Job
    from workers.jobs.queue import Queue

app = typer.Typer(help="Cron schedules and cleanup tasks.", no_args_is_help=True)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Print what would be done; change nothing.")]


def _next(schedule: str) -> datetime | None:
    from workers.cron.expr import CronError, CronExpr

    try:
        return CronExpr.parse(schedule).next_after(datetime.now(UTC))
    except CronError:
        return None


@app.command("list")
def list_schedules(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """List cron schedules (UTC) with their next and last run."""
    queue = open_cli_queue(database_url)
    try:
        schedules = queue.cron_list()
    finally:
        queue.close()
    rows = []
    for s in schedules:
        row = s.as_dict()
        row["next_run_at"] = s.next_run_at or (_next(s.schedule) if s.enabled else None)  # disabled: never
        rows.append(row)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ("name", "schedule", "job_kind", "enabled", "next_run_at", "last_run_at"))


@app.command("set")
def set_schedule(
    name: Annotated[str, typer.Argument(help="Schedule name (see `backline cron list`).")],
    expression: Annotated[
        str | None,
        typer.Argument(help="New 5-field cron expression in UTC, e.g. '*/5 * * * *' (quote it)."),
    ] = None,
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Turn the schedule on or off (default: unchanged)."),
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a schedule's expression (and/or turn it on or off); its next run follows at once.

    The database recomputes next_run_at in the same statement (so does a plain SQL
    UPDATE of private.cron_schedules.schedule): an edit to '* * * * *' fires within the
    minute on any running worker. A disabled schedule has no next run and never fires;
    enabling it again starts from now. A bad expression exits 2, an unknown name 1;
    either way nothing changes.
    """
    if expression is None and enabled is None:
        raise typer.BadParameter("give an expression and/or --enable/--disable", param_hint="EXPRESSION")
    from workers.cron.expr import CronError, CronExpr

    if expression is not None:
        try:
            CronExpr.parse(expression).next_after(datetime.now(UTC))
        except CronError as exc:
            raise typer.BadParameter(str(exc), param_hint="EXPRESSION") from None
    queue = open_cli_queue(database_url)
    try:
        if not any(s.name == name for s in queue.cron_list()):
            raise BacklineError(f"no cron schedule named {name!r}; see `backline cron list`")
        schedule = queue.cron_set(name, expression, enabled)
    finally:
        queue.close()
    if as_json:
        print_json(schedule.as_dict())
    else:
        state = "enabled" if schedule.enabled else "disabled"
        typer.echo(f"{schedule.name}: {schedule.schedule} ({state}), next run {schedule.next_run_at or '-'}")


def _print_cleanup(results: list[TaskResult], dry_run: bool, as_json: bool) -> None:
    if as_json:
        print_json({"dry_run": dry_run, "tasks": [r.as_dict() | {"items": r.items} for r in results]})
        return
    verb = "would delete" if dry_run else "deleted"
    for r in results:
        more = " (limit reached; more remain)" if r.truncated else ""
        info(f"{r.task}: {verb} {r.count}{more}")
    info(f"total: {verb} {sum(r.count for r in results)} item(s) in {len(results)} task(s)")


def _cleanup(
    queue: Queue, tasks: Any, exclude: Any, *, dry_run: bool, batch_size: int, limit: int, as_json: bool
) -> list[TaskResult]:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from workers.cleanup.runner import available_tasks, run_cleanups, select_tasks
    from workers.cleanup.tasks import CleanupContext
    from workers.cli.common import stderr_console

    selected = select_tasks(available_tasks(queue), tasks, exclude)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        transient=True,
        disable=as_json,
        console=stderr_console(),
    ) as progress:
        bar = progress.add_task("cleanup", total=None)

        def on_batch(task: str, items: list[str]) -> None:
            progress.update(bar, description=f"{task}: {len(items)} item(s) in the last batch")
            if dry_run and not as_json:
                for item in items:
                    typer.echo(f"{task}: {item}")

        results = run_cleanups(
            queue,
            CleanupContext(settings(), queue.database_url),
            selected,
            batch_size=batch_size,
            dry_run=dry_run,
            dry_run_limit=limit,
            on_batch=on_batch,
            keep_items=as_json,
        )
    _print_cleanup(results, dry_run, as_json)
    return results


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Schedule name (see `backline cron list`).")],
    dry_run: DryRun = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Run one schedule now, in this process, and record it as a job.

    What CI (.github/workflows/cron.yml) or any external scheduler calls. With
    --dry-run a cleanup schedule prints every item it would delete; other
    kinds print the job they would enqueue. Prints the job's outcome (--json: the whole job row)
    and exits 1 unless it succeeded.
    """
    from workers.jobs.logs import JobLog
    from workers.jobs.registry import HANDLERS
    from workers.jobs.worker import Worker

    s = settings()
    queue = open_cli_queue(database_url, pool_size=2)
    try:
        schedule = next((s for s in queue.cron_list() if s.name == name), None)
        if schedule is None:
            raise BacklineError(f"no cron schedule named {name!r}; see `backline cron list`")
        if schedule.job_kind not in HANDLERS:
            raise BacklineError(f"no handler registered for job kind {schedule.job_kind!r} (schedule {name})")
        if dry_run:
            if schedule.job_kind == "cleanup":
                _cleanup(
                    queue,
                    schedule.payload.get("tasks", "all"),
                    schedule.payload.get("exclude"),
                    dry_run=True,
                    batch_size=s.cleanup_batch_size,
                    limit=1000,
                    as_json=as_json,
                )
            else:
                plan = {"would_enqueue": schedule.job_kind, "payload": schedule.payload}
                if as_json:
                    print_json(plan)
                else:
                    payload = json.dumps(schedule.payload)
                    typer.echo(f"would enqueue a {schedule.job_kind} job with payload {payload}")
            return
        job_id = queue.cron_run_now(name)
        worker = Worker(
            queue,
            HANDLERS,
            settings=s,
            kinds=[schedule.job_kind],
            concurrency=1,
            log=JobLog("json" if as_json else "text"),
            cron=False,
        )
        job = worker.run_one(job_id)
    finally:
        queue.close()
    if job is None:
        raise BacklineError(f"job {job_id} was taken by another worker before this process could run it")
    if as_json:
        print_json(job.as_dict())
    else:
        typer.echo("\n".join(_outcome(name, job)))
    if job.status != "succeeded":
        raise typer.Exit(1)


def _outcome(name: str, job: Job) -> list[str]:
    """What a `cron run` did, for people: the job, its status, then its result one key per line."""
    lines = [f"{name}: job {job.id} {job.status} (attempt {job.attempts}/{job.max_attempts})"]
    result = job.result
    if isinstance(result, dict):
        for key, value in result.items():
            text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
            lines.append(f"  {key}: {text}")
    elif result is not None:
        lines.append(f"  result: {json.dumps(result, default=str)}")
    if job.last_error:
        lines.append(f"  error: {job.last_error}")
    return lines


def _one_line(description: str, width: int = 100) -> str:
    """The first sentence of a task's description, on one line (docstrings and comments are longer)."""
    text = re.sub(r"\s+", " ", description).strip()
    sentence = re.split(r"(?<=[.!?])\s|;\s", text, maxsplit=1)[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 1].rstrip() + "…"


@app.command("cleanup")
def cleanup(
    tasks: Annotated[list[str] | None, typer.Argument(help="Tasks to run (default: all).")] = None,
    dry_run: DryRun = False,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, max=100000)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Dry run: items listed per task.")] = 1000,
    list_only: Annotated[bool, typer.Option("--list", help="Only list the available tasks.")] = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Run cleanup tasks directly (every private.cleanup_* function and the Python tasks).

    --list prints each task with a one-line summary (--json: the full descriptions).
    """
    from workers.cleanup.runner import available_tasks

    s = settings()
    queue = open_cli_queue(database_url)
    try:
        if list_only:
            available = available_tasks(queue)
            if as_json:
                print_json(available)
            else:
                print_table(
                    [{"task": k, "what it removes": _one_line(v)} for k, v in available.items()],
                    ("task", "what it removes"),
                )
            return
        _cleanup(
            queue,
            tasks or "all",
            None,
            dry_run=dry_run,
            batch_size=batch_size or s.cleanup_batch_size,
            limit=limit,
            as_json=as_json,
        )
    finally:
        queue.close()
