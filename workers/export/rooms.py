"""Room canvas export: load a room's elements as the requesting member (RLS decides), render, store.

Reads `public.rooms` and `public.room_elements` of the rooms module as JSON
rows (see canvas.element_from_row for the accepted shapes). Output goes to
`exports/<user id>/rooms/<room id>/<timestamp>.pdf|md`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from workers.db.impersonate import act_as
from workers.export.canvas import CanvasElement, element_from_row, render_markdown, render_pdf
from workers.export.context import PermanentError
from workers.platform.storage import SERVICE, StorageAdapter

FORMATS = {"pdf": ("pdf", "application/pdf"), "markdown": ("md", "text/markdown")}


def load_canvas(
    conn: psycopg.Connection[Any], room_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[str, list[CanvasElement]]:
    """The room title and elements as the member sees them; BacklineError when not visible."""
    row = conn.execute(
        "select to_regclass('public.rooms') is not null and to_regclass('public.room_elements') is not null"
    ).fetchone()
    conn.rollback()
    if not (row and row[0]):
        raise PermanentError("room export needs the rooms module (public.rooms, public.room_elements)")
    with act_as(conn, user_id) as cur:
        room = cur.execute("select to_jsonb(r) from public.rooms r where r.id = %s", (room_id,)).fetchone()
        if room is None:
            raise PermanentError(f"room {room_id} not found or you are not a member")
        rows = cur.execute(
            "select to_jsonb(e) from public.room_elements e where e.room_id = %s", (room_id,)
        ).fetchall()
    data = room[0]
    title = str(data.get("title") or data.get("name") or "Untitled room")
    return title, [element_from_row(r[0]) for r in rows]


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
    with psycopg.connect(database_url, application_name="backline-room-export") as conn:
        title, elements = load_canvas(conn, room_id, user_id)
    body, ext, mime = render(fmt, title, elements)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = f"{user_id}/rooms/{room_id}/{stamp}.{ext}"
    storage.upload("exports", path, body, content_type=mime, upsert=True, caller=SERVICE)
    url = storage.signed_url("exports", path, url_ttl_seconds, caller=SERVICE)
    return {"bucket": "exports", "path": path, "url": url, "bytes": len(body), "elements": len(elements)}
