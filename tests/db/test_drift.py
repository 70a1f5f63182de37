"""`backline db diff`: the live schema compared with what migrations/ builds, by name.

Each test drifts a freshly migrated database by hand (what an operator's psql
session or a dashboard edit does) and checks that the CLI names exactly that
object, as text and JSON, and exits 1; a clean database reports nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

from tests.helpers import backline, one_line_error
from workers.db.catalog import CatalogObject
from workers.db.drift import compare, diff_schema
from workers.settings import PROJECT_ROOT

MIGRATIONS = PROJECT_ROOT / "migrations"


def _drift(url: str, *statements: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())
    report = diff_schema(url, MIGRATIONS)
    return [(d.status, d.kind, d.name) for d in report.drifts]


def test_a_clean_database_reports_nothing(clone_url: str) -> None:
    result = backline("db", "diff", "--database-url", clone_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "no drift" in result.stderr
    as_json = backline("db", "diff", "--database-url", clone_url, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"drift": [], "pending_migrations": []}


def test_a_dropped_table_is_reported_by_name(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute("drop table public.telemetry_events cascade")
    result = backline("db", "diff", "--database-url", clone_url)
    assert result.returncode == 1, result.stderr
    assert "missing table public.telemetry_events" in result.stdout
    # its columns, grants and comments are part of that one line, not 30 more
    assert "public.telemetry_events.name" not in result.stdout
    data = json.loads(backline("db", "diff", "--database-url", clone_url, "--json").stdout)
    table = next(d for d in data["drift"] if d["name"] == "public.telemetry_events" and d["kind"] == "table")
    assert table["status"] == "missing" and table["actual"] is None and table["includes"] > 5


def test_a_dropped_column_is_reported_by_name(clone_url: str) -> None:
    drifts = _drift(clone_url, "alter table public.documents drop column local_id cascade")
    assert ("missing", "column", "public.documents.local_id") in drifts
    # what the cascade took with it is named too; nothing unrelated is
    assert ("missing", "index", "public.documents_owner_kind_local_id_key") in drifts
    assert all("local_id" in name for _, _, name in drifts), drifts


def test_a_dropped_policy_is_reported_by_name(clone_url: str) -> None:
    drifts = _drift(clone_url, 'drop policy "anonymous visitors read public documents" on public.documents')
    assert drifts == [("missing", "policy", '"anonymous visitors read public documents" on public.documents')]


def test_a_dropped_policy_on_storage_objects_is_reported(clone_url: str) -> None:
    drifts = _drift(clone_url, 'drop policy "users read their own exports" on storage.objects')
    assert drifts == [("missing", "policy", '"users read their own exports" on storage.objects')]


def test_a_dropped_function_is_reported_by_name(clone_url: str) -> None:
    drifts = _drift(clone_url, "drop function public.my_profile()")
    assert drifts == [("missing", "function", "public.my_profile()")]


def test_a_function_body_changed_by_hand_is_reported_with_the_lines(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute(
            "create or replace function private.add_room_owner() returns trigger language plpgsql"
            " security definer set search_path = '' as $$ begin return new; end; $$"
        )
    result = backline("db", "diff", "--database-url", clone_url)
    assert result.returncode == 1
    assert result.stdout.startswith("changed function private.add_room_owner()\n")
    assert "-  insert into public.room_members" in result.stdout
    assert "+AS $function$ begin return new; end; $function$;" in result.stdout


def test_changed_settings_grants_rls_and_extra_objects_are_reported(clone_url: str) -> None:
    drifts = _drift(
        clone_url,
        "alter function private.add_room_owner() reset search_path",
        "grant insert on public.plans to anon",
        "alter table public.jobs disable row level security",
        "create table public.scratch (id int)",
        "alter publication supabase_realtime drop table public.jobs",
    )
    assert ("changed", "function", "private.add_room_owner()") in drifts
    assert ("changed", "grant", "table public.plans to anon") in drifts
    assert ("changed", "table", "public.jobs") in drifts
    assert ("extra", "table", "public.scratch") in drifts
    assert ("missing", "publication", "supabase_realtime public.jobs") in drifts


def test_pending_migrations_are_named(make_database: Callable[..., str]) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        last = conn.execute("select max(version) from supabase_migrations.schema_migrations").fetchone()
        assert last is not None
        conn.execute("delete from supabase_migrations.schema_migrations where version = %s", (last[0],))
    report = diff_schema(url, MIGRATIONS)
    assert report.pending_migrations and report.pending_migrations[0].startswith(str(last[0]))


def test_a_reference_database_replaces_the_scratch_build(
    clone_url: str, make_database: Callable[..., str]
) -> None:
    reference = make_database()
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute("drop function public.my_profile()")
    result = backline("db", "diff", "--database-url", clone_url, "--reference-url", reference, "--json")
    assert result.returncode == 1, result.stderr
    assert [d["name"] for d in json.loads(result.stdout)["drift"]] == ["public.my_profile()"]


def test_a_reference_that_is_not_migrated_is_refused(
    clone_url: str, make_database: Callable[..., str]
) -> None:
    empty = make_database(migrated=False)
    result = backline("db", "diff", "--database-url", clone_url, "--reference-url", empty)
    assert result.returncode == 1
    assert "the reference database has" in one_line_error(result)


def test_a_login_that_may_not_create_databases_is_told_about_reference_url(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute("drop role if exists backline_drift_nocreate")
        conn.execute("create role backline_drift_nocreate login password 'x' nocreatedb")
        conn.execute("grant usage on schema supabase_migrations to backline_drift_nocreate")
        conn.execute("grant select on supabase_migrations.schema_migrations to backline_drift_nocreate")
    try:
        limited = psycopg.conninfo.make_conninfo(clone_url, user="backline_drift_nocreate", password="x")
        result = backline("db", "diff", "--database-url", limited)
        assert result.returncode == 1
        line = one_line_error(result)
        assert "cannot create a scratch database" in line and "--reference-url" in line
    finally:
        with psycopg.connect(clone_url, autocommit=True) as conn:
            conn.execute("drop owned by backline_drift_nocreate")
            conn.execute("drop role backline_drift_nocreate")


@pytest.mark.parametrize("bad", ["postgres://", "not a url"])
def test_a_bad_reference_url_is_one_line(clone_url: str, bad: str) -> None:
    result = backline("db", "diff", "--database-url", clone_url, "--reference-url", bad)
    assert result.returncode == 1
    one_line_error(result)


def test_compare_ignores_extra_extensions_and_buckets_but_not_missing_ones() -> None:
    reference = [CatalogObject("extension", "citext", "create extension citext;")]
    live = [
        CatalogObject("extension", "pg_graphql", "create extension pg_graphql;"),
        CatalogObject("bucket", "operator-uploads", "insert ..."),
    ]
    assert [(d.status, d.name) for d in compare(reference, live)] == [("missing", "citext")]
