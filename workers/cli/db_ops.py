"""`backline db diff|backup|restore`: schema drift against the migration chain, backups.

Registered on the `db` group by `register(app)`. Heavy modules (catalog reader,
pg_dump driver) are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workers.cli.common import (
    AsJson,
    DatabaseUrl,
    confirm_or_refuse,
    info,
    print_json,
    settings,
    stderr_console,
    target_url,
)
from workers.errors import BacklineError

ReferenceUrl = Annotated[
    str | None,
    typer.Option(
        "--reference-url",
        envvar="BACKLINE_REFERENCE_DATABASE_URL",
        help=(
            "A database migrated from migrations/ to compare with, instead of building one on the live"
            " server (needed where the login may not create databases, e.g. hosted Supabase)."
        ),
        show_envvar=True,
    ),
]


def register(app: typer.Typer) -> None:
    """Add these commands to the `db` group."""
    app.command("diff")(diff)
    app.command("backup")(backup)
    app.command("restore")(restore)


def diff(
    database_url: DatabaseUrl = None, reference_url: ReferenceUrl = None, as_json: AsJson = False
) -> None:
    """Compare the live schema with what migrations/ builds; exit 1 on drift.

    Builds the migration chain (platform layer + migrations/) in a scratch
    database on the same server, reads both catalogs (tables, columns, constraints,
    indexes, policies, functions with their bodies and settings, triggers, views,
    grants to the API roles, RLS flags, publication membership, Backline's policies
    and triggers on auth/storage/realtime, buckets, extensions) and reports each
    object missing, extra or changed by name. Without the right to create databases,
    pass --reference-url (a database you migrated elsewhere, e.g. `backline db url`
    of the embedded server after `backline db migrate`).
    """
    from workers.db.drift import diff_schema

    url = target_url(database_url)
    report = diff_schema(url, settings().migrations_dir, reference_url)
    if as_json:
        print_json(report.as_dict())
    else:
        for drift in report.drifts:
            typer.echo(drift.describe())
        if report.pending_migrations:
            info(
                f"{len(report.pending_migrations)} migrations are not applied yet"
                " (run `backline db migrate`); their objects show as missing"
            )
        if not report.drifts:
            info("no drift: the schema is what migrations/ builds")
        else:
            counts = {
                s: sum(1 for d in report.drifts if d.status == s) for s in ("missing", "extra", "changed")
            }
            info("drift: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if report.drifts:
        raise typer.Exit(1)


BackupDir = Annotated[
    Path | None,
    typer.Option(
        "--to",
        help="Folder to write the backup to. Default: BACKLINE_BACKUP_DIR (<data dir>/backups).",
        file_okay=False,
    ),
]


def backup(
    database_url: DatabaseUrl = None,
    to: BackupDir = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, help="Then delete all but the newest N backups in the folder."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Back up the database (pg_dump custom format) for self-hosted and embedded deployments.

    One archive per run, named backline-<db>-<UTC time>.dump, written completely
    before it appears. It holds Backline's schemas and data, the migration history,
    and the platform rows Backline relies on (auth.users, storage.buckets,
    storage.objects); file bytes are in Storage, back those up separately. Hosted
    Supabase backs up its projects itself. Restore with `backline db restore FILE`.
    """
    from rich.progress import Progress

    from workers.db import backup as backups

    config = settings()
    url = target_url(database_url)
    directory = to or config.resolved_backup_dir
    with Progress(transient=True, disable=as_json, console=stderr_console()) as progress:
        task = progress.add_task("backing up", total=None)

        def step(done: int, total: int, what: str) -> None:
            progress.update(task, total=total, completed=done, description=f"dumping {what}")

        result = backups.backup(url, directory, keep=keep, on_progress=step)
    if as_json:
        print_json(result.as_dict())
        return
    typer.echo(str(result.path))
    info(f"backed up {result.tables} tables ({result.size_bytes} bytes) with {result.tool}")
    for path in result.removed:
        info(f"removed old backup {path.name}")


def restore(
    file: Annotated[Path, typer.Argument(help="A backup made by `backline db backup`.", dir_okay=False)],
    database_url: DatabaseUrl = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace Backline's schema and data if the target has them.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Restore a backup into the target database, in one transaction.

    Into a fresh database the backup is simply loaded (the platform layer is
    created first on plain PostgreSQL). A target that already holds Backline's
    schema is replaced only after confirmation (or --yes): its Backline objects
    are dropped as `db reset` drops them, then the backup is loaded. A failed
    restore changes nothing.
    """
    from rich.progress import Progress

    from workers.db import backup as backups
    from workers.db.connect import redact

    url = target_url(database_url)
    if not file.is_file():
        raise BacklineError(f"backup file {file} does not exist")
    replace = backups.backline_owns(url)
    if replace:
        confirm_or_refuse(
            f"Replace everything Backline has in {redact(url)} with {file.name}?",
            yes,
            f"{redact(url)} already holds Backline's schema, which the restore would replace",
        )
    with Progress(transient=True, disable=as_json, console=stderr_console()) as progress:
        task = progress.add_task("restoring", total=None)

        def step(done: int, total: int, what: str) -> None:
            progress.update(task, total=total, completed=done, description=f"restoring {what[:60]}")

        result = backups.restore(url, file, replace=replace, on_progress=step)
    if as_json:
        print_json(result.as_dict())
        return
    info(f"restored {file.name} into {result.database} ({result.entries} archive entries) with {result.tool}")
