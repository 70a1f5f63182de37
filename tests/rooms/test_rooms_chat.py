"""Chat histories: members read, writers append their own user messages, the AI worker the assistant's."""

from __future__ import annotations

import pytest
from psycopg import errors

from tests.helpers import act_as
from tests.rooms.conftest import PERSONAS, Room, add_element, as_persona, create_room

INSERT = "insert into public.room_chat_messages (room_id, element_id, role, content) values (%s, %s, %s, %s)"


@pytest.fixture
def chat(db, room: Room):
    return add_element(db, room.id, "chat")


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_appends_user_messages(db, room: Room, chat, persona):
    with as_persona(db, room, persona) as cur:
        if persona in ("owner", "editor", "service_role"):
            cur.execute(INSERT + " returning author_id", (room.id, chat, "user", "hello"))
            author = cur.fetchone()[0]
            assert author == room.who(persona)
        else:
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(INSERT, (room.id, chat, "user", "hello"))


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_reads_the_history(db, room: Room, chat, persona):
    db.execute(INSERT, (room.id, chat, "user", "first"))
    db.execute(INSERT, (room.id, chat, "assistant", "second"))
    with as_persona(db, room, persona) as cur:
        if persona == "anon":
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("select content from public.room_chat_messages")
            return
        rows = cur.execute(
            "select content from public.room_chat_messages where element_id = %s order by id", (chat,)
        ).fetchall()
    assert rows == ([] if persona == "stranger" else [("first",), ("second",)])


@pytest.mark.parametrize("role", ["assistant", "system"])
def test_members_cannot_write_assistant_or_system_messages(db, room: Room, chat, role):
    with act_as(db, room.owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(INSERT, (room.id, chat, role, "I am the AI"))


def test_ai_worker_appends_assistant_message_with_tokens(db, room: Room, chat):
    with act_as(db, None, "service_role") as cur:
        row = cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content, prompt_tokens,"
            " completion_tokens, model) values (%s, %s, 'assistant', 'Here are ideas', 120, 40, 'gpt-x')"
            " returning author_id, prompt_tokens, completion_tokens",
            (room.id, chat),
        ).fetchone()
    assert row == (None, 120, 40)


def test_author_cannot_be_spoofed(db, room: Room, chat):
    with act_as(db, room.editor) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content, author_id)"
            " values (%s, %s, 'user', 'x', %s)",
            (room.id, chat, room.owner),
        )


@pytest.mark.parametrize(
    "statement",
    [
        "update public.room_chat_messages set content = 'edited'",
        "delete from public.room_chat_messages",
    ],
)
@pytest.mark.parametrize("persona", ["owner", "editor", "viewer", "anon"])
def test_messages_are_append_only_for_api_users(db, room: Room, chat, statement, persona):
    db.execute(INSERT, (room.id, chat, "user", "keep me"))
    with as_persona(db, room, persona) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(statement)
    assert db.execute(
        "select content from public.room_chat_messages where element_id = %s", (chat,)
    ).fetchall() == [("keep me",)]


def test_messages_only_on_chat_elements_of_the_same_room(db, room: Room, chat):
    note = add_element(db, room.id, "note")
    other_room = create_room(db, room.owner, "Other")
    other_chat = add_element(db, other_room, "chat")
    with act_as(db, room.owner) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(INSERT, (room.id, note, "user", "x"))
    with act_as(db, room.owner) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(INSERT, (room.id, other_chat, "user", "x"))
    assert db.execute("select count(*) from public.room_chat_messages").fetchone()[0] == 0


@pytest.mark.parametrize("content", ["", "x" * 100001])
def test_bad_content_rejected(db, room: Room, chat, content):
    with act_as(db, room.editor) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(INSERT, (room.id, chat, "user", content))


def test_history_goes_with_its_element(db, room: Room, chat):
    db.execute(INSERT, (room.id, chat, "user", "bye"))
    db.execute("delete from public.room_elements where id = %s", (chat,))
    assert db.execute(
        "select count(*) from public.room_chat_messages where element_id = %s", (chat,)
    ).fetchone() == (0,)
