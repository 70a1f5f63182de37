"""`backline up` / `backline down`: everything a developer needs on this machine."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from workers.cli.common import DatabaseUrl, target_url, targets_embedded
from workers.cli.db import apply_migrations
from workers.cli.services import Service, Services, check_port_free
from workers.db import read_meter
from workers.db.connect import connect, redact
from workers.db.embedded import EmbeddedServer
from workers.db.reset import seed
from workers.settings import get_settings

SERVICES = (Service("workers", ("workers", "run")), Service("ai", ("ai", "serve")))


def local_ai_master_keys(data_dir: Path) -> str:
    """A development master key for the AI proxy, made once and kept (mode 0600) in the data dir."""
    path = data_dir.expanduser().resolve() / "ai-master-keys"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"local1:{base64.b64encode(secrets.token_bytes(32)).decode()}")
    return path.read_text().strip()


def up(
    database_url: DatabaseUrl = None,
    services: Annotated[
        bool, typer.Option("--services/--no-services", help="Also start the background services.")
    ] = True,
) -> None:
    """Start the embedded database (unless a URL is set), migrate, seed, start workers and AI proxy.

    Prints what runs. Services run detached with logs in <data dir>/services/;
    `backline down` stops them (and the embedded database).
    """
    url = target_url(database_url)
    embedded = targets_embedded(database_url)
    applied = apply_migrations(url)
    seeded = embedded and seed(url)
    typer.echo(f"database   {'embedded PostgreSQL' if embedded else 'external'}  {redact(url)}")
    typer.echo(f"migrations {len(applied)} applied now, schema up to date")
    if seeded:
        typer.echo("seed       supabase/seed.sql loaded (idempotent)")
    if embedded:
        with connect(url, autocommit=True) as conn:
            meter = read_meter.enable(conn)
        where = f"{meter.user}@{meter.host}:{meter.port}"
        typer.echo(f"api meter  every request counted, failing ones too ({where})")
    if services:
        settings = get_settings()
        supervisor = Services(settings.data_dir)
        env = {"DATABASE_URL": url}
        if embedded and not settings.ai_master_keys:
            env["BACKLINE_AI_MASTER_KEYS"] = local_ai_master_keys(settings.data_dir)
        # A taken port is refused before anything starts; a foreign server answering /healthz
        # there must never pass for the proxy.
        if supervisor.pid("ai") is None:
            check_port_free(settings.ai_host, settings.ai_port)
        started_now: list[str] = []
        try:
            for service in SERVICES:
                pid, started = supervisor.start(service, env)
                if started:
                    started_now.append(service.name)
                    if service.name == "ai":
                        supervisor.wait_serving("ai", pid, settings.ai_host, settings.ai_port)
                state = "started" if started else "already running"
                typer.echo(f"{service.name:<10} {state} (pid {pid}), log {supervisor.log_path(service.name)}")
        except BaseException:
            for name in reversed(started_now):  # leave nothing running that this command started
                supervisor.stop(name)
            raise
        typer.echo(f"{'ai proxy':<10} http://{settings.ai_host}:{settings.ai_port}  (GET /healthz)")
    typer.echo('next       psql "$(backline db url)"  ·  backline db status  ·  backline down')


def down(
    keep_database: Annotated[
        bool, typer.Option("--keep-database", help="Stop the services but leave the database running.")
    ] = False,
) -> None:
    """Stop what `backline up` started: the services, then the embedded database."""
    settings = get_settings()
    supervisor = Services(settings.data_dir)
    for name in supervisor.names():
        typer.echo(f"{name:<10} {'stopped' if supervisor.stop(name) else 'was not running'}")
    if not keep_database:
        stopped = EmbeddedServer(settings.data_dir).stop()
        typer.echo(f"{'database':<10} {'stopped' if stopped else 'was not running'}")
