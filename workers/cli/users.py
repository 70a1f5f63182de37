"""`backline users export|delete`: a user's data export and account erasure (data rights)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from workers.cli.common import AsJson, DatabaseUrl, err_console, info, print_json
from workers.errors import BacklineError
from workers.export.archive import ExportPlan
from workers.export.context import require_database_url
from workers.export.rights import erase_user, export_to_bucket, export_to_file, record_file_export
from workers.platform.factory import Adapters, make_adapters
from workers.settings import get_settings

app = typer.Typer(
    help="Data rights: export everything a user owns, or erase the account with all its rows and files.",
    no_args_is_help=True,
)

UserId = Annotated[str, typer.Argument(help="The user's id (auth.users.id, a uuid).")]


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BacklineError(f"user id must be a uuid, got {value!r}") from None


@contextmanager
def _progress(label: str) -> Iterator[tuple[Progress, TaskID]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        yield progress, progress.add_task(label, total=None)


@contextmanager
def _adapters(database_url: str | None) -> Iterator[tuple[str, Adapters]]:
    url = require_database_url(get_settings(), database_url)
    adapters = make_adapters(get_settings(), url)
    try:
        yield url, adapters
    finally:
        adapters.close()


@app.command("export")
def export(
    user_id: UserId,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the zip here instead of the exports bucket (no signed URL)."),
    ] = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Export one user's data: a zip of a JSON file per table they own rows in, plus their files.

    Without --out the archive goes to exports/<user id>/<timestamp>.zip and a signed download URL
    (valid BACKLINE_EXPORT_URL_TTL seconds) is printed.
    """
    uid = _uuid(user_id)
    if out is not None and out.exists() and out.is_dir():
        raise BacklineError(f"--out {out} is a directory; give a file name")
    with _adapters(database_url) as (url, adapters), _progress(f"exporting {uid}") as (progress, task):

        def on_plan(plan: ExportPlan) -> None:
            progress.update(task, total=plan.steps)

        def advance(_label: str) -> None:
            progress.advance(task)

        if out is not None:
            summary = export_to_file(url, adapters, uid, out, on_plan=on_plan, advance=advance)
            record_file_export(url, uid, out, summary)
            data = {"file": str(out), **summary.as_dict()}
        else:
            result = export_to_bucket(
                url,
                adapters,
                uid,
                url_ttl_seconds=get_settings().export_url_ttl_seconds,
                on_plan=on_plan,
                advance=advance,
            )
            data = result.as_dict()
    if as_json:
        print_json(data)
        return
    rows = sum(data["rows"].values())
    where = data.get("file") or f"{data['bucket']}/{data['path']}"
    info(f"exported {rows} rows in {len(data['rows'])} tables and {data['files']} files to {where}")
    if "url" in data:
        typer.echo(data["url"])


@app.command("delete")
def delete(
    user_id: UserId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Erase a user: every file they own (bytes and rows), then the account; their rows cascade.

    Leaves an audit entry without personal data (action account.erased). Irreversible.
    """
    uid = _uuid(user_id)
    if not yes and not typer.confirm(f"Erase user {uid} and everything they own? This cannot be undone"):
        raise BacklineError("not confirmed: nothing was deleted")
    with _adapters(database_url) as (url, adapters), _progress(f"erasing {uid}") as (progress, task):
        result = erase_user(
            url,
            adapters,
            uid,
            reason="operator",
            on_total=lambda total: progress.update(task, total=total),
            advance=lambda _label: progress.advance(task),
        )
    if as_json:
        print_json({"user_id": str(uid), **result.as_dict()})
        return
    info(
        f"erased user {uid}: {result.objects_removed} files, "
        f"{sum(result.rows_removed.values())} rows in {len(result.rows_removed)} tables"
    )
