"""Room canvas export: load a room as the requesting member (RLS decides), render, store.

Reads the rooms module's tables (public.rooms, room_elements,
room_element_connections, room_chat_messages) as the user, exactly like
their PostgREST requests would: a user who is not (or no longer) a member
of the room sees no room and the export is refused. Output goes to
`exports/<user id>/rooms/<room id>/<timestamp>.pdf|md`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import psycopg

from workers.db.impersonate import act_as
from workers.export.canvas import CanvasElement, ChatLine, Link, render_markdown, render_pdf
from workers.export.context import PermanentError
from workers.platform.storage import SERVICE, StorageAdapter

FORMATS = {"pdf": ("pdf", "application/pdf"), "markdown": ("md", "text/markdown")}

ELEMENTS_SQL = """
select e.id::text, e.kind, e.x, e.y, e.width, e.height, e.data, e.image_path
  from public.room_elements e
 where e.room_id = %s
 order by e.z_index, e.created_at, e.id
"""
CONNECTIONS_SQL = """
select c.from_element_id::text, c.to_element_id::text, coalesce(c.label, '')
  from public.room_element_connections c
 where c.room_id = %s
 order by c.created_at, c.id
"""
MESSAGES_SQL = """
select m.element_id::text, m.role, m.content
  from public.room_chat_messages m
 where m.room_id = %s
 order by m.id
"""


def load_canvas(
    conn: psycopg.Connection[Any], room_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[str, list[CanvasElement]]:
    """The room title and elements as the member sees them; PermanentError when the room is not visible."""
    # One snapshot: elements, connections and messages as of the same moment.
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    with act_as(conn, user_id) as cur:
        room = cur.execute("select r.title from public.rooms r where r.id = %s", (room_id,)).fetchone()
        if room is None:
            raise PermanentError(f"room {room_id} not found or you are not a member")
        elements = cur.execute(ELEMENTS_SQL, (room_id,)).fetchall()
        links: dict[str, list[Link]] = defaultdict(list)
        for source, target, label in cur.execute(CONNECTIONS_SQL, (room_id,)):
            links[source].append(Link(target, label))
        messages: dict[str, list[ChatLine]] = defaultdict(list)
        for element_id, role, content in cur.execute(MESSAGES_SQL, (room_id,)):
            messages[element_id].append(ChatLine(role, content))
    return str(room[0]), [
        _element(row, tuple(links.get(row[0], ())), tuple(messages.get(row[0], ()))) for row in elements
    ]


def _element(row: tuple[Any, ...], links: tuple[Link, ...], messages: tuple[ChatLine, ...]) -> CanvasElement:
    element_id, kind, x, y, width, height, data, image_path = row
    text, title = data.get("text"), data.get("title")
    text = text if isinstance(text, str) else ""
    if not text and image_path:
        text = str(image_path).rsplit("/", 1)[-1]
    return CanvasElement(
        id=element_id,
        kind=kind,
        x=x,
        y=y,
        w=width,
        h=height,
        text=text,
        title=title if isinstance(title, str) else "",
        connections=links,
        messages=messages,
    )


def render(fmt: str, title: str, elements: list[CanvasElement]) -> tuple[bytes, str, str]:
    if fmt not in FORMATS:
        raise PermanentError(f"format must be pdf or markdown, got {fmt!r}")
    ext, mime = FORMATS[fmt]
    body = render_pdf(title, elements) if fmt == "pdf" else render_markdown(title, elements).encode()
    return body, ext, mime


def export_room(
    database_url: str,
    storage: StorageAdapter,
    room_id: uuid.UUID,
    user_id: uuid.UUID,
    fmt: str,
    *,
    url_ttl_seconds: int,
) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise PermanentError(f"format must be pdf or markdown, got {fmt!r}")
    with psycopg.connect(
        database_url, application_name="backline-room-export", prepare_threshold=None
    ) as conn:
        title, elements = load_canvas(conn, room_id, user_id)
    body, ext, mime = render(fmt, title, elements)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = f"{user_id}/rooms/{room_id}/{stamp}.{ext}"
    storage.upload("exports", path, body, content_type=mime, upsert=True, caller=SERVICE)
    url = storage.signed_url("exports", path, url_ttl_seconds, caller=SERVICE)
    return {
        "bucket": "exports",
        "path": path,
        "url": url,
        "bytes": len(body),
        "elements": len(elements),
        "connections": sum(len(e.connections) for e in elements),
        "messages": sum(len(e.messages) for e in elements),
    }
