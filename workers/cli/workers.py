"""`backline workers run`: the long-running job worker (also fires due cron schedules)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from workers.cli.common import DatabaseUrl, info
from workers.errors import BacklineError

if TYPE_CHECKING:
    from workers.jobs.logs import JobLog, Outage

LOG_FORMATS = ("text", "json")  # workers.jobs.logs.LOG_FORMATS

app = typer.Typer(help="Run background job workers.", no_args_is_help=True)


@app.command("run")
def run(
    kinds: Annotated[
        list[str] | None, typer.Argument(help="Job kinds to run (default: every kind with a handler).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, max=256, help="Jobs run at once.")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Exit when no job is due and none is running.")
    ] = False,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="text or json: one line per event; with json every line on stderr (libraries and"
            " warnings included) is one JSON object.",
        ),
    ] = "text",
    no_cron: Annotated[bool, typer.Option("--no-cron", help="Do not fire due cron schedules.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Claim and run jobs until SIGTERM/SIGINT (or, with --once, until the queue is empty).

    Each job is claimed with a lease that a heartbeat renews; a worker that
    dies loses nothing (the lease expires and another worker takes the job).
    SIGTERM stops claiming, lets running jobs finish for
    BACKLINE_JOBS_DRAIN_SECONDS, then hands the rest back to the queue; a
    second signal hands them back at once. Wakes on NOTIFY backline_jobs and
    polls every BACKLINE_JOBS_POLL_SECONDS. Without a database URL but with
    SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, it works over RPC and wakes on
    a Realtime subscription to public.jobs (also used instead of LISTEN behind
    the transaction pooler, port 6543).
    """
    if log_format not in LOG_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_FORMATS)}", param_hint="--log-format")
    from workers.jobs.logs import JobLog, Outage, configure_process_logging
    from workers.jobs.worker import new_worker_id

    log = JobLog(log_format)
    worker_id = new_worker_id()
    outage = Outage(log, worker=worker_id)
    configure_process_logging(log, outage)
    try:
        _run(log, outage, worker_id, kinds, concurrency, once, no_cron, database_url)
    except BacklineError as exc:
        if log_format == "text":
            raise
        log.event("worker.error", worker=worker_id, error=str(exc))  # still one JSON line
        raise typer.Exit(1) from None


def _run(
    log: JobLog,
    outage: Outage,
    worker_id: str,
    kinds: list[str] | None,
    concurrency: int | None,
    once: bool,
    no_cron: bool,
    database_url: str | None,
) -> None:
    from workers.db.connect import redact
    from workers.jobs import wakeup
    from workers.jobs.queue import open_queue, require_kind_handlers
    from workers.jobs.registry import HANDLERS
    from workers.jobs.worker import RealtimeConfig, Worker
    from workers.settings import get_settings

    settings = get_settings()
    selected = sorted(set(kinds)) if kinds else sorted(HANDLERS)
    require_kind_handlers(selected, set(HANDLERS))
    concurrency = concurrency or settings.jobs_concurrency
    queue = open_queue(settings, database_url, pool_size=concurrency + 2)
    listen_url = queue.database_url if wakeup.listen_works(queue.database_url) else None
    realtime = None
    if listen_url is None and settings.supabase_url and settings.supabase_service_role_key:
        realtime = RealtimeConfig(settings.supabase_url, settings.supabase_service_role_key)
    worker = Worker(
        queue,
        HANDLERS,
        settings=settings,
        kinds=selected,
        concurrency=concurrency,
        log=log,
        listen_url=listen_url,
        realtime=realtime,
        cron=not no_cron,
        worker_id=worker_id,
        outage=outage,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if log.fmt == "text":
        where = redact(queue.database_url) if queue.database_url else "Supabase RPC"
        info(f"worker {worker.id} on {where}: kinds {', '.join(selected)}, concurrency {concurrency}")
    try:
        worker.run(once=once)
    finally:
        queue.close()
