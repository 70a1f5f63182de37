"""`backline ai ...`: run the AI proxy, rotate the key-encryption master key, read usage."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workers.cli.common import (
    AsJson,
    DatabaseUrl,
    print_json,
    print_table,
    settings,
    stderr_console,
    target_url,
    targets_embedded,
)
from workers.errors import BacklineError

if TYPE_CHECKING:
    from workers.ai.keys import MasterKeys
    from workers.jobs.logs import Outage

LOG_FORMATS = ("text", "json")  # workers.jobs.logs.LOG_FORMATS

app = typer.Typer(
    help="The AI proxy: serve it, rotate key encryption, report usage and cost.", no_args_is_help=True
)
keys_app = typer.Typer(help="Stored provider keys (encrypted).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _master_spec(database_url: str | None) -> str:
    """The master keys the proxy uses: BACKLINE_AI_MASTER_KEYS, else on the embedded default the
    local key file `backline up` made (and gave the proxy it started)."""
    from workers.cli.up import ai_master_keys

    return ai_master_keys(settings(), targets_embedded(database_url))


def _master(database_url: str | None) -> MasterKeys:
    from workers.ai.keys import MasterKeys
    from workers.cli.up import local_ai_master_keys_path

    spec = _master_spec(database_url)
    if not spec:
        local = (
            f" and there is no local key file {local_ai_master_keys_path(settings().data_dir)}"
            f" (`backline up` makes one)"
            if targets_embedded(database_url)
            else ""
        )
        raise BacklineError(
            f"BACKLINE_AI_MASTER_KEYS is not set{local} (format: 'id:base64-32-bytes[,id2:...]')"
        )
    return MasterKeys.parse(spec, settings().ai_master_key_id)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default BACKLINE_AI_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default BACKLINE_AI_PORT, 8787).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (default BACKLINE_AI_WORKERS, 1).")
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="text or json: with json every line on stderr (uvicorn, the connection pool, the"
            " per-call line, warnings, crashes; of every worker process) is one JSON object.",
        ),
    ] = "text",
    database_url: DatabaseUrl = None,
) -> None:
    """Run the AI proxy (Starlette on uvicorn) until interrupted.

    Access logs are off on purpose: query strings may carry prompts.
    """
    if log_format not in LOG_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_FORMATS)}", param_hint="--log-format")
    if log_format == "text":
        from workers.ai.app import configure_logging

        configure_logging()
        _serve(host, port, workers, database_url, None)
        return
    import psycopg

    from workers.ai.app import configure_json_logging
    from workers.db.connect import first_line

    outage = configure_json_logging()
    try:
        _serve(host, port, workers, database_url, outage)
    except (BacklineError, psycopg.Error) as exc:  # still one JSON line
        error = str(exc) if isinstance(exc, BacklineError) else f"database error: {first_line(exc)}"
        outage.log.event("ai.error", error=error)
        raise typer.Exit(1) from None


def _serve(
    host: str | None, port: int | None, workers: int | None, database_url: str | None, outage: Outage | None
) -> None:
    import uvicorn

    from workers.ai.app import create_app
    from workers.ai.http_client import check_proxy_env, ssl_context
    from workers.db.connect import is_local_url
    from workers.settings import DEV_JWT_SECRET

    # Fail fast with one readable line (the app's startup would refuse them too).
    check_proxy_env()
    ssl_context()
    spec = _master_spec(database_url)
    settings_ = settings().model_copy(update={"ai_master_keys": spec})
    if spec:
        _master(database_url)  # fail fast on a malformed master key
        os.environ["BACKLINE_AI_MASTER_KEYS"] = spec  # for worker processes (see below)
    url = target_url(database_url)
    if settings_.jwt_secret == DEV_JWT_SECRET and not (targets_embedded(database_url) or is_local_url(url)):
        # Anyone can sign tokens with the public development secret: never accept them for real users.
        raise BacklineError(
            "SUPABASE_JWT_SECRET is the public development secret but the database is not local; "
            "set it to your project's JWT secret"
        )
    options: dict[str, Any] = dict(
        host=host or settings_.ai_host,
        port=port or settings_.ai_port,
        access_log=False,
        log_level="info",
        proxy_headers=True,
    )
    if outage is not None:
        options["log_config"] = None  # uvicorn's loggers propagate to the JSON root handler
    n = workers or settings_.ai_workers
    if n == 1:
        uvicorn.run(create_app(settings_, url, outage), **options)
        return
    # Several processes, one event loop each, sharing the port: each builds its own app (and,
    # being spawned, configures its own logging: the factory's name says which).
    os.environ["DATABASE_URL"] = url
    factory = "json_app_from_env" if outage is not None else "app_from_env"
    uvicorn.run(f"workers.ai.app:{factory}", factory=True, workers=n, **options)


@keys_app.command("rotate")
def rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10000, help="Rows per transaction.")] = 200,
    database_url: DatabaseUrl = None,
) -> None:
    """Re-wrap every stored key's data key under the current master key (no downtime).

    Steps: add the new key to BACKLINE_AI_MASTER_KEYS (keep the old one), set
    BACKLINE_AI_MASTER_KEY_ID to it, restart/redeploy the proxy, run this, then
    remove the old key once this reports 0 left. Reads the keys the proxy uses: on the
    embedded default without BACKLINE_AI_MASTER_KEYS, the local key file `backline up` made.
    """
    from rich.progress import Progress

    from workers.ai.rotate import pending_count, rotate_master_key

    master = _master(database_url)
    url = target_url(database_url)
    total = pending_count(url, master)
    with Progress(transient=True, console=stderr_console()) as progress:
        task = progress.add_task(f"re-wrapping under {master.current!r}", total=total)
        done = rotate_master_key(
            url, master, batch_size=batch_size, progress=lambda n: progress.update(task, advance=n)
        )
    left = pending_count(url, master)
    typer.echo(f"re-wrapped {done} key(s) under master key {master.current!r}; {left} left under other keys")


def _since(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC) - timedelta(days=30)
    match = re.fullmatch(r"(\d+)([hdw])", value)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        return (
            datetime.now(UTC)
            - {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BacklineError(f"--since must be like 24h, 7d, 2w or an ISO date, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


USAGE_SQL = """
select {group} as key, count(*) as requests,
       count(*) filter (where status = 'ok') as ok,
       count(*) filter (where status = 'error') as errors,
       count(*) filter (where status = 'interrupted') as interrupted,
       sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
       round(sum(cost_usd), 6) as cost_usd,
       percentile_cont(0.5) within group (order by latency_ms) as p50_ms
  from public.ai_usage where created_at >= %s
 group by 1 order by cost_usd desc, requests desc
