"""`backline db ...`: migrations, schema check, reset, seed and the embedded server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from workers.cli import db_ops, read_meter
from workers.cli.common import (
    AsJson,
    DatabaseUrl,
    Yes,
    confirm_or_refuse,
    embedded_server,
    info,
    print_json,
    print_table,
    settings,
    stderr_console,
    target_url,
    targets_embedded,
)
from workers.errors import BacklineError

if TYPE_CHECKING:
    from workers.db.migrations import MigrationFile

app = typer.Typer(help="Migrate, check, reset and seed the database.", no_args_is_help=True)
app.add_typer(read_meter.app, name="read-meter")


def apply_migrations(url: str, *, quiet: bool = False, report: bool = False) -> list[MigrationFile]:
    """Apply pending migrations with a progress bar; shared by `db migrate`, `db reset`, `up`.

    With report=True each file is printed (`applied <file>`, stdout) as soon as its
    transaction committed, so output cut short by a failure still lists what was applied.
    """
    from rich.progress import Progress

    from workers.db import migrations

    directory = settings().migrations_dir
    pending_count = len(migrations.discover(directory))
    with Progress(transient=True, disable=quiet, console=stderr_console()) as progress:
        task = progress.add_task("migrating", total=pending_count)

        def step(f: MigrationFile) -> None:
            progress.update(task, description=f"applying {f.path.name}", advance=1)

        def applied(f: MigrationFile) -> None:
            if report:
                typer.echo(f"applied {f.path.name}")

        return migrations.migrate(url, directory, on_apply=step, on_applied=applied)


@app.command()
def migrate(
    database_url: DatabaseUrl = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would apply.")] = False,
    as_json: AsJson = False,
) -> None:
    """Apply pending migrations in version order, each file in its own transaction.

    Records them in supabase_migrations.schema_migrations like the Supabase CLI.
    Prints each file as soon as it is applied; if one fails, the error names the
    files applied before it (they stay applied) and nothing of the failing file.
    Refuses when an applied file changed or the database has a version the
    folder lacks.
    """
    from workers.db import migrations

    url = target_url(database_url)
    if dry_run:
        files = migrations.migrate(url, settings().migrations_dir, dry_run=True)
    else:
        files = apply_migrations(url, quiet=as_json, report=not as_json)
    if as_json:
        print_json([{"version": f.version, "name": f.name, "dry_run": dry_run} for f in files])
        return
    if dry_run:
        for f in files:
            typer.echo(f"would apply {f.path.name}")
    if not files:
        info("database is up to date")


@app.command()
def status(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Show each migration as applied, pending, changed or missing-file."""
    from workers.db import migrations
    from workers.db.connect import connect

    with connect(target_url(database_url)) as conn:
        rows = migrations.status(conn, settings().migrations_dir)
    if as_json:
        print_json([r.as_dict() for r in rows])
    else:
        print_table([r.as_dict() for r in rows], ("version", "name", "state"))
    if any(r.state in ("changed", "missing-file") for r in rows):
        raise typer.Exit(1)


@app.command()
def new(name: Annotated[str, typer.Argument(help="What the migration adds, snake_case.")]) -> None:
    """Create an empty migration file named <UTC timestamp>_<name>.sql."""
    from workers.db import migrations

    path = migrations.new_migration(settings().migrations_dir, name)
    typer.echo(str(path))


@app.command()
def check(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Lint the schema (RLS, grants, definer functions, policies, indexes). Exit 1 on errors."""
    from workers.check import has_errors, run_checks
    from workers.db.connect import connect

    with connect(target_url(database_url)) as conn:
        findings = run_checks(conn, settings().exposed_schemas)
    if as_json:
        print_json([f.as_dict() for f in findings])
    elif findings:
        print_table([f.as_dict() for f in findings], ("level", "name", "object", "detail"))
    else:
        info("no findings")
    if has_errors(findings):
        raise typer.Exit(1)


@app.command()
def reset(
    database_url: DatabaseUrl = None,
    force: Annotated[bool, typer.Option("--force", help="Allow a non-embedded target.")] = False,
    no_seed: Annotated[bool, typer.Option("--no-seed", help="Skip supabase/seed.sql.")] = False,
    yes: Yes = False,
) -> None:
    """Drop everything the migrations built (all data too), migrate again, then seed.

    Asks first (--yes skips; without a terminal it refuses unless --yes is given). The
    read meter (`db read-meter`) is switched on again afterwards if it was on.
    """
    from workers.db.connect import redact
    from workers.db.reset import drop_schema_objects, restore_read_meter, saved_read_meter, seed

    if not targets_embedded(database_url) and not force:
        raise BacklineError("refusing to reset a database that is not the embedded default; pass --force")
    url = target_url(database_url)
    confirm_or_refuse(
        f"Drop every table, row and function in {redact(url)} and rebuild it from migrations/?",
        yes,
        "nothing was reset",
    )
    meter = saved_read_meter(url)
    dropped = drop_schema_objects(url)
    info(f"dropped schemas: {', '.join(dropped) or 'none'}")
    files = apply_migrations(url)
    info(f"applied {len(files)} migrations")
    if not no_seed and seed(url):
        info("seeded from supabase/seed.sql")
    if meter is not None:
        problem = restore_read_meter(url, meter)
        if problem is None:
            info("read meter switched on again (it was on before the reset)")
        else:
            info(f"the read meter was on but is now off ({problem}); `backline db read-meter enable` retries")


@app.command("seed")
def seed_command(
    database_url: DatabaseUrl = None,
    force: Annotated[bool, typer.Option("--force", help="Allow a non-embedded target.")] = False,
) -> None:
    """Load supabase/seed.sql (development data) into the target."""
    from workers.db.reset import seed

    if not targets_embedded(database_url) and not force:
        raise BacklineError(
            "refusing to seed development data into a database that is not the embedded default; pass --force"
        )
    if not seed(target_url(database_url)):
        raise BacklineError("supabase/seed.sql does not exist")
    info("seeded from supabase/seed.sql")


@app.command()
def url(
    database_url: DatabaseUrl = None,
    socket: Annotated[bool, typer.Option("--socket", help="Unix-socket URL (embedded only).")] = False,
) -> None:
    """Print the connection URL of the current target: psql "$(backline db url)"."""
    if socket:
        if not targets_embedded(database_url):
            raise BacklineError("--socket applies only to the embedded default")
        typer.echo(embedded_server().ensure_running().socket_url())
        return
    typer.echo(target_url(database_url))


@app.command()
def start(
    init: Annotated[
        bool, typer.Option("--init", help="Create a new empty cluster if BACKLINE_DATA_DIR does not exist.")
    ] = False,
) -> None:
    """Start the embedded server (other commands start it on demand too)."""
    from workers.db.connect import redact

    server = embedded_server(init)
    state = server.ensure_running()
    info(f"embedded PostgreSQL running: {redact(state.tcp_url())} (cluster in {server.pgdata})")


@app.command()
def stop() -> None:
    """Stop the embedded server only; `backline down` also stops the workers and the AI proxy."""
    from workers.cli.services import Services
    from workers.db.embedded import EmbeddedServer

    stopped = EmbeddedServer(settings().data_dir).stop()
    info("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    supervisor = Services(settings().data_dir)
    running = [f"{name} (pid {pid})" for name in supervisor.names() if (pid := supervisor.pid(name))]
    if running:
        info(f"still running: {', '.join(running)}; `backline down` stops them too")


db_ops.register(app)  # diff, backup, restore (after the commands above in --help)
