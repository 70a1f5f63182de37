"""`backline users list|export|delete`: find users, export their data, erase accounts (data rights)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workers.cli.common import (
    AsJson,
    DatabaseUrl,
    Yes,
    confirm_or_refuse,
    info,
    parse_uuid,
    print_json,
    print_table,
    require_data_dir,
    settings,
    stderr_console,
    target_url,
    targets_embedded,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from workers.platform.factory import Adapters

app = typer.Typer(
    help="Find users; export everything a user owns, or erase the account with all its rows and files.",
    no_args_is_help=True,
)

UserId = Annotated[
    str, typer.Argument(help="The user's id (auth.users.id, a uuid; see `backline users list`).")
]

LIST_SQL = """
select u.id, u.email, coalesce(u.is_anonymous, false) as anonymous, u.created_at as created,
       u.last_sign_in_at as last_sign_in, p.plan
  from auth.users u left join public.profiles p on p.id = u.id
 where (%(anonymous)s::boolean is null or coalesce(u.is_anonymous, false) = %(anonymous)s::boolean)
   and (%(email)s::text is null or u.email ilike '%%' || %(email)s::text || '%%')
 order by u.created_at desc, u.id
 limit %(limit)s
"""


def _uuid(value: str) -> uuid.UUID:
    return parse_uuid(value, "user id", "USER_ID")


class _Bar:
    """A progress bar that appears only once the work is known to start (after validation)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def total(self, total: int | None) -> None:
        if self.progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=stderr_console(),
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        elif self.task is not None:
            self.progress.update(self.task, total=total)

    def advance(self, _label: str) -> None:
        if self.progress is None:
            self.total(None)
        assert self.progress is not None and self.task is not None
        self.progress.advance(self.task)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextmanager
def _bar(label: str) -> Iterator[_Bar]:
    bar = _Bar(label)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def _adapters(database_url: str | None) -> Iterator[tuple[str, Adapters]]:
    from workers.export.context import require_database_url
    from workers.platform.factory import make_adapters

    if targets_embedded(database_url):
        require_data_dir()
    url = require_database_url(settings(), database_url)
    adapters = make_adapters(settings(), url)
    try:
        yield url, adapters
    finally:
        adapters.close()


@app.command("list")
def list_users(
    anonymous: Annotated[
        bool | None,
        typer.Option("--anonymous/--registered", help="Only anonymous users, or only users with a sign-up."),
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Only emails containing this text (case-insensitive).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many.")] = 100,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List users, newest first: id, email, anonymous, created, last sign-in and plan.

    The ids are what `users export ID`, `users delete ID` and `token --user ID` take.
    """
    from workers.db.connect import connect

    with connect(target_url(database_url)) as conn:
        cur = conn.execute(LIST_SQL, {"anonymous": anonymous, "email": email, "limit": limit})
        cols = [d.name for d in cur.description or []]
        rows: list[dict[str, Any]] = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        row["id"] = str(row["id"])
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["anonymous"] = "yes" if row["anonymous"] else "no"
        for key in ("created", "last_sign_in"):
            row[key] = row[key].strftime("%Y-%m-%d %H:%M") if row[key] is not None else "-"
    print_table(rows, ("id", "email", "anonymous", "created", "last_sign_in", "plan"))
    if not rows:
        info("no users match")


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
    from workers.export.rights import export_to_bucket, export_to_file, record_file_export

    uid = _uuid(user_id)
    if out is not None and out.exists() and out.is_dir():
        raise typer.BadParameter(f"{out} is a directory; give a file name", param_hint="--out")
    with _adapters(database_url) as (url, adapters), _bar(f"exporting {uid}") as bar:
        # The bar appears once the plan is known: an unknown user fails before anything is drawn.
        if out is not None:
            summary = export_to_file(
                url, adapters, uid, out, on_plan=lambda plan: bar.total(plan.steps), advance=bar.advance
            )
            record_file_export(url, uid, out, summary)
            data = {"file": str(out), **summary.as_dict()}
        else:
            result = export_to_bucket(
                url,
                adapters,
                uid,
                url_ttl_seconds=settings().export_url_ttl_seconds,
                on_plan=lambda plan: bar.total(plan.steps),
                advance=bar.advance,
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
    yes: Yes = False,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Erase a user: every file they own (bytes and rows), then the account; their rows cascade.

    Leaves an audit entry without personal data (action account.erased). Irreversible: asks
    first (--yes skips; without a terminal it refuses unless --yes is given).
    """
    from workers.export.rights import erase_user

    uid = _uuid(user_id)
    with _adapters(database_url) as (url, adapters):
        confirm_or_refuse(
            f"Erase user {uid} and everything they own? This cannot be undone", yes, "nothing was deleted"
        )
        with _bar(f"erasing {uid}") as bar:
            result = erase_user(
                url, adapters, uid, reason="operator", on_total=bar.total, advance=bar.advance
            )
    if as_json:
        print_json({"user_id": str(uid), **result.as_dict()})
        return
    info(
        f"erased user {uid}: {result.objects_removed} files, "
        f"{sum(result.rows_removed.values())} rows in {len(result.rows_removed)} tables"
    )
