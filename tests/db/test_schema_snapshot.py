"""supabase/schema.sql is the schema the migrations build, rendered object by object.

The committed file must equal a fresh rendering of the test's migrated database
(which runs on the embedded PostgreSQL 18 and on PostgreSQL 15 in CI, in both
default-privilege flavours, so the file is the same on all of them); a changed
policy or function body makes it drift, and `backline gen all` names the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.helpers import backline
from workers.db.expr_normalize import flatten_boolean_chains
from workers.db.schema_snapshot import generate_schema_snapshot
from workers.gen.contract import ARTIFACTS, REGENERATE_COMMAND, drift_message
from workers.settings import PROJECT_ROOT

SNAPSHOT = next(a for a in ARTIFACTS if a.path.name == "schema.sql")


def test_committed_snapshot_matches_the_migrated_schema(clone_url: str) -> None:
    generated = generate_schema_snapshot(clone_url)
    assert SNAPSHOT.path == PROJECT_ROOT / "supabase" / "schema.sql"
    message = drift_message(SNAPSHOT, generated)
    assert message is None, message


def test_the_snapshot_holds_bodies_policies_and_grants(clone_url: str) -> None:
    text = generate_schema_snapshot(clone_url)
    assert text == generate_schema_snapshot(clone_url)  # deterministic
    assert "create table public.documents (\n  id uuid default gen_random_uuid() not null," in text
    assert 'create policy "anonymous visitors read public documents" on public.documents' in text
    assert "CREATE OR REPLACE FUNCTION private.add_room_owner()" in text
    body_line = (
        "insert into public.room_members (room_id, user_id, role) values (new.id, new.owner_id, 'owner');"
    )
    assert body_line in text
    assert "grant select on table public.documents to anon;" in text
    assert "alter publication supabase_realtime add table public.jobs;" in text
    assert "create trigger on_auth_user_created after insert on auth.users" in text
    # nothing the platform itself owns
    assert "FUNCTION storage.foldername" not in text and "create table auth.users" not in text


def test_a_changed_policy_makes_the_snapshot_drift(make_database: Callable[..., str]) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('drop policy "anonymous visitors read public documents" on public.documents')
    message = drift_message(SNAPSHOT, generate_schema_snapshot(url))
    assert message is not None
    assert f"Regenerate it with `{REGENERATE_COMMAND}`" in message
    assert '-create policy "anonymous visitors read public documents" on public.documents' in message


def test_cli_prints_the_snapshot_and_writes_it_with_out(clone_url: str, tmp_path: Path) -> None:
    printed = backline("gen", "schema", "--database-url", clone_url)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == generate_schema_snapshot(clone_url)
    out = tmp_path / "schema.sql"
    written = backline("gen", "schema", "--database-url", clone_url, "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert out.read_text() == printed.stdout
    missing = backline("gen", "schema", "--database-url", clone_url, "--out", str(tmp_path / "no" / "x.sql"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_nested_boolean_chains_read_the_same_after_a_reload() -> None:
    nested = "CHECK ((((length(u) >= 3) AND (length(u) <= 30)) AND (u ~ '^[a-z]+ AND (x$'::text)))"
    flat = "CHECK (((length(u) >= 3) AND (length(u) <= 30) AND (u ~ '^[a-z]+ AND (x$'::text)))"
    assert flatten_boolean_chains(nested) == flatten_boolean_chains(flat) == flat
    # precedence is kept: a different grouping stays different
    assert flatten_boolean_chains("((a OR b) AND c)") != flatten_boolean_chains("(a OR (b AND c))")
