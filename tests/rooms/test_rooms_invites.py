"""Invites: owner-only creation, token accepted once by a signed-in user, expiry, cleanup."""

from __future__ import annotations

import pytest
from psycopg import errors

from tests.helpers import act_as
from tests.rooms.conftest import PERSONAS, Room, as_persona


def make_invite(db, room: Room, role="viewer", expires="7 days", max_uses=1):
    with act_as(db, room.owner, rollback=False) as cur:
        row = cur.execute(
            "select invite_id, token from public.create_room_invite(%s, %s, %s, %s)",
            (room.id, role, expires, max_uses),
        ).fetchone()
    return row


def test_token_is_unguessable_and_only_its_hash_is_stored(db, room: Room):
    invite_id, token = make_invite(db, room)
    assert len(token) >= 43
    stored = db.execute("select token_hash from public.room_invites where id = %s", (invite_id,)).fetchone()[
        0
    ]
    assert bytes(stored) == db.execute("select sha256(convert_to(%s, 'UTF8'))", (token,)).fetchone()[0]
    assert token.encode() not in bytes(stored)


def test_accepting_joins_with_the_invite_role(db, room: Room):
    _, token = make_invite(db, room, role="editor")
    with act_as(db, room.stranger) as cur:
        assert cur.execute("select public.accept_room_invite(%s)", (token,)).fetchone() == (room.id,)
        assert cur.execute(
            "select role, invited_by from public.room_members where room_id = %s and user_id = %s",
            (room.id, room.stranger),
        ).fetchone() == ("editor", room.owner)
        assert cur.execute("select count(*) from public.rooms where id = %s", (room.id,)).fetchone() == (1,)


def test_a_single_use_invite_cannot_be_reused(db, room: Room, make_user):
    _, token = make_invite(db, room)
    other = make_user()
    with act_as(db, room.stranger, rollback=False) as cur:
        cur.execute("select public.accept_room_invite(%s)", (token,))
    with act_as(db, other) as cur, pytest.raises(errors.Error) as err:
        cur.execute("select public.accept_room_invite(%s)", (token,))
    assert err.value.sqlstate == "PT410" and "used up" in err.value.diag.message_primary  # HTTP 410
    assert db.execute("select count(*) from public.room_members where user_id = %s", (other,)).fetchone() == (
        0,
    )


def test_multi_use_invite_counts_uses(db, room: Room, make_user):
    invite_id, token = make_invite(db, room, max_uses=2)
    a, b, c = make_user(), make_user(), make_user()
    for user in (a, b):
        with act_as(db, user, rollback=False) as cur:
            cur.execute("select public.accept_room_invite(%s)", (token,))
    with act_as(db, c) as cur, pytest.raises(errors.Error) as err:
        cur.execute("select public.accept_room_invite(%s)", (token,))
    assert err.value.sqlstate == "PT410"
    assert db.execute("select use_count from public.room_invites where id = %s", (invite_id,)).fetchone() == (
        2,
    )


def test_existing_member_keeps_role_and_uses_nothing(db, room: Room):
    _, token = make_invite(db, room, role="viewer")
    with act_as(db, room.editor) as cur:
        assert cur.execute("select public.accept_room_invite(%s)", (token,)).fetchone() == (room.id,)
        assert cur.execute(
            "select role from public.room_members where room_id = %s and user_id = %s", (room.id, room.editor)
        ).fetchone() == ("editor",)
        assert cur.execute("select public.accept_room_invite(%s)", (token,)).fetchone() == (room.id,)


def test_expired_invite_is_refused(db, room: Room):
    invite_id, token = make_invite(db, room)
    db.execute(
        "update public.room_invites set expires_at = now() - interval '1 second' where id = %s", (invite_id,)
    )
    with act_as(db, room.stranger) as cur, pytest.raises(errors.Error) as err:
        cur.execute("select public.accept_room_invite(%s)", (token,))
    assert err.value.sqlstate == "PT410" and "expired" in err.value.diag.message_primary


@pytest.mark.parametrize("token", ["", "not-a-token", None])
def test_wrong_token_is_refused(db, room: Room, token):
    with act_as(db, room.stranger) as cur, pytest.raises(errors.Error) as err:
        cur.execute("select public.accept_room_invite(%s)", (token,))
    assert err.value.sqlstate == "PT404"