"""
GROUPS = {"model": "provider || '/' || model", "user": "user_id::text", "day": "created_at::date::text"}


@app.command()
def usage(
    since: Annotated[
        str | None, typer.Option(help="Window start: 24h, 7d, 2w or ISO date (default 30d).")
    ] = None,
    by: Annotated[str, typer.Option(help="Group by model, user or day.")] = "model",
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Requests, tokens and estimated cost of AI calls (all users), grouped."""
    if by not in GROUPS:
        raise BacklineError(f"--by must be one of {', '.join(GROUPS)}")
    from workers.db.connect import connect

    start = _since(since)
    with connect(target_url(database_url)) as conn:
        cur = conn.execute(USAGE_SQL.format(group=GROUPS[by]), (start,))
        cols = [d.name for d in cur.description or []]
        rows: list[dict[str, Any]] = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        r["cost_usd"] = float(r["cost_usd"] or 0)
        r["p50_ms"] = None if r["p50_ms"] is None else round(float(r["p50_ms"]), 1)
    if as_json:
        print_json({"since": start.isoformat(), "by": by, "rows": rows})
        return
    columns = [
        "key",
        "requests",
        "ok",
        "errors",
        "interrupted",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "p50_ms",
    ]
    print_table(rows, columns, title=f"AI usage since {start:%Y-%m-%d %H:%M} UTC by {by}")
