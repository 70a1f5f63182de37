"""Rooms and members: who sees, changes and leaves a room (RLS matrix + RPCs)."""

from __future__ import annotations

import uuid

import pytest
from psycopg import errors

from tests.helpers import act_as
from tests.rooms.conftest import PERSONAS, Room, as_persona, create_room

SEES_ROOM = {
    "owner": True,
    "editor": True,
    "viewer": True,
    "stranger": False,
    "anon": None,
    "service_role": True,
}


def test_creator_becomes_the_owner_member(db, make_user):
    alice = make_user()
    room_id = create_room(db, alice, "Plans")
    assert db.execute("select owner_id, title from public.rooms where id = %s", (room_id,)).fetchone() == (
        alice,
        "Plans",
    )
    assert db.execute(
        "select user_id, role from public.room_members where room_id = %s", (room_id,)
    ).fetchall() == [(alice, "owner")]


def test_room_insert_returns_the_row_to_its_creator(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur:
        row = cur.execute("insert into public.rooms (title) values ('x') returning owner_id").fetchone()
    assert row == (alice,)


def test_cannot_create_a_room_for_someone_else(db, make_user):
    alice, bob = make_user(), make_user()
    with act_as(db, alice) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into public.rooms (title, owner_id) values ('x', %s)", (bob,))


@pytest.mark.parametrize("title", ["", "x" * 201])
def test_bad_room_title_rejected(db, make_user, title):
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(errors.CheckViolation):
        cur.execute("insert into public.rooms (title) values (%s)", (title,))
    assert db.execute("select count(*) from public.rooms where owner_id = %s", (alice,)).fetchone() == (0,)


def test_anon_cannot_create_rooms(db):
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into public.rooms (title) values ('x')")


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_sees_the_room_and_its_members(db, room: Room, persona):
    expected = SEES_ROOM[persona]
    with as_persona(db, room, persona) as cur:
        if expected is None:
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("select id from public.rooms where id = %s", (room.id,))
            return
        rooms = cur.execute("select id from public.rooms where id = %s", (room.id,)).fetchall()
        members = cur.execute(
            "select user_id, role from public.room_members where room_id = %s", (room.id,)
        ).fetchall()
    if expected:
        assert rooms == [(room.id,)]
        assert dict(members) == {room.owner: "owner", room.editor: "editor", room.viewer: "viewer"}
    else:
        assert rooms == [] and members == []


def test_non_member_guessing_a_room_id_sees_nothing(db, room: Room, make_user):
    with act_as(db, room.stranger) as cur:
        assert cur.execute("select count(*) from public.rooms where id = %s", (room.id,)).fetchone() == (0,)
        assert cur.execute(
            "select count(*) from public.room_members where room_id = %s", (room.id,)
        ).fetchone() == (0,)
        cur.execute("update public.rooms set title = 'mine' where id = %s", (room.id,))
        assert cur.rowcount == 0
        cur.execute("delete from public.rooms where id = %s", (room.id,))
        assert cur.rowcount == 0
    assert db.execute("select title from public.rooms where id = %s", (room.id,)).fetchone() == ("Ideas",)


@pytest.mark.parametrize(
    "persona,changes",
    [
        ("owner", 1),
        ("editor", 0),
        ("viewer", 0),
        ("stranger", 0),
        ("service_role", 1),
    ],
)
def test_only_the_owner_renames_the_room(db, room: Room, persona, changes):
    with as_persona(db, room, persona) as cur:
        cur.execute(
            "update public.rooms set title = 'Renamed', settings = '{\"grid\": true}' where id = %s",
            (room.id,),
        )
        assert cur.rowcount == changes


def test_anon_cannot_update_or_delete_rooms(db, room: Room):
    for statement in ("update public.rooms set title = 'x'", "delete from public.rooms"):
        with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement)


def test_settings_must_be_an_object(db, room: Room):
    with act_as(db, room.owner) as cur, pytest.raises(errors.CheckViolation):
        cur.execute("update public.rooms set settings = '[1]' where id = %s", (room.id,))


