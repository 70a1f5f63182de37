"""Options and output helpers shared by every command group.

Imports stay light here (typer and the standard library): `backline --help` loads every command
module, so psycopg, pydantic, rich and the workers' packages are imported inside the helpers.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workers.errors import BacklineError

if TYPE_CHECKING:
    from rich.console import Console

    from workers.db.embedded import EmbeddedServer
    from workers.jobs.queue import Queue
    from workers.settings import Settings

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=["DATABASE_URL", "SUPABASE_DB_URL"],
        help="Target Postgres URL. Default: the embedded server in BACKLINE_DATA_DIR.",
        show_envvar=True,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

# Wide enough that piped tables are never cut or wrapped (a terminal keeps its own width).
_PIPE_WIDTH = 10_000


def settings() -> Settings:
    from workers.settings import get_settings

    return get_settings()


@lru_cache(maxsize=1)
def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def __getattr__(name: str) -> Any:
    """`err_console` stays importable for older command modules (made on first use)."""
    if name == "err_console":
        return stderr_console()
    raise AttributeError(name)


def require_data_dir(init: bool = False) -> None:
    """Refuse a configured BACKLINE_DATA_DIR that does not exist, unless `init` asks for a new cluster.

    A mistyped path would otherwise silently become a new, empty database. The default
    (./.backline) is made on first use as always.
    """
    s = settings()
    configured = s.data_dir.expanduser()
    if init or "data_dir" not in s.model_fields_set or configured.exists():
        return
    if configured.resolve() == Path(".backline").resolve():
        return
    raise BacklineError(
        f"BACKLINE_DATA_DIR={configured} does not exist, so there is no database there; fix the path, "
        "or create a new empty cluster with `backline up --init` (or `backline db start --init`)"
    )


def embedded_server(init: bool = False) -> EmbeddedServer:
    """The embedded server of the configured data directory (checked by require_data_dir)."""
    from workers.db.embedded import EmbeddedServer

    require_data_dir(init)
    return EmbeddedServer(settings().data_dir)


def target_url(database_url: str | None, *, init: bool = False) -> str:
    """The URL of the target database (starting the embedded server if it is the target)."""
    from workers.db.connect import resolve_url

    if targets_embedded(database_url):
        require_data_dir(init)
    return resolve_url(settings(), database_url)


def targets_embedded(database_url: str | None) -> bool:
    from workers.db.connect import is_embedded

    return is_embedded(settings(), database_url)


def reachable_url(database_url: str | None) -> str:
    """target_url, then one plain connection: an unreachable database fails fast, in one line.

    Pool-based clients would otherwise retry for their whole timeout and log every attempt.
    """
    from workers.db.connect import connect

    url = target_url(database_url)
    with connect(url):
        pass
    return url


def open_cli_queue(database_url: str | None, *, pool_size: int = 1) -> Queue:
    """The job queue for a command, failing at once (one line) when its database is unreachable."""
    from workers.jobs.queue import open_queue, uses_rpc

    if uses_rpc(settings(), database_url):
        return open_queue(settings(), database_url, pool_size=pool_size)
    return open_queue(settings(), reachable_url(database_url), pool_size=pool_size)


def parse_uuid(value: str, what: str, param_hint: str | None = None) -> uuid.UUID:
    """A uuid from the command line; anything else is bad usage (exit 2), like other bad values."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{what} must be a uuid, got {value!r}", param_hint=param_hint) from None


def confirm_or_refuse(question: str, yes: bool, refused: str) -> None:
    """Ask before destroying data: `--yes` skips; without a terminal and without --yes, exit 2."""
    if yes:
        return
    if not sys.stdin.isatty():
        typer.echo(f"backline: {refused}: not a terminal, so nobody can confirm; pass --yes", err=True)
        raise typer.Exit(2)
    if not typer.confirm(question):
        raise BacklineError(f"not confirmed: {refused}")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str, indent=2))


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    """A table on stdout: fitted to a terminal, never cut or wrapped when piped."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c, "")) for c in columns))
    piped = not sys.stdout.isatty()
    Console(width=_PIPE_WIDTH if piped else None, soft_wrap=piped).print(table)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def info(message: str) -> None:
    """Progress and status lines go to stderr so stdout stays data."""
    stderr_console().print(message, highlight=False, markup=False, soft_wrap=True)
