"""`backline up` / `backline down`: everything a developer needs on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from workers.cli.common import DatabaseUrl, target_url, targets_embedded
from workers.cli.db import apply_migrations
from workers.cli.services import Service, Services
from workers.db.connect import redact
from workers.db.embedded import EmbeddedServer
from workers.db.reset import seed
from workers.settings import get_settings

SERVICES = (Service("workers", ("workers", "run")),)


def up(
    database_url: DatabaseUrl = None,
    services: Annotated[
        bool, typer.Option("--services/--no-services", help="Also start the background services.")
    ] = True,
) -> None:
    """Start the embedded database (unless a URL is set), migrate, seed, start the workers.

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
    if services:
        supervisor = Services(get_settings().data_dir)
        for service in SERVICES:
            pid, started = supervisor.start(service, {"DATABASE_URL": url})
            state = "started" if started else "already running"
            typer.echo(f"{service.name:<10} {state} (pid {pid}), log {supervisor.log_path(service.name)}")
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
