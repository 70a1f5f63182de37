"""Entry point of the `backline` command.

LAZY-IMPORT RULE for every module under workers/cli/ (new command modules too): `backline --help`
and `--version` import all of them and must answer in well under 0.5 s (bench/cli_startup.py). At
module top import only the standard library, typer, typing helpers and workers.cli.common (plus
workers.errors); import psycopg, pydantic/settings, rich, httpx and every other workers.* package
INSIDE the command function that needs it (types for annotations under `if TYPE_CHECKING:`).
tests/cli/test_cli_startup.py fails when a heavy module is imported at startup.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from workers.cli import ai, audit, cron, db, gen, health, jobs, reports, token, up, users, workers
from workers.errors import BacklineError

DEBUG_ENV = "BACKLINE_DEBUG"


def _hide_flag_types() -> None:
    """Help screens show `<int>`/`<str>` for values but nothing for on/off flags (no stray `<bool>`)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()


def _print_version() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        typer.echo(f"backline {version('backline')}")
    except PackageNotFoundError:
        typer.echo("backline (not installed)")


def _version(value: bool) -> None:
    if value:
        _print_version()
        raise typer.Exit()


app = typer.Typer(
    help="Backline: the Supabase backend for local-first apps. Operator CLI.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,
)


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar=DEBUG_ENV, help="On failure print the full traceback, not one line."),
    ] = False,
) -> None:
    """Backline: the Supabase backend for local-first apps. Operator CLI."""
    if debug:
        os.environ[DEBUG_ENV] = "1"  # read by run() when a command fails


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


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes", "on")


def run() -> None:
    """Console-script entry: expected failures become one line on stderr and exit 1.

    Usage errors (unknown command, bad option) are Typer's: a message and exit 2. With
    --debug (or BACKLINE_DEBUG=1) the full traceback is printed instead of the one line.
    """
    if sys.argv[1:] == ["--version"]:
        _print_version()  # answered before Typer parses anything (its option parsing loads pydantic)
        return
    try:
        app()
    except BacklineError as exc:
        if _debugging():
            raise
        typer.echo(f"backline: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        psycopg = sys.modules.get("psycopg")  # imported lazily: only present if a command used it
        if psycopg is None or not isinstance(exc, psycopg.Error) or _debugging():
            raise
        from workers.db.connect import first_line

        typer.echo(f"backline: database error: {first_line(exc)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
