"""Realtime DELETE events reveal nothing RLS hides (issue #12: room membership leaked).

Realtime sends a published table's DELETE events to every subscriber of the table without
RLS. The payload's `old_record` is the deleted row's replica-identity columns, narrowed to
the primary-key columns when the table has RLS (supabase/walrus `apply_rls`), and to the
columns the subscriber's role may select. `delete_event_key` computes exactly that from
the catalog; the tests delete real rows and look at what a stranger would receive.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as
from tests.rooms.conftest import add_element, create_room, invite_and_join

Conn = psycopg.Connection[Any]

IDENTITY_COLUMNS_SQL = """
select a.attname
  from pg_class c
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
 where c.oid = %(table)s::regclass
   and (c.relreplident = 'f'
        or exists (select 1 from pg_index i
                    where i.indrelid = c.oid and a.attnum = any(i.indkey)
                      and ((c.relreplident = 'd' and i.indisprimary)
                           or (c.relreplident = 'i' and i.indisreplident))))
   and (not c.relrowsecurity
        or exists (select 1 from pg_index p
                    where p.indrelid = c.oid and p.indisprimary and a.attnum = any(p.indkey)))
   and has_column_privilege(%(role)s, c.oid, a.attnum, 'SELECT')
 order by a.attnum
"""


def delete_event_key(db: Conn, table: str, role: str = "authenticated") -> list[str]:
    """The columns of a deleted row that Realtime puts in a DELETE event's old_record."""
    return [r[0] for r in db.execute(IDENTITY_COLUMNS_SQL, {"table": table, "role": role})]


def published_tables(db: Conn) -> list[str]:
    rows = db.execute(
        "select schemaname || '.' || tablename from pg_publication_tables"
        " where pubname = 'supabase_realtime' order by 1"
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def room(db: Conn, make_user: Any) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    owner, member = make_user(), make_user()
    room_id = create_room(db, owner)
    invite_and_join(db, room_id, owner, member, "viewer")
    return room_id, owner, member


def test_room_members_identity_is_only_the_random_surrogate(db: Conn) -> None:
    (replident,) = db.execute(
        "select relreplident from pg_class where oid = 'public.room_members'::regclass"
    ).fetchone() or (None,)
    assert replident == "i"
    rows = db.execute(
        "select a.attname, format_type(a.atttypid, null), pg_get_expr(d.adbin, d.adrelid), i.indisprimary"
        "  from pg_index i"
        "  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
        "  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
        " where i.indrelid = 'public.room_members'::regclass and i.indisreplident"
    ).fetchall()
    assert rows == [("id", "uuid", "gen_random_uuid()", True)]
    in_foreign_key = db.execute(
        "select count(*) from pg_constraint c join pg_attribute a"
        "    on a.attrelid = c.conrelid and a.attnum = any(c.conkey)"
        " where c.conrelid = 'public.room_members'::regclass and c.contype = 'f' and a.attname = 'id'"
    ).fetchone()
    assert in_foreign_key == (0,)
    assert delete_event_key(db, "public.room_members") == ["id"]
    # (room_id, user_id) is still one membership per user and room.
    assert db.execute(
        "select count(*) from pg_constraint where conrelid = 'public.room_members'::regclass"
        " and contype = 'u' and conname = 'room_members_room_id_user_id_key'"
    ).fetchone() == (1,)


def test_member_removal_reveals_no_user_or_room_id(db: Conn, room: tuple[uuid.UUID, ...]) -> None:
    room_id, owner, member = room
    with act_as(db, member) as cur:  # the member sees their own membership id
        row = cur.execute(
            "select id from public.room_members where room_id = %s and user_id = %s", (room_id, member)
        ).fetchone()
    assert row is not None
    membership_id = row[0]
    old = db.execute(
        "select to_jsonb(m) from public.room_members m where room_id = %s and user_id = %s", (room_id, member)
    ).fetchone()
    assert old is not None
    with act_as(db, owner, rollback=False) as cur:  # the owner removes the member
        cur.execute("delete from public.room_members where room_id = %s and user_id = %s", (room_id, member))
        assert cur.rowcount == 1
    event = {col: old[0][col] for col in delete_event_key(db, "public.room_members")}
    assert event == {"id": str(membership_id)}
    values = set(event.values())
    assert str(member) not in values and str(room_id) not in values and str(owner) not in values


def test_leaving_or_erasure_deletes_carry_the_same_key(db: Conn, room: tuple[uuid.UUID, ...]) -> None:
    """The key depends on the table, not on who subscribes or which path deletes the row."""
    room_id, owner, member = room
    key = delete_event_key(db, "public.room_members", "anon") + delete_event_key(db, "public.room_members")
    assert set(key) == {"id"}
    with act_as(db, member, rollback=False) as cur:  # leaving deletes the row like a removal
        cur.execute("select public.leave_room(%s)", (room_id,))
    assert db.execute(
        "select count(*) from public.room_members where user_id = %s", (member,)
    ).fetchone() == (0,)
    db.execute("delete from auth.users where id = %s", (owner,))  # erasure cascades to the rows
    assert db.execute(
        "select count(*) from public.room_members where room_id = %s", (room_id,)
    ).fetchone() == (0,)


def test_chat_message_deletion_carries_no_key(db: Conn, room: tuple[uuid.UUID, ...]) -> None:
    room_id, owner, _ = room
    assert delete_event_key(db, "public.room_chat_messages") == []
    index = db.execute(
        "select a.attname, format_type(a.atttypid, null) from pg_index i"
        "  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
        " where i.indrelid = 'public.room_chat_messages'::regclass and i.indisreplident"
    ).fetchall()
    assert index == [("realtime_id", "uuid")]
    chat = add_element(db, room_id, "chat")
    with act_as(db, owner, rollback=False) as cur:
        cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content)"
            " values (%s, %s, 'user', 'hello')",
            (room_id, chat),
        )
    (realtime_id,) = db.execute(
        "select realtime_id from public.room_chat_messages where element_id = %s", (chat,)
    ).fetchone() or (None,)
    assert isinstance(realtime_id, uuid.UUID)


