"""`backline db backup|restore`: a restore into a fresh database matches the original row for row.

Real pg_dump/pg_restore against the test server (embedded 18 or PostgreSQL 15).
Every table of public, private and supabase_migrations, and the platform rows
Backline relies on (auth.users, storage.buckets, storage.objects), are compared by
row count and an md5 over the sorted rows; the restored schema has no drift and
its policies still decide, checked through act_as as the owner and a stranger.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from tests.helpers import act_as, backline, create_user, one_line_error
from tests.library.bodies import loop_body
from workers.db import backup as backups
from workers.db.backup_job import SCHEDULE_NAME, run_backup_job
from workers.db.drift import diff_schema
from workers.errors import BacklineError
from workers.jobs.context import JobContext
from workers.settings import PROJECT_ROOT, Settings

PLATFORM_TABLES = ("auth.users", "storage.buckets", "storage.objects")


def _fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the sorted rows) of every table Backline backs up."""
    with psycopg.connect(url) as conn:
        tables = [
            f"{s}.{t}"
            for s, t in conn.execute(
                "select schemaname, tablename from pg_tables"
                " where schemaname in ('public', 'private', 'supabase_migrations') order by 1, 2"
            ).fetchall()
        ]
        result: dict[str, tuple[int, str]] = {}
        for table in [*tables, *PLATFORM_TABLES]:
            schema, name = table.split(".")
            row = conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t::text), ''))"
                    " from {}.{} t"
                ).format(sql.Identifier(schema), sql.Identifier(name))
            ).fetchone()
            assert row is not None
            result[table] = (int(row[0]), str(row[1]))
    return result


