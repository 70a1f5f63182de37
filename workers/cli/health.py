"""`backline health`: is everything Backline depends on working right now?"""

from __future__ import annotations

from workers.cli.common import AsJson, DatabaseUrl, print_json


def health(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Check the database, migrations, AI proxy, job queue, cron schedules and storage.

    Each check prints a status (ok, warn, fail), a detail and, with --json, its
    measured values. Exit 0 when every check is ok, 1 otherwise. The embedded
    database is not started by this command: a stopped one is reported as down.
    Thresholds: BACKLINE_HEALTH_* (README, docs/health.md).
    """
    import typer

    from workers.health.checks import run_checks
    from workers.settings import get_settings

    settings = get_settings()
    results = run_checks(settings, _url(database_url))
    if as_json:
        print_json({"ok": all(r.ok for r in results), "checks": [r.as_dict() for r in results]})
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for column in ("check", "status", "detail"):
            table.add_column(column)
        colours = {"ok": "green", "warn": "yellow", "fail": "red"}
        for r in results:
            table.add_row(r.name, f"[{colours[r.status]}]{r.status}[/]", r.detail)
        Console().print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _url(database_url: str | None) -> str | None:
    """The target URL; for the embedded default its URL only if it runs (None: not running).

    Never starts the embedded server: a health check that starts what it checks would lie.
    """
    from workers.db.connect import validate_url
    from workers.db.embedded import EmbeddedServer
    from workers.errors import BacklineError
    from workers.settings import get_settings

    settings = get_settings()
    url = database_url if database_url is not None else settings.database_url
    if url is None:
        state = EmbeddedServer(settings.data_dir).running_state()
        return None if state is None else state.tcp_url()
    if not url.strip():
        raise BacklineError("the database URL is set but empty (DATABASE_URL / SUPABASE_DB_URL)")
    validate_url(url)
    return url
