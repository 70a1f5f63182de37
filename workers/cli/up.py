"""`backline up`: bring up everything a developer needs on this machine."""

from __future__ import annotations

import typer

from workers.cli.common import DatabaseUrl, target_url, targets_embedded
from workers.cli.db import apply_migrations
from workers.db.connect import redact
from workers.db.reset import seed


def up(database_url: DatabaseUrl = None) -> None:
    """Start the embedded database (unless a URL is set), migrate, seed, and print what runs."""
    url = target_url(database_url)
    embedded = targets_embedded(database_url)
    applied = apply_migrations(url)
    seeded = embedded and seed(url)
    typer.echo(f"database   {'embedded PostgreSQL' if embedded else 'external'}  {redact(url)}")
    typer.echo(f"migrations {len(applied)} applied now, schema up to date")
    if seeded:
        typer.echo("seed       supabase/seed.sql loaded (idempotent)")
    typer.echo('next       psql "$(backline db url)"  ·  backline db status  ·  backline db stop')
