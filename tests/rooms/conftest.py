"""Fixtures for rooms: a room with an owner, an editor and a viewer, plus a stranger.

Everything is created through the API path (act_as + RPCs), inside the `db`
test transaction, so it is rolled back after each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as


@dataclass(frozen=True)
class Room:
    id: uuid.UUID
    owner: uuid.UUID
    editor: uuid.UUID
    viewer: uuid.UUID
    stranger: uuid.UUID

    def who(self, persona: str) -> uuid.UUID | None:
        """The user id of a persona; None for anon and service_role."""
        return {
            "owner": self.owner,
            "editor": self.editor,
            "viewer": self.viewer,
            "stranger": self.stranger,
        }.get(persona)


PERSONAS = ("owner", "editor", "viewer", "stranger", "anon", "service_role")


def as_persona(conn: psycopg.Connection[Any], room: Room, persona: str, rollback: bool = True) -> Any:
    """act_as for a persona name: members and the stranger as authenticated, anon, service_role."""
    if persona == "anon":
        return act_as(conn, None, "anon", rollback=rollback)
    if persona == "service_role":
        return act_as(conn, None, "service_role", rollback=rollback)
    return act_as(conn, room.who(persona), rollback=rollback)


def create_room(conn: psycopg.Connection[Any], owner: uuid.UUID, title: str = "Ideas") -> uuid.UUID:
    with act_as(conn, owner, rollback=False) as cur:
        row = cur.execute("insert into public.rooms (title) values (%s) returning id", (title,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def invite_and_join(
    conn: psycopg.Connection[Any], room_id: uuid.UUID, owner: uuid.UUID, user: uuid.UUID, role: str
) -> None:
    with act_as(conn, owner, rollback=False) as cur:
        token = cur.execute(
            "select token from public.create_room_invite(%s, %s)", (room_id, role)
        ).fetchone()[0]
    with act_as(conn, user, rollback=False) as cur:
        assert cur.execute("select public.accept_room_invite(%s)", (token,)).fetchone() == (room_id,)


def add_element(
    conn: psycopg.Connection[Any], room_id: uuid.UUID, kind: str = "note", **values: Any
) -> uuid.UUID:
    """Insert an element as superuser (fixture data, bypassing RLS)."""
    cols = ["room_id", "kind", *values]
    row = conn.execute(
        f"insert into public.room_elements ({', '.join(cols)}) values ({', '.join(['%s'] * len(cols))})"
        " returning id",
        (room_id, kind, *values.values()),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.fixture
def room(db: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]) -> Room:
    owner, editor, viewer, stranger = make_user(), make_user(), make_user(), make_user()
    room_id = create_room(db, owner)
    invite_and_join(db, room_id, owner, editor, "editor")
    invite_and_join(db, room_id, owner, viewer, "viewer")
    return Room(room_id, owner, editor, viewer, stranger)
