"""The `backline` command as a user runs it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import psycopg
import pytest

from tests.helpers import backline, one_line_error
from workers.settings import PROJECT_ROOT


def test_migrate_twice_status_and_check_exit_zero(make_database):
    url = make_database(migrated=False)
    first = backline("db", "migrate", "--database-url", url)
    assert first.returncode == 0, first.stderr
    assert "applied 20261125000000_extensions.sql" in first.stdout
    second = backline("db", "migrate", "--database-url", url)
    assert second.returncode == 0 and second.stdout == ""
    status = backline("db", "status", "--json", env={"DATABASE_URL": url})
    assert status.returncode == 0
    rows = json.loads(status.stdout)
    assert rows and {r["state"] for r in rows} == {"applied"}
    check = backline("db", "check", "--json", "--database-url", url)
    assert check.returncode == 0, check.stdout
    assert [f for f in json.loads(check.stdout) if f["level"] == "ERROR"] == []


def test_supabase_db_url_is_accepted(clone_url):
    result = backline("db", "status", "--json", env={"SUPABASE_DB_URL": clone_url})
    assert result.returncode == 0
    assert json.loads(result.stdout)


def test_check_exits_one_on_a_table_without_rls(clone_url):
    with psycopg.connect(clone_url) as conn:
        conn.execute("create table public.leaky (id int primary key)")
        conn.execute("grant select on public.leaky to anon")
    result = backline("db", "check", "--json", "--database-url", clone_url)
    assert result.returncode == 1
    names = {(f["name"], f["object"]) for f in json.loads(result.stdout)}
    assert ("rls_disabled_in_exposed_schema", "public.leaky") in names


def test_migrate_dry_run_lists_without_applying(make_database):
    url = make_database(migrated=False)
    result = backline("db", "migrate", "--dry-run", "--json", "--database-url", url)
    assert result.returncode == 0
    assert all(item["dry_run"] for item in json.loads(result.stdout))
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regclass('public.profiles')").fetchone() == (None,)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid database URL"),
        ("postgresql://user:pw@127.0.0.1:1/nothing", "cannot reach"),
        ("postgresql://user:pw@127.0.0.1:notaport/db", 'invalid integer value "notaport"'),
    ],
)
def test_bad_database_urls_give_one_line(url, expected):
    result = backline("db", "status", "--database-url", url)
    assert result.returncode == 1
    line = one_line_error(result)
    assert expected in line
    assert "pw@" not in line  # the password is never printed


def test_unknown_command_is_a_usage_error():
    result = backline("db", "frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr and "Traceback" not in result.stderr


def test_malformed_migration_name_gives_one_line(tmp_path, clone_url):
    (tmp_path / "oops.sql").write_text("select 1;")
    result = backline(
        "db", "migrate", "--database-url", clone_url, env={"BACKLINE_MIGRATIONS_DIR": str(tmp_path)}
    )
    assert result.returncode == 1
    assert "malformed migration name 'oops.sql'" in one_line_error(result)


def test_new_creates_file_and_rejects_bad_names(tmp_path):
    env = {"BACKLINE_MIGRATIONS_DIR": str(tmp_path)}
    made = backline("db", "new", "library_documents", env=env)
    assert made.returncode == 0
    path = Path(made.stdout.strip())
    assert path.parent == tmp_path and path.name.endswith("_library_documents.sql")
    bad = backline("db", "new", "Bad-Name", env=env)
    assert bad.returncode == 1
    assert "invalid migration name" in one_line_error(bad)
    assert len(list(tmp_path.iterdir())) == 1


def test_reset_refuses_non_embedded_without_force(clone_url):
    with psycopg.connect(clone_url) as conn:
        conn.execute("create table public.keep_me (id int)")
    refused = backline("db", "reset", "--database-url", clone_url)
    assert refused.returncode == 1
    assert "--force" in one_line_error(refused)
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select to_regclass('public.keep_me') is not null").fetchone() == (True,)


def test_reset_with_force_rebuilds_and_seeds(clone_url):
    with psycopg.connect(clone_url) as conn:
        conn.execute("create table public.scratch (id int)")
    result = backline("db", "reset", "--force", "--yes", "--database-url", clone_url)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select to_regclass('public.scratch')").fetchone() == (None,)
        assert conn.execute(
            "select username::text from public.profiles where username = 'demo'"
        ).fetchone() == ("demo",)
        count = conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone()[0]
    assert count == len(list((PROJECT_ROOT / "migrations").glob("*.sql")))


def test_token_mints_a_supabase_shaped_jwt(clone_url):
    result = backline("token", "--email", "dev@example.test", "--database-url", clone_url)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(),
        "super-secret-jwt-token-with-at-least-32-characters-long",
        algorithms=["HS256"],
        audience="authenticated",
    )
    assert claims["role"] == "authenticated" and claims["email"] == "dev@example.test"
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select email from auth.users where id = %s", (claims["sub"],)).fetchone() == (
            "dev@example.test",
        )
    again = backline("token", "--email", "dev@example.test", "--database-url", clone_url)
    assert jwt.decode(again.stdout.strip(), options={"verify_signature": False})["sub"] == claims["sub"]


def test_token_rejects_bad_input(clone_url):
    assert "exactly one" in one_line_error(backline("token", "--database-url", clone_url))
    bad_uuid = backline("token", "--user", "42", "--database-url", clone_url)
    assert bad_uuid.returncode == 2 and "must be a uuid" in bad_uuid.stderr
    remote = backline(
        "token", "--anonymous", "--database-url", "postgresql://u:p@db.example.com:5432/postgres"
    )
    assert remote.returncode == 1


def test_empty_database_url_is_an_error_not_the_embedded_server():
    result = backline("db", "url", env={"SUPABASE_DB_URL": ""})
    assert result.returncode == 1
    assert "set but empty" in one_line_error(result)


def test_invalid_configuration_is_one_line():
    result = backline("db", "status", env={"STRIPE_WEBHOOK_TOLERANCE_SECONDS": "abc"})
    assert result.returncode == 1
    assert "invalid configuration: STRIPE_WEBHOOK_TOLERANCE_SECONDS" in one_line_error(result)


def test_percent_encoded_password_is_never_printed():
    result = backline(
        "db", "status", "--database-url", "postgresql://postgres:S3cr%40t%21pw@127.0.0.1:1/postgres"
    )
    line = one_line_error(result)
    assert "S3cr" not in line and "postgres:***@127.0.0.1:1" in line


def test_seed_refuses_non_embedded_without_force(clone_url):
    result = backline("db", "seed", "--database-url", clone_url)
    assert result.returncode == 1
    assert "--force" in one_line_error(result)
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select count(*) from auth.users").fetchone() == (0,)
    assert backline("db", "seed", "--force", "--database-url", clone_url).returncode == 0


def test_ai_serve_refuses_the_dev_jwt_secret_for_a_remote_database():
    result = backline("ai", "serve", "--database-url", "postgresql://u:p@db.example.com:5432/postgres")
    assert result.returncode == 1
    assert "public development secret" in one_line_error(result)
