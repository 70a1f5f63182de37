"""Scenario: the ideas canvas, request by request, each committed like a PostgREST call."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from tests.files.storage_api import upload
from tests.helpers import act_as, create_user
from tests.rooms.realtime_auth import channel_access


def test_ideas_canvas_session(clone_url):
    conn = psycopg.connect(clone_url, autocommit=True)

    def request(user, query, params=()):
        with act_as(conn, user, rollback=False) as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else cur.rowcount

    try:
        maya, eli, vic = create_user(conn), create_user(conn), create_user(conn)

        # Maya creates a room and invites Eli as editor and Vic as viewer.
        [(room,)] = request(maya, "insert into public.rooms (title) values ('Launch ideas') returning id")
        [(_, eli_token)] = request(
            maya, "select invite_id, token from public.create_room_invite(%s, 'editor')", (room,)
        )
        [(_, vic_token)] = request(
            maya, "select invite_id, token from public.create_room_invite(%s, 'viewer', '1 day', 1)", (room,)
        )
        assert request(eli, "select public.accept_room_invite(%s)", (eli_token,)) == [(room,)]
        assert request(vic, "select public.accept_room_invite(%s)", (vic_token,)) == [(room,)]
        assert channel_access(conn, vic, f"room:{room}", "presence") == (True, True)

        # Maya applies the Brainstorm template.
        [(template,)] = request(
            None, "select id from public.room_templates where name = 'Brainstorm' and owner_id is null"
        )
        created = request(maya, "select * from public.apply_template(%s, %s)", (room, template))
        assert len(created) == 6

        # Eli adds two notes and connects them.
        [(a,)] = request(
            eli,
            "insert into public.room_elements (room_id, kind, x, y, data)"
            " values (%s, 'note', 10, 10, '{\"text\": \"Podcast\"}') returning id",
            (room,),
        )
        [(b,)] = request(
            eli,
            "insert into public.room_elements (room_id, kind, x, y, data)"
            " values (%s, 'note', 300, 10, '{\"text\": \"Guests\"}') returning id",
            (room,),
        )
        request(
            eli,
            "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
            " values (%s, %s, %s)",
            (room, a, b),
        )
        # Eli adds an image he uploaded to the room folder.
        upload(conn, eli, "images", f"rooms/{room}/sketch.png", 5000, "image/png")
        request(
            eli,
            "insert into public.room_elements (room_id, kind, image_path) values (%s, 'image', %s)",
            (room, f"rooms/{room}/sketch.png"),
        )

        # Vic sees everything but cannot move anything.
        assert request(vic, "select count(*) from public.room_elements where room_id = %s", (room,)) == [(9,)]
        assert request(vic, "update public.room_elements set x = 999 where id = %s", (a,)) == 0
        with pytest.raises(errors.InsufficientPrivilege):
            request(vic, "insert into public.room_elements (room_id, kind) values (%s, 'note')", (room,))
        assert request(maya, "select x, version from public.room_elements where id = %s", (a,)) == [(10, 1)]

        # The chat element collects messages from Maya, Eli and the AI worker.
        [(chat,)] = request(
            maya, "select id from public.room_elements where room_id = %s and kind = 'chat'", (room,)
        )
        insert_msg = (
            "insert into public.room_chat_messages (room_id, element_id, role, content)"
            " values (%s, %s, 'user', %s)"
        )
        request(maya, insert_msg, (room, chat, "What should we launch first?"))
        request(eli, insert_msg, (room, chat, "Maybe the podcast"))
        with act_as(conn, None, "service_role", rollback=False) as cur:
            cur.execute(
                "insert into public.room_chat_messages (room_id, element_id, role, content,"
                " prompt_tokens, completion_tokens) values (%s, %s, 'assistant', 'Start with the podcast.',"
                " 50, 12)",
                (room, chat),
            )
        with pytest.raises(errors.InsufficientPrivilege):
            request(vic, insert_msg, (room, chat, "can I?"))
        history = request(
            vic,
            "select role, author_id from public.room_chat_messages where element_id = %s order by id",
            (chat,),
        )
        assert history == [("user", maya), ("user", eli), ("assistant", None)]

        # The room fills up to the free plan's 100 elements; the 101st is refused.
        request(
            eli,
            "insert into public.room_elements (room_id, kind) select %s, 'note' from generate_series(1, 91)",
            (room,),
        )
        assert request(maya, "select count(*) from public.room_elements where room_id = %s", (room,)) == [
            (100,)
        ]
        with pytest.raises(errors.CheckViolation) as err:
            request(eli, "insert into public.room_elements (room_id, kind) values (%s, 'note')", (room,))
        assert "at most 100 elements" in str(err.value)

        # A stranger guessing the room id sees nothing.
        stranger = create_user(conn)
        assert request(stranger, "select count(*) from public.room_elements where room_id = %s", (room,)) == [
            (0,)
        ]
        assert channel_access(conn, stranger, f"room:{room}", "broadcast") == (False, False)
    finally:
        conn.close()
