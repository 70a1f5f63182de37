"""Options and output helpers shared by every command group."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from workers.db.connect import is_embedded, resolve_url
from workers.settings import get_settings

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

err_console = Console(stderr=True)


def target_url(database_url: str | None) -> str:
    """The URL of the target database (starting the embedded server if it is the target)."""
    return resolve_url(get_settings(), database_url)


def targets_embedded(database_url: str | None) -> bool:
    return is_embedded(get_settings(), database_url)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str, indent=2))


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console().print(table)


def info(message: str) -> None:
    """Progress and status lines go to stderr so stdout stays data."""
    err_console.print(message, highlight=False)