def test_every_published_table_sends_only_random_surrogates(db: Conn) -> None:
    tables = published_tables(db)
    assert {"public.room_members", "public.room_chat_messages", "public.rooms"} <= set(tables)
    for table in tables:
        for col in delete_event_key(db, table, "anon") + delete_event_key(db, table):
            row = db.execute(
                "select format_type(a.atttypid, null), coalesce(pg_get_expr(d.adbin, d.adrelid), ''),"
                "       exists (select 1 from pg_constraint c where c.conrelid = a.attrelid"
                "                  and c.contype = 'f' and a.attnum = any(c.conkey))"
                "  from pg_attribute a"
                "  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
                " where a.attrelid = %s::regclass and a.attname = %s",
                (table, col),
            ).fetchone()
            assert row is not None
            assert row[0] == "uuid" and "gen_random_uuid()" in row[1] and not row[2], (table, col, row)


def test_surrogate_keys_are_readable_by_members_only_and_writable_by_no_client(
    db: Conn, room: tuple[uuid.UUID, ...], make_user: Any
) -> None:
    room_id, owner, member = room
    stranger = make_user()
    with act_as(db, owner) as cur:
        assert (
            len(cur.execute("select id from public.room_members where room_id = %s", (room_id,)).fetchall())
            == 2
        )
    with act_as(db, stranger) as cur:
        assert (
            cur.execute("select id from public.room_members where room_id = %s", (room_id,)).fetchall() == []
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, owner) as cur:
        cur.execute(
            "update public.room_members set id = gen_random_uuid() where room_id = %s and user_id = %s",
            (room_id, member),
        )
    chat = add_element(db, room_id, "chat")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, owner) as cur:
        cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content, realtime_id)"
            " values (%s, %s, 'user', 'hi', gen_random_uuid())",
            (room_id, chat),
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, owner) as cur:
        cur.execute("update public.room_chat_messages set realtime_id = gen_random_uuid()")
