"""Lint realtime_key_reveals_hidden_rows: a published table's DELETE key must be a random surrogate.

Realtime sends DELETE events of a table in `supabase_realtime` to every subscriber without
RLS, with the old row's replica-identity key. Each test builds its table inside the `db`
fixture's transaction (rolled back afterwards) and runs the real lints through `run_checks`.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from workers.check import Finding, run_checks

Conn = psycopg.Connection[Any]
LINT = "realtime_key_reveals_hidden_rows"


def found(db: Conn) -> dict[str, Finding]:
    return {f.object: f for f in run_checks(db) if f.name == LINT}


def fires(db: Conn, obj: str) -> Finding:
    hits = found(db)
    assert obj in hits, f"{LINT} did not report {obj}; it reported {sorted(hits)}"
    assert hits[obj].level == "ERROR"
    return hits[obj]


def quiet(db: Conn, obj: str) -> None:
    hits = found(db)
    assert obj not in hits, f"{LINT} wrongly reported {obj}: {hits[obj].detail}"


def publish(db: Conn, table: str) -> None:
    db.execute(f"alter publication supabase_realtime add table {table}")


@pytest.fixture
def parent(db: Conn) -> str:
    db.execute("create table public.chk_rooms (id uuid primary key default gen_random_uuid())")
    return "public.chk_rooms"


def test_membership_keyed_by_foreign_keys_is_reported(db: Conn, parent: str) -> None:
    db.execute(
        "create table public.chk_members ("
        " room_id uuid not null references public.chk_rooms (id),"
        " user_id uuid not null references auth.users (id),"
        " primary key (room_id, user_id))"
    )
    quiet(db, "public.chk_members")  # not published: no events, nothing to leak
    publish(db, "public.chk_members")
    f = fires(db, "public.chk_members")
    assert "room_id (in foreign key chk_members_room_id_fkey" in f.detail
    assert "user_id (in foreign key chk_members_user_id_fkey" in f.detail
    assert "replica identity using index" in f.remediation


def test_surrogate_primary_key_is_quiet(db: Conn, parent: str) -> None:
    db.execute(
        "create table public.chk_members ("
        " id uuid primary key default gen_random_uuid(),"
        " room_id uuid not null references public.chk_rooms (id),"
        " user_id uuid not null references auth.users (id),"
        " unique (room_id, user_id))"
    )
    publish(db, "public.chk_members")
    quiet(db, "public.chk_members")


def test_replica_identity_index_replaces_the_primary_key(db: Conn, parent: str) -> None:
    db.execute(
        "create table public.chk_members ("
        " room_id uuid not null references public.chk_rooms (id),"
        " user_id uuid not null references auth.users (id),"
        " id uuid not null default gen_random_uuid(),"
        " primary key (room_id, user_id))"
    )
    db.execute("create unique index chk_members_id_key on public.chk_members (id)")
    db.execute("create unique index chk_members_user_key on public.chk_members (user_id, room_id)")
    publish(db, "public.chk_members")
    fires(db, "public.chk_members")
    db.execute("alter table public.chk_members replica identity using index chk_members_id_key")
    quiet(db, "public.chk_members")
    db.execute("alter table public.chk_members replica identity using index chk_members_user_key")
    assert "user_id (in foreign key" in fires(db, "public.chk_members").detail


def test_sequence_key_is_reported(db: Conn) -> None:
    db.execute(
        "create table public.chk_messages (id bigint generated always as identity primary key, body text)"
    )
    publish(db, "public.chk_messages")
    assert "id (bigint, not uuid)" in fires(db, "public.chk_messages").detail


def test_client_chosen_or_foreign_uuid_key_is_reported(db: Conn) -> None:
    db.execute("create table public.chk_chosen (id uuid primary key, body text)")
    db.execute(
        "create table public.chk_profiles (id uuid primary key default gen_random_uuid()"
        " references auth.users (id), body text)"
    )
    publish(db, "public.chk_chosen")
    publish(db, "public.chk_profiles")
    assert "id (no random default)" in fires(db, "public.chk_chosen").detail
    assert "id (in foreign key chk_profiles_id_fkey)" in fires(db, "public.chk_profiles").detail


def test_replica_identity_full_is_reported_even_with_a_surrogate_key(db: Conn) -> None:
    db.execute("create table public.chk_notes (id uuid primary key default gen_random_uuid(), owner uuid)")
    publish(db, "public.chk_notes")
    quiet(db, "public.chk_notes")
    db.execute("alter table public.chk_notes replica identity full")
    assert "FULL" in fires(db, "public.chk_notes").detail


def test_replica_identity_nothing_sends_no_key(db: Conn) -> None:
    db.execute("create table public.chk_notes (owner uuid primary key references auth.users (id))")
    publish(db, "public.chk_notes")
    fires(db, "public.chk_notes")
    db.execute("alter table public.chk_notes replica identity nothing")
    quiet(db, "public.chk_notes")


def test_publication_without_deletes_sends_no_delete_events(db: Conn) -> None:
    db.execute("create table public.chk_notes (owner uuid primary key references auth.users (id))")
    publish(db, "public.chk_notes")
    fires(db, "public.chk_notes")
    db.execute("alter publication supabase_realtime set (publish = 'insert, update')")
    quiet(db, "public.chk_notes")


def test_the_migrated_schema_publishes_only_surrogate_keys(db: Conn) -> None:
    published = db.execute(
        "select count(*) from pg_publication_tables where pubname = 'supabase_realtime'"
    ).fetchone()
    assert published is not None and published[0] >= 7  # rooms (5), jobs, ai_requests
    hits = found(db)
    assert not hits, "\n".join(f"{f.object}: {f.detail}" for f in hits.values())
