"""`backline jobs ...`: inspect, enqueue and re-queue background jobs."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer

from workers.cli.common import AsJson, DatabaseUrl, print_json, print_table
from workers.errors import BacklineError
from workers.jobs.models import JOB_STATUSES, Job
from workers.jobs.queue import open_queue
from workers.settings import get_settings

app = typer.Typer(help="Inspect, enqueue and retry background jobs.", no_args_is_help=True)


def _job_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BacklineError(f"not a job id: {text!r} (expected a UUID)") from None


def _summary(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "attempts": f"{job.attempts}/{job.max_attempts}",
        "run_after": job.run_after,
        "owner_id": job.owner_id or "",
        "last_error": (job.last_error or "")[:80],
    }


@app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only this status: {', '.join(JOB_STATUSES)}.")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="At most this many.")] = 50,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List jobs, newest first."""
    if status is not None and status not in JOB_STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(JOB_STATUSES)}", param_hint="--status")
    queue = open_queue(get_settings(), database_url, pool_size=1)
    try:
        jobs = queue.list_jobs(status=status, kind=kind, limit=limit)
    finally:
        queue.close()
    if as_json:
        print_json([j.as_dict() for j in jobs])
    else:
        print_table(
            [_summary(j) for j in jobs], ("id", "kind", "status", "attempts", "run_after", "last_error")
        )


@app.command("show")
def show(job_id: str, database_url: DatabaseUrl = None) -> None:
    """Print one job as JSON (payload, result, last error)."""
    queue = open_queue(get_settings(), database_url, pool_size=1)
    try:
        job = queue.get(_job_id(job_id))
    finally:
        queue.close()
    if job is None:
        raise BacklineError(f"job {job_id} does not exist")
    print_json(job.as_dict())


@app.command("retry")
def retry(job_id: str, database_url: DatabaseUrl = None) -> None:
    """Re-queue a dead or failed job with a fresh set of attempts."""
    queue = open_queue(get_settings(), database_url, pool_size=1)
    try:
        queue.retry(_job_id(job_id))
    finally:
        queue.close()
    typer.echo(f"job {job_id} queued again")


@app.command("enqueue")
def enqueue(
    kind: str,
    payload: Annotated[str, typer.Option("--payload", help="JSON object given to the handler.")] = "{}",
    owner: Annotated[str | None, typer.Option("--owner", help="User the job belongs to.")] = None,
    priority: Annotated[int, typer.Option("--priority", min=-100, max=100)] = 0,
    database_url: DatabaseUrl = None,
) -> None:
    """Enqueue a job as the service (operators, scripts). Prints its id."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    if not isinstance(data, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--payload")
    queue = open_queue(get_settings(), database_url, pool_size=1)
    try:
        job_id = queue.enqueue(kind, data, _job_id(owner) if owner else None, priority=priority)
    finally:
        queue.close()
    typer.echo(str(job_id))