def test_anon_cannot_accept_or_create(db, room: Room):
    _, token = make_invite(db, room)
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select public.accept_room_invite(%s)", (token,))
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select * from public.create_room_invite(%s)", (room.id,))


def test_anonymous_user_may_accept(db, room: Room, make_user):
    ghost = make_user(anonymous=True)
    _, token = make_invite(db, room)
    with act_as(db, ghost, claims={"is_anonymous": True}) as cur:
        assert cur.execute("select public.accept_room_invite(%s)", (token,)).fetchone() == (room.id,)


@pytest.mark.parametrize("persona", ["editor", "viewer", "stranger"])
def test_only_the_owner_creates_invites(db, room: Room, persona):
    with as_persona(db, room, persona) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select * from public.create_room_invite(%s, 'editor')", (room.id,))
    assert db.execute(
        "select count(*) from public.room_invites where room_id = %s", (room.id,)
    ).fetchone() == (2,)


@pytest.mark.parametrize(
    "args",
    [
        ("owner", "7 days", 1),
        ("admin", "7 days", 1),
        ("viewer", "10 seconds", 1),
        ("viewer", "31 days", 1),
        ("viewer", "1 day", 0),
        ("viewer", "1 day", 101),
    ],
)
def test_bad_invite_arguments_rejected(db, room: Room, args):
    with act_as(db, room.owner) as cur, pytest.raises(errors.InvalidParameterValue):
        cur.execute("select * from public.create_room_invite(%s, %s, %s, %s)", (room.id, *args))
    assert db.execute(
        "select count(*) from public.room_invites where room_id = %s", (room.id,)
    ).fetchone() == (2,)


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_sees_invites(db, room: Room, persona):
    with as_persona(db, room, persona) as cur:
        if persona == "anon":
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("select id from public.room_invites")
            return
        rows = cur.execute("select id from public.room_invites where room_id = %s", (room.id,)).fetchall()
    assert len(rows) == (2 if persona in ("owner", "service_role") else 0)


def test_token_hash_is_not_readable(db, room: Room):
    with act_as(db, room.owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select token_hash from public.room_invites")


def test_owner_revokes_an_invite(db, room: Room):
    invite_id, token = make_invite(db, room)
    with act_as(db, room.editor) as cur:
        cur.execute("delete from public.room_invites where id = %s", (invite_id,))
        assert cur.rowcount == 0
    with act_as(db, room.owner, rollback=False) as cur:
        cur.execute("delete from public.room_invites where id = %s", (invite_id,))
        assert cur.rowcount == 1
    with act_as(db, room.stranger) as cur, pytest.raises(errors.Error) as err:
        cur.execute("select public.accept_room_invite(%s)", (token,))
    assert err.value.sqlstate == "PT404"


def test_cleanup_lists_then_deletes_expired_and_used_invites(db, room: Room):
    fresh_id, _ = make_invite(db, room)
    old_id, _ = make_invite(db, room)
    db.execute(
        "update public.room_invites set expires_at = now() - interval '1 day' where id = %s", (old_id,)
    )
    # the fixture's two accepted invites are used up
    with act_as(db, None, "service_role") as cur:
        listed = [
            r[0] for r in cur.execute("select item from private.cleanup_room_invites(10, true)").fetchall()
        ]
        assert len(listed) == 3 and any(str(old_id) in item and "expired" in item for item in listed)
        assert cur.execute("select count(*) from public.room_invites").fetchone()[0] >= 4
        first = cur.execute("select item from private.cleanup_room_invites(2, false)").fetchall()
        rest = cur.execute("select item from private.cleanup_room_invites(10, false)").fetchall()
        assert len(first) == 2 and len(rest) == 1
        assert [
            r[0]
            for r in cur.execute(
                "select id from public.room_invites where room_id = %s", (room.id,)
            ).fetchall()
        ] == [fresh_id]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_cleanup_is_not_callable_by_users(db, room: Room, role):
    with (
        act_as(db, room.owner if role == "authenticated" else None, role) as cur,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        cur.execute("select * from private.cleanup_room_invites(10, true)")
