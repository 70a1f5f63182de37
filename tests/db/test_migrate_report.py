"""`backline db migrate` reports each applied file as it goes; a partial run says what it applied."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from tests.helpers import backline, one_line_error
from workers.db import migrations
from workers.errors import MigrationError
from workers.settings import PROJECT_ROOT


@pytest.fixture
def folder(tmp_path: Path, clone_url: str) -> Path:
    """A copy of the repository's migrations, all applied to clone_url (files other people add
    while the suite runs included), so only the files a test adds are pending."""
    target = tmp_path / "migrations"
    shutil.copytree(PROJECT_ROOT / "migrations", target)
    migrations.migrate(clone_url, target)
    return target


def _history(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {str(r[0]) for r in conn.execute("select version from supabase_migrations.schema_migrations")}


def test_the_cli_names_what_it_applied_before_a_failure(clone_url: str, folder: Path) -> None:
    (folder / "29991231000001_good.sql").write_text("create table public.good_one (id int);")
    (folder / "29991231000002_broken.sql").write_text("select 1/0;")
    (folder / "29991231000003_later.sql").write_text("create table public.later_one (id int);")
    result = backline(
        "db", "migrate", "--database-url", clone_url, env={"BACKLINE_MIGRATIONS_DIR": str(folder)}
    )
    assert result.returncode == 1
    # The applied file is printed as it commits (stdout), before the failure ...
    assert result.stdout.splitlines() == ["applied 29991231000001_good.sql"]
    # ... and the one-line error names the failing file and what was applied before it.
    error = one_line_error(result)
    assert "29991231000002_broken.sql" in error and "division by zero" in error
    assert "applied before it in this run (kept): 29991231000001_good.sql" in error
    history = _history(clone_url)
    assert "29991231000001" in history and not {"29991231000002", "29991231000003"} & history
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select to_regclass('public.good_one') is not null, to_regclass('public.later_one') is null"
        ).fetchone() == (True, True)


def test_a_first_file_failing_says_nothing_was_applied(clone_url: str, folder: Path) -> None:
    (folder / "29991231000001_broken.sql").write_text("select 1/0;")
    seen: list[str] = []
    with pytest.raises(MigrationError, match="no migration was applied before it in this run"):
        migrations.migrate(clone_url, folder, on_applied=lambda f: seen.append(f.path.name))
    assert seen == []


def test_on_applied_runs_after_each_commit_in_order(clone_url: str, folder: Path) -> None:
    (folder / "29991231000001_a.sql").write_text("create table public.mig_a (id int);")
    (folder / "29991231000002_b.sql").write_text("create table public.mig_b (id int);")
    committed: list[tuple[str, bool]] = []

    def on_applied(f: migrations.MigrationFile) -> None:
        # Another connection sees the file's history row: it was committed before the report.
        committed.append((f.path.name, f.version in _history(clone_url)))

    applied = migrations.migrate(clone_url, folder, on_applied=on_applied)
    assert [f.path.name for f in applied] == ["29991231000001_a.sql", "29991231000002_b.sql"]
    assert committed == [("29991231000001_a.sql", True), ("29991231000002_b.sql", True)]
