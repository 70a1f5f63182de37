"""`backline jobs ...`: inspect, enqueue and re-queue background jobs."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workers.cli.common import AsJson, DatabaseUrl, open_cli_queue, parse_uuid, print_json, print_table
from workers.errors import BacklineError

if TYPE_CHECKING:
    from workers.jobs.models import Job

# The statuses of public.jobs (workers.jobs.models.JOB_STATUSES; a test keeps them equal).
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "dead")

app = typer.Typer(help="Inspect, enqueue and retry background jobs.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="The job's id (a uuid, see `backline jobs list`).")]


def _job_id(text: str, param_hint: str = "JOB_ID") -> uuid.UUID:
    return parse_uuid(text, "a job id", param_hint)


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


def describe_job(job: Job) -> list[str]:
    """A job as `field: value` lines for people (payload and result as compact JSON)."""
    lines = [
        f"id:          {job.id}",
        f"kind:        {job.kind}",
        f"status:      {job.status}",
        f"attempts:    {job.attempts}/{job.max_attempts}",
        f"owner:       {job.owner_id or '-'}",
        f"priority:    {job.priority}",
        f"created:     {job.created_at or '-'}",
        f"run after:   {job.run_after or '-'}",
        f"finished:    {job.finished_at or '-'}",
        f"payload:     {json.dumps(job.payload, default=str)}",
        f"result:      {'-' if job.result is None else json.dumps(job.result, default=str)}",
    ]
    if job.locked_by:
        lines.append(f"locked by:   {job.locked_by} until {job.locked_until or '-'}")
    if job.last_error:
        lines.append(f"last error:  {job.last_error}")
    return lines


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
    queue = open_cli_queue(database_url)
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
def show(job_id: JobId, as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Show one job: state, payload, result and last error (--json: the whole row)."""
    uid = _job_id(job_id)
    queue = open_cli_queue(database_url)
    try:
        job = queue.get(uid)
    finally:
        queue.close()
    if job is None:
        raise BacklineError(f"job {job_id} does not exist")
    if as_json:
        print_json(job.as_dict())
    else:
        typer.echo("\n".join(describe_job(job)))


@app.command("retry")
def retry(job_id: JobId, database_url: DatabaseUrl = None) -> None:
    """Re-queue a dead or failed job with a fresh set of attempts."""
    uid = _job_id(job_id)
    queue = open_cli_queue(database_url)
    try:
        queue.retry(uid)
    finally:
        queue.close()
    typer.echo(f"job {job_id} queued again")


@app.command("enqueue")
def enqueue(
    kind: Annotated[str, typer.Argument(help="Job kind (public.job_kinds).")],
    payload: Annotated[str, typer.Option("--payload", help="JSON object given to the handler.")] = "{}",
    owner: Annotated[str | None, typer.Option("--owner", help="User the job belongs to (uuid).")] = None,
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
    owner_id = parse_uuid(owner, "--owner", "--owner") if owner else None
    queue = open_cli_queue(database_url)
    try:
        job_id = queue.enqueue(kind, data, owner_id, priority=priority)
    finally:
        queue.close()
    typer.echo(str(job_id))