def _populate(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Two users with profiles, documents (one private, one public), a file row, a job."""
    with psycopg.connect(url) as conn:
        owner = create_user(conn, email="owner@example.test")
        stranger = create_user(conn, anonymous=True)
        for title, visibility in (("mine", "private"), ("shared", "public")):
            conn.execute(
                "insert into public.documents (owner_id, kind, title, body, visibility)"
                " values (%s, 'loop', %s, %s, %s)",
                (owner, title, json.dumps(loop_body(title)), visibility),
            )
        conn.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata) values"
            " ('samples', %s, %s, '{\"size\": 10, \"mimetype\": \"audio/wav\"}')",
            (f"{owner}/kick.wav", owner),
        )
        conn.execute("select public.job_enqueue('echo', '{\"n\": 1}'::jsonb, null, null, 0)")
        conn.commit()
    return owner, stranger


def _reads_private_document(url: str, user: uuid.UUID) -> int:
    with psycopg.connect(url) as conn, act_as(conn, user) as cur:
        row = cur.execute("select count(*) from public.documents where title = 'mine'").fetchone()
        return int(row[0]) if row else 0


def test_a_restore_into_a_fresh_database_matches_row_for_row(
    make_database: Callable[..., str], tmp_path: Path
) -> None:
    source = make_database()
    owner, stranger = _populate(source)
    before = _fingerprints(source)
    assert before["auth.users"][0] == 2 and before["storage.objects"][0] == 1
    assert before["public.documents"][0] == 2 and before["supabase_migrations.schema_migrations"][0] > 50

    made = backline("db", "backup", "--database-url", source, "--to", str(tmp_path), "--json")
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    archive = Path(info["path"])
    assert archive.parent == tmp_path and archive.stat().st_size == info["size_bytes"] > 0
    assert backups.FILE_PATTERN.match(archive.name)

    fresh = make_database(migrated=False)
    restored = backline("db", "restore", str(archive), "--database-url", fresh, "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["replaced"] is False

    assert _fingerprints(fresh) == before
    assert diff_schema(fresh, PROJECT_ROOT / "migrations").drifts == []
    # the policies came back with the data: the owner reads the private document, a stranger does not
    assert _reads_private_document(fresh, owner) == 1
    assert _reads_private_document(fresh, stranger) == 0


def test_restoring_over_backline_data_needs_yes_and_then_replaces_it(
    make_database: Callable[..., str], tmp_path: Path
) -> None:
    source = make_database()
    _populate(source)
    archive = backups.backup(source, tmp_path).path
    before = _fingerprints(source)
    with psycopg.connect(source) as conn:
        create_user(conn, email="after-the-backup@example.test")
        conn.commit()
    changed = _fingerprints(source)

    refused = backline("db", "restore", str(archive), "--database-url", source)
    assert refused.returncode == 2  # like every destructive command without --yes and no terminal
    assert "already holds Backline's schema" in one_line_error(refused)
    assert "pass --yes" in one_line_error(refused)
    assert _fingerprints(source) == changed  # nothing touched

    replaced = backline("db", "restore", str(archive), "--database-url", source, "--yes", "--json")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout)["replaced"] is True
    assert _fingerprints(source) == before


def test_keep_deletes_all_but_the_newest_backups(make_database: Callable[..., str], tmp_path: Path) -> None:
    url = make_database()
    (tmp_path / "notes.txt").write_text("not a backup")
    first = backups.backup(url, tmp_path).path
    second = backups.backup(url, tmp_path).path
    result = backline("db", "backup", "--database-url", url, "--to", str(tmp_path), "--keep", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["removed"] == [str(first)]
    assert backups.list_backups(tmp_path) == [second, Path(data["path"])]
    assert (tmp_path / "notes.txt").exists()


@pytest.mark.parametrize("keep", ["0", "-1", "many"])
def test_a_bad_keep_is_a_usage_error(clone_url: str, tmp_path: Path, keep: str) -> None:
    result = backline("db", "backup", "--database-url", clone_url, "--to", str(tmp_path), "--keep", keep)
    assert result.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_a_backup_to_a_file_path_is_refused(clone_url: str, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = backline("db", "backup", "--database-url", clone_url, "--to", str(target))
    assert result.returncode in (1, 2)
    assert target.read_text() == "x"


def test_restoring_something_that_is_not_a_backup_changes_nothing(
    make_database: Callable[..., str], tmp_path: Path
) -> None:
    fresh = make_database(migrated=False)
    missing = backline("db", "restore", str(tmp_path / "nope.dump"), "--database-url", fresh)
    assert missing.returncode == 1 and "does not exist" in one_line_error(missing)
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"PGDMP? no, just bytes")
    result = backline("db", "restore", str(junk), "--database-url", fresh)
    assert result.returncode == 1
    assert "is not a pg_dump custom-format archive" in one_line_error(result)
    with psycopg.connect(fresh) as conn:
        row = conn.execute("select to_regclass('auth.users') is null and to_regnamespace('private') is null")
        assert row.fetchone() == (True,)


def test_tools_are_chosen_by_server_version() -> None:
    path, major = backups.find_tool("pg_dump", 15)
    assert major >= 15 and path.name == "pg_dump"
    with pytest.raises(BacklineError, match="no pg_restore of PostgreSQL 99 or newer"):
        backups.find_tool("pg_restore", 99)


@pytest.mark.parametrize(
    ("url", "hosted"),
    [
        ("postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres", True),
        ("postgresql://postgres.abcdefgh:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres", True),
        ("postgresql://postgres:pw@127.0.0.1:5432/postgres", False),
        ("postgresql://postgres@/postgres?host=/tmp", False),
        ("postgresql://postgres:pw@supabase.co.example.org/postgres", False),
    ],
)
def test_hosted_supabase_is_recognised_by_host(url: str, hosted: bool) -> None:
    assert backups.is_hosted_supabase(url) is hosted


def _context(url: str, settings: Settings) -> JobContext:
    return JobContext(
        job_id=uuid.uuid4(),
        kind="db_backup",
        owner_id=None,
        attempt=1,
        settings=settings,
        database_url=url,
        heartbeat=lambda: None,
        should_stop=lambda: False,
    )


def _schedule(url: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select schedule, job_kind, enabled from private.cron_schedules where name = %s", (SCHEDULE_NAME,)
        ).fetchone()


def test_the_daily_schedule_backs_up_and_keeps_the_newest(clone_url: str, tmp_path: Path) -> None:
    assert _schedule(clone_url) == ("30 4 * * *", "db_backup", True)
    settings = Settings(BACKLINE_BACKUP_DIR=tmp_path, BACKLINE_BACKUP_KEEP=2)  # type: ignore[call-arg]
    results = [run_backup_job(_context(clone_url, settings), {}) for _ in range(3)]
    assert [Path(r["path"]).exists() for r in results] == [False, True, True]
    assert len(backups.list_backups(tmp_path)) == 2
    off = Settings(BACKLINE_BACKUP_DIR=tmp_path / "off", BACKLINE_BACKUP_SCHEDULE="off")  # type: ignore[call-arg]
    assert "skipped" in run_backup_job(_context(clone_url, off), {})
    assert not (tmp_path / "off").exists()


def test_the_schedule_turns_itself_off_on_hosted_supabase(clone_url: str, tmp_path: Path) -> None:
    # Reach the test server under a hosted Supabase host name (hostaddr picks the address).
    params = conninfo.conninfo_to_dict(clone_url)
    hosted = conninfo.make_conninfo(clone_url, host="db.abcdefgh.supabase.co", hostaddr=str(params["host"]))
    settings = Settings(BACKLINE_BACKUP_DIR=tmp_path)  # type: ignore[call-arg]
    result = run_backup_job(_context(hosted, settings), {})
    assert "hosted Supabase backs this database up itself" in result["skipped"]
    assert _schedule(clone_url) == ("30 4 * * *", "db_backup", False)
    assert list(tmp_path.iterdir()) == []
    forced = Settings(BACKLINE_BACKUP_DIR=tmp_path, BACKLINE_BACKUP_SCHEDULE="on")  # type: ignore[call-arg]
    assert Path(run_backup_job(_context(hosted, forced), {})["path"]).exists()
