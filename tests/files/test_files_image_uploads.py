"""Image records: every completed upload to `images` is queued for thumbnails (private.image_uploads)."""

from __future__ import annotations

import pytest
from psycopg import errors

from tests.files.storage_api import remove, upload
from tests.helpers import act_as

PNG = "image/png"


def records(db):
    return db.execute(
        "select object_name, owner_id, mimetype, size, thumbnails_done_at is null"
        " from private.image_uploads order by object_name"
    ).fetchall()


def test_completed_upload_is_recorded(db, make_user):
    alice = make_user()
    uploaded = upload(db, alice, "images", f"{alice}/cat.png", 2048, PNG)
    assert records(db) == [(f"{alice}/cat.png", alice, PNG, 2048, True)]
    assert db.execute("select object_id from private.image_uploads").fetchone() == (uploaded.object_id,)


def test_permission_test_step_records_nothing(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur:
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id) values ('images', %s, %s)",
            (f"{alice}/cat.png", str(alice)),
        )
        cur.execute("reset role")
        assert cur.execute("select count(*) from private.image_uploads").fetchone() == (0,)


def test_permission_test_with_declared_length_records_nothing(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur:
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata) values ('images', %s, %s, %s)",
            (f"{alice}/cat.png", str(alice), '{"mimetype": "image/png", "contentLength": 10}'),
        )
        cur.execute("reset role")
        assert cur.execute("select count(*) from private.image_uploads").fetchone() == (0,)


def test_other_buckets_are_not_recorded(db, make_user):
    alice = make_user()
    upload(db, alice, "avatars", f"{alice}/me.png", 10, PNG)
    upload(db, alice, "samples", f"{alice}/a.wav", 10, "audio/wav")
    assert records(db) == []


def test_overwrite_queues_the_image_again(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/cat.png", 2048, PNG)
    db.execute("update private.image_uploads set thumbnails_done_at = now(), attempts = 1")
    upload(db, alice, "images", f"{alice}/cat.png", 4096, "image/webp", upsert=True)
    assert records(db) == [(f"{alice}/cat.png", alice, "image/webp", 4096, True)]
    assert db.execute("select attempts from private.image_uploads").fetchone() == (0,)


def test_delete_removes_the_record(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/cat.png", 2048, PNG)
    remove(db, alice, "images", [f"{alice}/cat.png"])
    assert records(db) == []


def test_room_images_are_recorded(db, room):
    upload(db, room.editor, "images", f"rooms/{room.id}/board.png", 100, PNG)
    assert records(db) == [(f"rooms/{room.id}/board.png", room.editor, PNG, 100, True)]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_users_cannot_see_the_queue(db, make_user, role):
    user = make_user() if role == "authenticated" else None
    with act_as(db, user, role) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select * from private.image_uploads")


def test_workers_read_and_mark_the_queue(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/cat.png", 2048, PNG)
    with act_as(db, None, "service_role") as cur:
        row = cur.execute(
            "select object_id from private.image_uploads where thumbnails_done_at is null"
            " order by uploaded_at limit 1 for update skip locked"
        ).fetchone()
        assert row is not None
        cur.execute("update private.image_uploads set thumbnails_done_at = now() where object_id = %s", row)
        assert cur.rowcount == 1