def test_owner_cannot_change_owner_id_directly(db, room: Room):
    with act_as(db, room.owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("update public.rooms set owner_id = %s where id = %s", (room.editor, room.id))


@pytest.mark.parametrize(
    "persona,deleted",
    [
        ("owner", 1),
        ("editor", 0),
        ("viewer", 0),
        ("stranger", 0),
    ],
)
def test_only_the_owner_deletes_the_room(db, room: Room, persona, deleted):
    with as_persona(db, room, persona) as cur:
        cur.execute("delete from public.rooms where id = %s", (room.id,))
        assert cur.rowcount == deleted


def test_deleting_the_room_removes_members(db, room: Room):
    with act_as(db, room.owner) as cur:
        cur.execute("delete from public.rooms where id = %s", (room.id,))
        assert cur.rowcount == 1
        cur.execute("reset role")  # count as the superuser, before the rollback
        assert cur.execute(
            "select count(*) from public.room_members where room_id = %s", (room.id,)
        ).fetchone() == (0,)


# -- roles -----------------------------------------------------------------


@pytest.mark.parametrize("persona,changes", [("owner", 1), ("editor", 0), ("viewer", 0), ("stranger", 0)])
def test_only_the_owner_changes_roles(db, room: Room, persona, changes):
    with as_persona(db, room, persona) as cur:
        cur.execute(
            "update public.room_members set role = 'editor' where room_id = %s and user_id = %s",
            (room.id, room.viewer),
        )
        assert cur.rowcount == changes


def test_owner_cannot_make_someone_owner_by_update(db, room: Room):
    with act_as(db, room.owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(
            "update public.room_members set role = 'owner' where room_id = %s and user_id = %s",
            (room.id, room.editor),
        )


def test_editor_cannot_promote_themselves(db, room: Room):
    with act_as(db, room.viewer) as cur:
        cur.execute("update public.room_members set role = 'editor' where user_id = %s", (room.viewer,))
        assert cur.rowcount == 0
    assert db.execute(
        "select role from public.room_members where room_id = %s and user_id = %s", (room.id, room.viewer)
    ).fetchone() == ("viewer",)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_insert_members_directly(db, room: Room, role):
    user = room.stranger if role == "authenticated" else None
    with act_as(db, user, role) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(
            "insert into public.room_members (room_id, user_id, role) values (%s, %s, 'editor')",
            (room.id, room.stranger),
        )


# -- leaving and removing ----------------------------------------------------


def test_member_leaves_through_rpc(db, room: Room):
    with act_as(db, room.viewer) as cur:
        cur.execute("select public.leave_room(%s)", (room.id,))
        assert cur.execute("select count(*) from public.rooms where id = %s", (room.id,)).fetchone() == (0,)
    # rolled back: still a member outside the block
    assert db.execute(
        "select count(*) from public.room_members where room_id = %s", (room.id,)
    ).fetchone() == (3,)


def test_owner_cannot_leave(db, room: Room):
    with act_as(db, room.owner) as cur, pytest.raises(errors.InvalidParameterValue) as err:
        cur.execute("select public.leave_room(%s)", (room.id,))
    assert "transfer" in (err.value.diag.message_hint or "").lower()


def test_stranger_cannot_leave_a_room_they_are_not_in(db, room: Room):
    with act_as(db, room.stranger) as cur, pytest.raises(errors.Error) as err:
        cur.execute("select public.leave_room(%s)", (room.id,))
    assert err.value.sqlstate == "PT404"


@pytest.mark.parametrize(
    "persona,target,deleted",
    [
        ("owner", "viewer", 1),
        ("owner", "editor", 1),
        ("owner", "owner", 0),
        ("editor", "viewer", 0),
        ("viewer", "editor", 0),
        ("stranger", "viewer", 0),
        ("editor", "editor", 1),
        ("viewer", "viewer", 1),
    ],
)
def test_removing_members(db, room: Room, persona, target, deleted):
    with as_persona(db, room, persona) as cur:
        cur.execute(
            "delete from public.room_members where room_id = %s and user_id = %s", (room.id, room.who(target))
        )
        assert cur.rowcount == deleted


def test_removed_member_loses_access(db, room: Room):
    db.execute("delete from public.room_members where room_id = %s and user_id = %s", (room.id, room.editor))
    with act_as(db, room.editor) as cur:
        assert cur.execute("select count(*) from public.rooms where id = %s", (room.id,)).fetchone() == (0,)


# -- ownership transfer --------------------------------------------------------


def test_owner_transfers_ownership(db, room: Room):
    with act_as(db, room.owner) as cur:
        cur.execute("select public.transfer_room_ownership(%s, %s)", (room.id, room.editor))
        roles = dict(
            cur.execute(
                "select user_id, role from public.room_members where room_id = %s", (room.id,)
            ).fetchall()
        )
        assert roles == {room.owner: "editor", room.editor: "owner", room.viewer: "viewer"}
        assert cur.execute("select owner_id from public.rooms where id = %s", (room.id,)).fetchone() == (
            room.editor,
        )
        cur.execute("update public.rooms set title = 'old owner' where id = %s", (room.id,))
        assert cur.rowcount == 0
        assert cur.execute(
            "select action from public.audit_log where user_id = %s", (room.owner,)
        ).fetchall() == [("room.ownership_transferred",)]


@pytest.mark.parametrize("persona", ["editor", "viewer", "stranger"])
def test_only_the_owner_transfers(db, room: Room, persona):
    with as_persona(db, room, persona) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select public.transfer_room_ownership(%s, %s)", (room.id, room.who(persona)))
    assert db.execute("select owner_id from public.rooms where id = %s", (room.id,)).fetchone() == (
        room.owner,
    )


def test_anon_cannot_call_room_rpcs(db, room: Room):
    for call in ("select public.transfer_room_ownership(%s, %s)", "select public.leave_room(%s)"):
        params = (room.id, room.editor) if call.count("%s") == 2 else (room.id,)
        with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(call, params)


@pytest.mark.parametrize("target", ["stranger", "owner", None])
def test_transfer_to_a_non_member_is_refused(db, room: Room, target):
    new_owner = room.who(target) if target else uuid.uuid4()
    with act_as(db, room.owner) as cur, pytest.raises(errors.InvalidParameterValue):
        cur.execute("select public.transfer_room_ownership(%s, %s)", (room.id, new_owner))
    assert db.execute("select owner_id from public.rooms where id = %s", (room.id,)).fetchone() == (
        room.owner,
    )


def test_owner_account_deletion_removes_the_room(db, room: Room):
    db.execute("delete from auth.users where id = %s", (room.owner,))
    assert db.execute("select count(*) from public.rooms where id = %s", (room.id,)).fetchone() == (0,)


def test_member_account_deletion_removes_membership(db, room: Room):
    db.execute("delete from auth.users where id = %s", (room.viewer,))
    assert db.execute(
        "select count(*) from public.room_members where room_id = %s", (room.id,)
    ).fetchone() == (2,)


def test_room_rows_are_not_granted_to_anon(db):
    for table in (
        "rooms",
        "room_members",
        "room_invites",
        "room_elements",
        "room_element_connections",
        "room_chat_messages",
    ):
        assert db.execute(
            "select has_table_privilege('anon', %s, 'select')", (f"public.{table}",)
        ).fetchone() == (False,), table
