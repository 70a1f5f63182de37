"""Image records (rooms/files module) and thumbnail jobs (workers module) work as one pipeline."""

from __future__ import annotations

import psycopg

from tests.export.test_through_worker import jobs, run_worker
from tests.export.test_thumbnails import image_bytes
from tests.helpers import create_user
from tests.rooms.conftest import create_room
from workers.platform.factory import Adapters
from workers.platform.storage import Caller
from workers.settings import Settings


def _records(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select object_name, thumbnails_done_at is not null from private.image_uploads"
        ).fetchall()
    return {str(name): bool(done) for name, done in rows}


def test_thumbnails_mark_the_image_record_done_and_are_not_records(
    rights_url: str, settings: Settings, adapters: Adapters
):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
        conn.commit()
    name = f"{uid}/photo.png"
    adapters.storage.upload(
        "images", name, image_bytes("PNG", (400, 300)), content_type="image/png", caller=Caller.user(uid)
    )
    assert _records(rights_url) == {name: False}

    run_worker(rights_url, settings.data_dir)

    [(status, result, error)] = jobs(rights_url, "thumbnail")
    assert status == "succeeded", error
    # The re-encoded original is derived like the thumbnails: no record, no thumbnail job of its own.
    assert result["full_webp"] == f"{name}.full.webp"
    assert _records(rights_url) == {name: True}
    with psycopg.connect(rights_url) as conn:
        rows = conn.execute(
            "select name from storage.objects where bucket_id = 'images' order by name"
        ).fetchall()
    derived = [f"{name}.full.webp", f"{name}.thumb150.webp", f"{name}.thumb300.webp"]
    assert [r[0] for r in rows] == [name, *derived]


def test_a_members_room_image_gets_thumbnails(rights_url: str, settings: Settings, adapters: Adapters):
    with psycopg.connect(rights_url) as conn:
        owner = create_user(conn)
        room = create_room(conn, owner)
        conn.commit()
    name = f"rooms/{room}/board.png"
    adapters.storage.upload(
        "images", name, image_bytes("PNG", (640, 480)), content_type="image/png", caller=Caller.user(owner)
    )

    run_worker(rights_url, settings.data_dir)

    [(status, result, error)] = jobs(rights_url, "thumbnail")
    assert status == "succeeded", error
    assert result["thumbnails"] == [f"{name}.thumb150.webp", f"{name}.thumb300.webp"]
    assert _records(rights_url) == {name: True}


def test_a_user_cannot_thumbnail_someone_elses_image(rights_url: str, settings: Settings, adapters: Adapters):
    with psycopg.connect(rights_url) as conn:
        alice, mallory = create_user(conn), create_user(conn)
        conn.commit()
    adapters.storage.upload(
        "images",
        f"{alice}/secret.png",
        image_bytes("PNG", (200, 200)),
        content_type="image/png",
        caller=Caller.user(alice),
    )
    with psycopg.connect(rights_url) as conn:
        conn.execute("delete from public.jobs")
        conn.execute(
            "select private.job_enqueue('thumbnail', %s::jsonb, %s)",
            (f'{{"bucket": "images", "name": "{alice}/secret.png"}}', mallory),
        )
    run_worker(rights_url, settings.data_dir)
    [(status, _result, error)] = jobs(rights_url, "thumbnail")
    assert status == "failed" and "only read images the user uploaded" in (error or "")
