"""supabase/types/database.ts is what `supabase gen types typescript` makes of the migrated schema.

The types come from the generator the Supabase CLI runs (postgres-meta, installed
into .tools/ by the first call when missing: CI has npm), against the test's
migrated database. A committed file that differs fails with the command that
regenerates it; a renamed column proves the check can fail.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.helpers import backline, one_line_error
from workers.gen.contract import ARTIFACTS, REGENERATE_COMMAND, drift_message
from workers.gen.typegen import (
    PIN_DIR,
    POSTGRES_META_VERSION,
    TypegenError,
    ensure_postgres_meta,
    generate_types,
    node_url,
)
from workers.settings import PROJECT_ROOT

TYPES = next(a for a in ARTIFACTS if a.path.name == "database.ts")


def test_committed_types_match_the_migrated_schema(clone_url: str) -> None:
    generated = generate_types(clone_url)
    # Really postgres-meta's output for this schema, not an empty or error text.
    assert generated.startswith("export type Json =")
    assert "export type Database = {" in generated and "      documents: {" in generated
    assert TYPES.path == PROJECT_ROOT / "supabase" / "types" / "database.ts"
    message = drift_message(TYPES, generated)
    assert message is None, message


def test_a_renamed_column_makes_the_types_drift(make_database: Callable[..., str]) -> None:
    url = make_database()
    with psycopg.connect(url) as conn:
        conn.execute("alter table public.documents rename column title to headline")
    message = drift_message(TYPES, generate_types(url))
    assert message is not None
    assert f"Regenerate it with `{REGENERATE_COMMAND}`" in message
    assert "+          headline: string" in message and "-          title: string" in message


def test_the_generator_is_the_one_supabase_cli_2_117_runs() -> None:
    """The pin (postgres-meta v0.99.0 is the pgmeta image of Supabase CLI 2.117.0) is what npm installs."""
    package = json.loads((PIN_DIR / "package.json").read_text())
    lock = json.loads((PIN_DIR / "package-lock.json").read_text())
    assert package["dependencies"] == {"@supabase/postgres-meta": POSTGRES_META_VERSION}
    assert lock["packages"]["node_modules/@supabase/postgres-meta"]["version"] == POSTGRES_META_VERSION


def test_cli_prints_the_types_and_writes_them_with_out(clone_url: str, tmp_path: Path) -> None:
    ensure_postgres_meta()  # a first install in this process, not inside the CLI's time limit
    printed = backline("gen", "types", "--database-url", clone_url)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == generate_types(clone_url)
    out = tmp_path / "database.ts"
    written = backline("gen", "types", "--database-url", clone_url, "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert out.read_text() == printed.stdout


def test_python_types_are_generated_too(clone_url: str) -> None:
    generated = generate_types(clone_url, lang="python")
    assert "class PublicDocuments" in generated and "title: str" in generated


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p%40ss@db.example:6543/app", "postgresql://u:p%40ss@db.example:6543/app"),
        (
            "user=postgres password='a b' host=127.0.0.1 port=5433 dbname=x",
            "postgresql://postgres:a%20b@127.0.0.1:5433/x",
        ),
        ("host=/tmp/sock user=postgres dbname=x", "postgresql://postgres@/x?host=%2Ftmp%2Fsock&port=5432"),
        ("postgresql://u@h/db?sslmode=require", "postgresql://u@h:5432/db?sslmode=require"),
        ("postgresql://u@h/db?sslmode=prefer", "postgresql://u@h:5432/db"),
    ],
)
def test_database_urls_are_given_to_node_postgres_as_urls(url: str, expected: str) -> None:
    assert node_url(url) == expected


def test_bad_input_is_refused_and_writes_nothing(clone_url: str, tmp_path: Path) -> None:
    with pytest.raises(TypegenError, match="unknown language 'cobol'"):
        generate_types(clone_url, lang="cobol")
    with pytest.raises(TypegenError, match="not a schema name"):
        generate_types(clone_url, schemas=["public;drop table x"])
    with pytest.raises(TypegenError, match="several hosts"):
        node_url("host=a,b dbname=x")
    usage = backline("gen", "types", "--lang", "cobol", "--database-url", clone_url)
    assert usage.returncode == 2 and "cobol" in usage.stderr
    missing_folder = tmp_path / "nope" / "database.ts"
    result = backline("gen", "types", "--database-url", clone_url, "--out", str(missing_folder))
    assert result.returncode == 1
    assert "does not exist" in one_line_error(result)
    assert not missing_folder.parent.exists()
    unreachable = backline("gen", "types", "--database-url", "postgresql://postgres@127.0.0.1:1/postgres")
    assert unreachable.returncode == 1
    assert "postgres-meta failed" in one_line_error(unreachable)


def test_without_npm_the_install_fails_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clone_url: str
) -> None:
    """An empty tools folder and no npm on PATH: one readable error, nothing half-installed."""
    node_only = tmp_path / "bin"
    node_only.mkdir()
    node = shutil.which("node")
    assert node, "node is needed for type generation"
    (node_only / "node").symlink_to(node)
    monkeypatch.setenv("BACKLINE_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setenv("PATH", str(node_only))
    with pytest.raises(TypegenError, match="npm not found on PATH"):
        generate_types(clone_url)
    assert not (tmp_path / "tools").exists()
