"""Room export job end to end against the rooms module: a room built through its RPCs and tables.

Everything is written as the members themselves (act_as, like PostgREST
requests), the assistant's reply as the service role (the AI worker). The
handler reads as the requesting user, so room RLS decides who may export.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from tests.export.conftest import FakeJobContext
from tests.export.test_canvas import parse_pdf
from tests.helpers import act_as, create_user
from tests.rooms.conftest import create_room, invite_and_join
from workers.errors import BacklineError
from workers.export.context import NotAllowed
from workers.export.jobs import run_room_export
from workers.platform.factory import Adapters
from workers.platform.storage import Caller


@dataclass(frozen=True)
class Canvas:
    room_id: uuid.UUID
    owner: uuid.UUID
    editor: uuid.UUID
    viewer: uuid.UUID
    stranger: uuid.UUID


def _element(cur: psycopg.Cursor, room_id: uuid.UUID, kind: str, x: float, y: float, data: str) -> uuid.UUID:
    return cur.execute(
        "insert into public.room_elements (room_id, kind, x, y, width, height, data)"
        " values (%s, %s, %s, %s, 100, 60, %s) returning id",
        (room_id, kind, x, y, data),
    ).fetchone()[0]


@pytest.fixture
def canvas(rights_url: str) -> Canvas:
    with psycopg.connect(rights_url) as conn:
        owner, editor, viewer, stranger = (create_user(conn) for _ in range(4))
        room_id = create_room(conn, owner, "Planning")
        invite_and_join(conn, room_id, owner, editor, "editor")
        invite_and_join(conn, room_id, owner, viewer, "viewer")
        with act_as(conn, owner, rollback=False) as cur:
            goals = _element(cur, room_id, "note", 0, 0, '{"text": "Goals"}')
            later = _element(cur, room_id, "frame", 400, 0, '{"title": "Later", "text": "after launch"}')
        with act_as(conn, editor, rollback=False) as cur:
            risks = _element(cur, room_id, "note", 200, 0, '{"text": "Risks"}')
            chat = _element(cur, room_id, "chat", 0, 200, '{"title": "Ask the AI"}')
            cur.execute(
                "insert into public.room_element_connections (room_id, from_element_id, to_element_id, label)"
                " values (%s, %s, %s, 'blocks'), (%s, %s, %s, null)",
                (room_id, goals, risks, room_id, risks, later),
            )
            cur.execute(
                "insert into public.room_chat_messages (room_id, element_id, role, content)"
                " values (%s, %s, 'user', 'What are the risks?')",
                (room_id, chat),
            )
        with act_as(conn, None, "service_role", rollback=False) as cur:
            cur.execute(
                "insert into public.room_chat_messages (room_id, element_id, role, content, model)"
                " values (%s, %s, 'assistant', 'Budget and time.', 'fake-model')",
                (room_id, chat),
            )
    return Canvas(room_id, owner, editor, viewer, stranger)


def _exports_of(url: str, user: uuid.UUID) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) from storage.objects where bucket_id = 'exports' and name like %s",
            (f"{user}/%",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_member_gets_markdown_with_positions_connections_and_chat(
    canvas: Canvas, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    md = run_room_export(make_ctx(canvas.viewer), {"room_id": str(canvas.room_id), "format": "markdown"})
    assert md is not None
    assert md["path"].startswith(f"{canvas.viewer}/rooms/{canvas.room_id}/") and md["path"].endswith(".md")
    assert (md["elements"], md["connections"], md["messages"]) == (4, 2, 2)
    text = b"".join(
        adapters.storage.download("exports", md["path"], caller=Caller.user(canvas.viewer))
    ).decode()
    assert text.startswith("# Planning\n") and "4 elements" in text
    # Reading order follows the canvas: top row left to right, then the chat below.
    order = [
        text.index(h) for h in ("### Note: Goals", "### Note: Risks", "### Frame: Later", "### Chat: Ask")
    ]
    assert order == sorted(order)
    assert "<sub>at (200, 0), 100 x 60</sub>" in text and "after launch" in text
    assert "- Goals → Risks (blocks)" in text and "- Risks → Later" in text
    assert text.index("**Member:** What are the risks?") < text.index("**AI:** Budget and time.")
    # Another member cannot read this member's export.
    with pytest.raises(Exception, match="Object not found"):
        list(adapters.storage.download("exports", md["path"], caller=Caller.user(canvas.editor)))


def test_the_owner_gets_a_pdf_of_the_canvas(
    canvas: Canvas, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    pdf = run_room_export(make_ctx(canvas.owner), {"room_id": str(canvas.room_id)})
    assert (
        pdf is not None and pdf["path"].startswith(f"{canvas.owner}/rooms/") and pdf["path"].endswith(".pdf")
    )
    data = b"".join(adapters.storage.download("exports", pdf["path"], caller=Caller.user(canvas.owner)))
    _objects, streams = parse_pdf(data)
    content = b"\n".join(streams).decode("latin-1")
    assert "(Planning) Tj" in content and "(Goals) Tj" in content and "(blocks) Tj" in content
    assert content.count(" re B") == 4 and content.count(" l S") == 2  # 4 boxes, 2 connections
    assert "(Member: What are the risks?) Tj" in content and "(AI: Budget and time.) Tj" in content


def test_a_non_member_is_refused_and_nothing_is_written(
    rights_url: str, canvas: Canvas, make_ctx: Callable[..., FakeJobContext]
):
    with pytest.raises(BacklineError, match="not found or you are not a member"):
        run_room_export(make_ctx(canvas.stranger), {"room_id": str(canvas.room_id), "format": "markdown"})
    with pytest.raises(BacklineError, match="not found or you are not a member"):
        run_room_export(make_ctx(canvas.owner), {"room_id": str(uuid.uuid4())})
    # A job of the stranger cannot borrow a member's identity through the payload.
    with pytest.raises(NotAllowed):
        run_room_export(
            make_ctx(canvas.stranger), {"room_id": str(canvas.room_id), "user_id": str(canvas.owner)}
        )
    with pytest.raises(BacklineError, match="pdf or markdown"):
        run_room_export(make_ctx(canvas.owner), {"room_id": str(canvas.room_id), "format": "docx"})
    assert _exports_of(rights_url, canvas.stranger) == 0 and _exports_of(rights_url, canvas.owner) == 0


def test_a_member_who_left_can_no_longer_export(
    rights_url: str, canvas: Canvas, make_ctx: Callable[..., FakeJobContext]
):
    ctx = make_ctx(canvas.editor)
    assert run_room_export(ctx, {"room_id": str(canvas.room_id), "format": "markdown"}) is not None
    with psycopg.connect(rights_url) as conn, act_as(conn, canvas.editor, rollback=False) as cur:
        cur.execute("select public.leave_room(%s)", (canvas.room_id,))
    with pytest.raises(BacklineError, match="not a member"):
        run_room_export(make_ctx(canvas.editor), {"room_id": str(canvas.room_id), "format": "markdown"})
    assert _exports_of(rights_url, canvas.editor) == 1
