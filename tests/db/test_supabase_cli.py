"""The real Supabase CLI agrees with this repository (issue #15 item 5).

Each test runs scripts/supabase-cli-check, which installs the pinned CLI from npm
into .tools/ when it is missing (so these tests need npm on first run, never
Docker), against a fresh migrated database of the server under test:
`supabase migration list` (local = remote), `supabase db push --dry-run` (up to
date) and `supabase db lint --level warning` (no findings).

The linter needs plpgsql_check on the server. Debian ships it for PostgreSQL 15
only (the script apt-get installs it for a local Debian server), so on the
embedded PostgreSQL 18 the history checks run and the lint checks cannot: CI
runs this file on PostgreSQL 15 too, and .ci/run runs the script there as well.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import conninfo

from workers.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "supabase-cli-check"
REPO_MIGRATIONS = PROJECT_ROOT / "migrations"


def _as_url(dsn: str) -> str:
    """The CLI takes only postgresql:// URLs; the fixtures give libpq conninfo strings."""
    if dsn.startswith(("postgres://", "postgresql://")):
        return dsn
    params = conninfo.conninfo_to_dict(dsn)
    user = quote(str(params.pop("user", "postgres")), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    host = str(params.pop("host", "127.0.0.1"))
    port = str(params.pop("port", "5432"))
    dbname = quote(str(params.pop("dbname", "postgres")), safe="")
    if host.startswith("/"):
        params["host"] = host
        params["port"] = port
        netloc = f"{auth}@"
    else:
        netloc = f"{auth}@{host}:{port}"
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"postgresql://{netloc}/{dbname}" + (f"?{query}" if query else "")


def _can_lint(url: str) -> bool:
    """plpgsql_check is on the server, or the script can apt-get it (a local Debian server)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select current_setting('server_version_num')::int / 10000,"
            " exists (select from pg_available_extensions where name = 'plpgsql_check')"
        ).fetchone()
    assert row is not None
    major, available = row
    return bool(available) or Path(f"/usr/lib/postgresql/{major}/bin/postgres").exists()


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env if env is not None else dict(os.environ),
        check=False,
    )


def _newest_migration() -> Path:
    return sorted(REPO_MIGRATIONS.glob("[0-9]*_*.sql"))[-1]


def test_the_cli_agrees_with_a_migrated_database(clone_url: str) -> None:
    url = _as_url(clone_url)
    lint = _can_lint(url)
    result = _run(url) if lint else _run("--no-lint", url)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    count = len(list(REPO_MIGRATIONS.glob("[0-9]*_*.sql")))
    assert f"ok: {count} migrations, local = remote" in result.stdout
    assert "ok: Remote database is up to date." in result.stdout
    if lint:
        assert "ok: db lint found nothing" in result.stdout
        # The linter works in a transaction it rolls back: the extension is not left behind.
        with psycopg.connect(url) as conn:
            left = conn.execute("select count(*) from pg_extension where extname = 'plpgsql_check'")
            assert left.fetchone() == (0,)
    else:
        assert "db lint not run: --no-lint" in result.stdout


def test_a_migration_not_applied_fails_both_history_checks(clone_url: str) -> None:
    newest = _newest_migration()
    version = newest.name.split("_", 1)[0]
    with psycopg.connect(clone_url) as conn:
        conn.execute("delete from supabase_migrations.schema_migrations where version = %s", (version,))
    result = _run("--no-lint", _as_url(clone_url))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"local only (not applied): {version}" in result.stderr
    assert "FAIL: migration list: local and remote columns differ" in result.stderr
    assert f"would push: {newest.name}" in result.stderr
    assert "FAIL: db push --dry-run: the database is not up to date" in result.stderr


def test_a_version_without_a_file_fails(clone_url: str) -> None:
    with psycopg.connect(clone_url) as conn:
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name)"
            " values ('20000101000000', 'gone')"
        )
    result = _run("--no-lint", _as_url(clone_url))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "remote only (no file in migrations/): 20000101000000" in result.stderr
    assert "FAIL: supabase db push --dry-run failed" in result.stderr


def test_a_lint_warning_fails(clone_url: str) -> None:
    url = _as_url(clone_url)
    if not _can_lint(url):
        # Debian ships plpgsql_check for PostgreSQL 15 only (CI runs the lint there): on a
        # server that cannot have it, asking for the lint is refused clearly, never passed.
        result = _run(url)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "has no plpgsql_check extension" in result.stderr
        assert "or pass --no-lint" in result.stderr
        return
    with psycopg.connect(clone_url) as conn:
        # The pattern the lint-fix migrations removed: a text literal assigned to jsonb implicitly.
        conn.execute(
            "create function public.lint_probe() returns jsonb language plpgsql set search_path = '' as $$"
            " declare v jsonb := '{}'; begin return v; end $$"
        )
    result = _run(url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "public.lint_probe" in result.stderr
    assert 'cast \\"text\\" value to \\"jsonb\\" type' in result.stderr
    assert "FAIL: supabase db lint reports findings" in result.stderr
    # The history checks still passed: only the lint failed.
    assert "Remote database is up to date." in result.stdout


def test_bad_usage_is_refused_with_exit_2(clone_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SUPABASE_DB_URL")}
    cases = {
        (): "no database: pass DATABASE_URL",
        ("host=127.0.0.1 dbname=x",): "must be a postgresql:// URL",
        ("--bogus", _as_url(clone_url)): "unknown option --bogus",
        (_as_url(clone_url), _as_url(clone_url)): "too many arguments",
    }
    for args, message in cases.items():
        result = _run(*args, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "usage: scripts/supabase-cli-check" in result.stderr


def test_an_unmigrated_database_is_refused_and_left_alone(make_database: Callable[..., str]) -> None:
    url = make_database(migrated=False)
    result = _run("--no-lint", _as_url(url))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "has no supabase_migrations.schema_migrations: migrate it first" in result.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regnamespace('supabase_migrations')").fetchone() == (None,)
