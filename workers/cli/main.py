"""Entry point of the `backline` command."""

from __future__ import annotations

import sys

import psycopg
import typer

from workers.cli import ai, audit, cron, db, gen, health, jobs, reports, token, up, users, workers
from workers.db.connect import first_line
from workers.errors import BacklineError

app = typer.Typer(
    help="Backline: the Supabase backend for local-first apps. Operator CLI.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(jobs.app, name="jobs")
app.add_typer(workers.app, name="workers")
app.add_typer(cron.app, name="cron")
app.add_typer(ai.app, name="ai")
app.command("up")(up.up)
app.command("down")(up.down)
app.command("token")(token.token)
app.add_typer(users.app, name="users")
app.add_typer(gen.app, name="gen")
app.command("health")(health.health)
app.add_typer(reports.app, name="reports")
app.add_typer(audit.app, name="audit")


def run() -> None:
    """Console-script entry: expected failures become one line on stderr and exit 1.

    Usage errors (unknown command, bad option) are Typer's: a message and exit 2.
    """
    try:
        app()
    except BacklineError as exc:
        typer.echo(f"backline: {exc}", err=True)
        sys.exit(1)
    except psycopg.Error as exc:
        typer.echo(f"backline: database error: {first_line(exc)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
