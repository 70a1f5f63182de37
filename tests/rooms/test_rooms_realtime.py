"""Realtime: room tables in the publication; private room channels only for members."""

from __future__ import annotations

import uuid

import pytest

from tests.rooms.conftest import Room
from tests.rooms.realtime_auth import channel_access

ROOM_TABLES = {"rooms", "room_members", "room_elements", "room_element_connections", "room_chat_messages"}


def test_room_tables_are_published(db):
    published = {
        r[0]
        for r in db.execute(
            "select tablename from pg_publication_tables"
            " where pubname = 'supabase_realtime' and schemaname = 'public'"
        )
    }
    assert published >= ROOM_TABLES
    assert "room_invites" not in published  # invites carry token hashes: never streamed


@pytest.mark.parametrize(
    "persona,presence,broadcast",
    [
        ("owner", (True, True), (True, True)),
        ("editor", (True, True), (True, True)),
        ("viewer", (True, True), (True, False)),
        ("stranger", (False, False), (False, False)),
        ("anon", (False, False), (False, False)),
    ],
)
def test_room_channel_access(db, room: Room, persona, presence, broadcast):
    topic = f"room:{room.id}"
    user = room.who(persona)
    assert channel_access(db, user, topic, "presence") == presence
    assert channel_access(db, user, topic, "broadcast") == broadcast


def test_member_of_one_room_cannot_join_another(db, room: Room):
    assert channel_access(db, room.owner, f"room:{uuid.uuid4()}", "broadcast") == (False, False)


@pytest.mark.parametrize("topic", ["room:", "room:not-a-uuid", "rooms:{id}", "{id}", "room:{id}:extra"])
def test_malformed_topics_are_refused_not_errors(db, room: Room, topic):
    assert channel_access(db, room.owner, topic.format(id=room.id), "broadcast") == (False, False)


def test_removed_member_can_no_longer_join(db, room: Room):
    db.execute("delete from public.room_members where room_id = %s and user_id = %s", (room.id, room.editor))
    assert channel_access(db, room.editor, f"room:{room.id}", "presence") == (False, False)


def test_other_extensions_are_not_authorized(db, room: Room):
    assert channel_access(db, room.owner, f"room:{room.id}", "postgres_changes") == (False, False)
