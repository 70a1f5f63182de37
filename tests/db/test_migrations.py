"""The migration runner: order, history, idempotence, locking, refusals, rollback."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from workers.db import migrations
from workers.errors import MigrationError
from workers.settings import PROJECT_ROOT

REPO_MIGRATIONS = PROJECT_ROOT / "migrations"


def _history(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [
            (str(v), str(n))
            for v, n in conn.execute(
                "select version, name from supabase_migrations.schema_migrations order by version"
            )
        ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the repository's migrations the test may add files to."""
    target = tmp_path / "migrations"
    shutil.copytree(REPO_MIGRATIONS, target)
    return target


def test_migrate_from_empty_records_every_file(make_database):
    url = make_database(migrated=False)
    applied = migrations.migrate(url, REPO_MIGRATIONS)
    files = migrations.discover(REPO_MIGRATIONS)
    assert [f.version for f in applied] == [f.version for f in files]
    assert _history(url) == [(f.version, f.name) for f in files]
    with psycopg.connect(url) as conn:
        statements = conn.execute(
            "select statements from supabase_migrations.schema_migrations order by version limit 1"
        ).fetchone()[0]
        assert any("create extension" in s for s in statements)
        assert conn.execute("select to_regclass('public.profiles') is not null").fetchone() == (True,)


def test_migrate_again_is_a_noop(clone_url):
    before = _history(clone_url)
    assert migrations.migrate(clone_url, REPO_MIGRATIONS) == []
    assert _history(clone_url) == before


def test_two_concurrent_migrates_apply_each_file_once(make_database, folder):
    url = make_database(migrated=False)
    # A slow file makes the race real: both runs start before either finishes.
    (folder / "29991231000000_slow.sql").write_text(
        "select pg_sleep(0.5);\ncreate table public.once (id int);\n"
    )
    results: list[object] = []

    def run() -> None:
        try:
            results.append(len(migrations.migrate(url, folder)))
        except Exception as exc:  # pragma: no cover - reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = len(migrations.discover(folder))
    assert sorted(results) == [0, total]  # type: ignore[type-var]
    versions = [v for v, _ in _history(url)]
    assert len(versions) == len(set(versions)) == total


