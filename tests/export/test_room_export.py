"""Room export job end to end, against a stand-in of the rooms tables created in this test's database.

The rooms module is built elsewhere; the stand-in has the documented shape
(rooms.title, room_elements.body = {type, x, y, w, h, text, connections})
and membership RLS, so "a member can ask for one" is checked under RLS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import psycopg
import pytest

from tests.export.conftest import FakeJobContext
from tests.helpers import create_user
from workers.errors import BacklineError
from workers.export.jobs import run_room_export
from workers.platform.factory import Adapters
from workers.platform.storage import Caller

ROOMS = """
create table public.rooms (id uuid primary key, title text not null);
create table public.room_members (room_id uuid references public.rooms (id), user_id uuid);
create table public.room_elements (
  id uuid primary key default gen_random_uuid(), room_id uuid references public.rooms (id), body jsonb);
grant select on public.rooms, public.room_members, public.room_elements to authenticated;
alter table public.rooms enable row level security;
alter table public.room_elements enable row level security;
create policy "t: members read rooms" on public.rooms for select to authenticated
  using (id in (select room_id from public.room_members where user_id = (select auth.uid())));
create policy "t: members read elements" on public.room_elements for select to authenticated
  using (room_id in (select room_id from public.room_members where user_id = (select auth.uid())));
"""


@pytest.fixture
def room(rights_url: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    with psycopg.connect(rights_url) as conn:
        conn.execute(ROOMS)
        member, outsider = create_user(conn), create_user(conn)
        room_id = uuid.uuid4()
        conn.execute("insert into public.rooms values (%s, 'Planning')", (room_id,))
        conn.execute("insert into public.room_members values (%s, %s)", (room_id, member))
        a, b = uuid.uuid4(), uuid.uuid4()
        for eid, body in (
            (
                a,
                {"type": "note", "x": 0, "y": 0, "w": 100, "h": 60, "text": "Goals", "connections": [str(b)]},
            ),
            (b, {"type": "note", "x": 200, "y": 0, "w": 100, "h": 60, "text": "Risks"}),
        ):
            conn.execute(
                "insert into public.room_elements (id, room_id, body) values (%s, %s, %s)",
                (eid, room_id, json.dumps(body)),
            )
    return room_id, member, outsider


def test_a_member_gets_markdown_and_pdf_in_their_exports_folder(
    room, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    room_id, member, _ = room
    md = run_room_export(make_ctx(member), {"room_id": str(room_id), "format": "markdown"})
    assert (
        md is not None and md["path"].startswith(f"{member}/rooms/{room_id}/") and md["path"].endswith(".md")
    )
    text = b"".join(adapters.storage.download("exports", md["path"], caller=Caller.user(member))).decode()
    assert text.startswith("# Planning") and "- Goals → Risks" in text and md["elements"] == 2
    pdf = run_room_export(make_ctx(member), {"room_id": str(room_id)})
    assert pdf is not None and pdf["path"].endswith(".pdf")
    assert b"".join(adapters.storage.download("exports", pdf["path"])).startswith(b"%PDF-1.4")


def test_a_non_member_cannot_export_the_room(room, make_ctx: Callable[..., FakeJobContext]):
    room_id, _, outsider = room
    with pytest.raises(BacklineError, match="not a member"):
        run_room_export(make_ctx(outsider), {"room_id": str(room_id), "format": "pdf"})
    with pytest.raises(BacklineError, match="pdf or markdown"):
        run_room_export(make_ctx(outsider), {"room_id": str(room_id), "format": "docx"})


def test_without_the_rooms_module_the_job_fails_clearly(
    rights_url: str, make_ctx: Callable[..., FakeJobContext]
):
    with pytest.raises(BacklineError, match="needs the rooms module"):
        run_room_export(make_ctx(uuid.uuid4()), {"room_id": str(uuid.uuid4())})