def test_edited_file_is_refused(clone_url, folder):
    first = sorted(folder.glob("*.sql"))[1]
    first.write_text(first.read_text() + "\ncreate table public.sneaky (id int);\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrations.migrate(clone_url, folder)
    statuses = {s.version: s.state for s in _status(clone_url, folder)}
    assert statuses[first.name[:14]] == "changed"


def test_whitespace_and_comment_edits_are_not_changes(clone_url, folder):
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text("-- a new comment\n\n" + first.read_text().replace("\n", "\n\n"))
    assert migrations.migrate(clone_url, folder) == []


def test_version_missing_from_folder_is_refused(clone_url, folder):
    missing = sorted(folder.glob("*.sql"))[-1]
    missing.unlink()
    with pytest.raises(MigrationError, match=f"has migration {missing.name[:14]}"):
        migrations.migrate(clone_url, folder)


def test_failing_file_rolls_back_entirely_and_names_the_line(clone_url, folder):
    bad = folder / "29991231000001_broken.sql"
    bad.write_text(
        "-- header\ncreate table public.half_done (id int);\n\n"
        "insert into public.half_done values (1);\nselect * from public.no_such_table;\n"
    )
    with pytest.raises(MigrationError) as info:
        migrations.migrate(clone_url, folder)
    message = str(info.value)
    assert message.startswith("29991231000001_broken.sql:5:")
    assert "no_such_table" in message and "42P01" in message
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select to_regclass('public.half_done')").fetchone() == (None,)
    assert "29991231000001" not in [v for v, _ in _history(clone_url)]


def test_failure_stops_the_run_before_later_files(clone_url, folder):
    (folder / "29991231000001_broken.sql").write_text("select 1/0;")
    (folder / "29991231000002_after.sql").write_text("create table public.after_bad (id int);")
    with pytest.raises(MigrationError, match="division by zero"):
        migrations.migrate(clone_url, folder)
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select to_regclass('public.after_bad')").fetchone() == (None,)


@pytest.mark.parametrize(
    "name", ["2026_short.sql", "20261125000000-dash.sql", "abc.sql", "20261125000000_.sql"]
)
def test_malformed_names_are_refused(folder, name):
    (folder / name).write_text("select 1;")
    with pytest.raises(MigrationError, match="malformed migration name"):
        migrations.discover(folder)


def test_dry_run_applies_nothing(make_database, folder):
    url = make_database(migrated=False)
    due = migrations.migrate(url, folder, dry_run=True)
    assert len(due) == len(migrations.discover(folder))
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regclass('public.profiles')").fetchone() == (None,)


def test_new_creates_a_correctly_named_empty_file(folder):
    path = migrations.new_migration(folder, "rooms_elements")
    assert migrations.FILE_PATTERN.match(path.name)
    assert path.name.endswith("_rooms_elements.sql")
    assert path in [f.path for f in migrations.discover(folder)]
    with pytest.raises(Exception, match="invalid migration name"):
        migrations.new_migration(folder, "Bad Name!")


def test_statements_with_dollar_quotes_and_strings_split_correctly():
    from workers.db.sqlsplit import split_statements

    text = (
        "create function f() returns text language sql as $$ select 'a;b' $$;\n"
        "-- comment; with semicolon\n"
        "select $tag$ ; $tag$, 'it''s; fine', E'back\\'slash;';\n/* block; */ select 2"
    )
    parts = split_statements(text)
    assert [p.line for p in parts] == [1, 3, 4]
    assert parts[0].text.endswith("$$")
    assert parts[2].text.endswith("select 2")


def _status(url: str, folder: Path) -> list[migrations.MigrationStatus]:
    with psycopg.connect(url) as conn:
        return migrations.status(conn, folder)


def test_comment_before_semicolon_is_not_a_change(clone_url, folder):
    (folder / "29991231000003_commented.sql").write_text(
        "create table public.tc1 (id int)\n-- note\n;\ncreate table public.tc2 (id int);\n"
    )
    assert len(migrations.migrate(clone_url, folder)) == 1
    assert migrations.migrate(clone_url, folder) == []
    assert {s.state for s in _status(clone_url, folder)} == {"applied"}


def test_whitespace_inside_strings_is_a_change(clone_url, folder):
    path = folder / "29991231000004_literal.sql"
    path.write_text("create table public.lit (v text check (v ~ '^[a-z ]+$'));\n")
    migrations.migrate(clone_url, folder)
    path.write_text("create table public.lit (v text check (v ~ '^[a-z]+$'));\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrations.migrate(clone_url, folder)


@pytest.mark.parametrize("control", ["begin;", "commit;", "rollback;", "start transaction;", "end;"])
def test_transaction_control_in_a_file_is_refused_before_anything_runs(clone_url, folder, control):
    (folder / "29991231000005_txn.sql").write_text(
        f"create table public.before_txn (id int);\n{control}\ncreate table public.after_txn (id int);\n"
    )
    with pytest.raises(MigrationError, match="transaction control"):
        migrations.migrate(clone_url, folder)
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select to_regclass('public.before_txn')").fetchone() == (None,)


def test_begin_atomic_function_bodies_apply(clone_url, folder):
    (folder / "29991231000006_atomic.sql").write_text(
        "create function public.twice(x int) returns int language sql\n"
        "begin atomic\n  select case when x > 0 then x * 2 else 0 end;\nend;\n"
        "create table public.after_atomic (id int);\n"
    )
    assert len(migrations.migrate(clone_url, folder)) == 1
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select public.twice(21)").fetchone() == (42,)
    assert migrations.migrate(clone_url, folder) == []


def test_error_line_counts_leading_comments(clone_url, folder):
    (folder / "29991231000007_line.sql").write_text(
        "-- header one\n-- header two\n\ncreate table public.ok_line (id int);\nselect * from public.nope;\n"
    )
    with pytest.raises(MigrationError, match=r"^29991231000007_line\.sql:5:"):
        migrations.migrate(clone_url, folder)


def test_history_rows_without_statements_count_as_applied(clone_url, folder):
    with psycopg.connect(clone_url) as conn:
        conn.execute("update supabase_migrations.schema_migrations set statements = null")
    assert migrations.migrate(clone_url, folder) == []
    assert {s.state for s in _status(clone_url, folder)} == {"applied"}


def test_a_waiting_migrate_gives_up_after_its_timeout(clone_url, folder):
    waited: list[bool] = []
    with psycopg.connect(clone_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        with pytest.raises(MigrationError, match="held the lock"):
            migrations.migrate(clone_url, folder, on_wait=lambda: waited.append(True), lock_timeout=0.5)
    assert waited == [True]
