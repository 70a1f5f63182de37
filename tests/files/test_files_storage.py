"""Buckets and storage policies, exercised through the Storage API's steps (tests/files/storage_api.py)."""

from __future__ import annotations

import pytest
from psycopg import errors

from tests.files.storage_api import StorageApiError, download, list_names, remove, upload
from tests.helpers import act_as
from tests.rooms.conftest import Room

PNG = "image/png"


def test_buckets_and_limits(db):
    rows = {
        r[0]: r[1:]
        for r in db.execute(
            "select id, public, file_size_limit, allowed_mime_types from storage.buckets"
            " where id in ('avatars', 'samples', 'images', 'exports')"
        )
    }
    assert rows["avatars"][:2] == (True, 1024 * 1024) and "image/png" in rows["avatars"][2]
    assert rows["samples"] == (False, 5 * 1024 * 1024, ["audio/wav", "audio/mpeg", "audio/mp3"])
    assert rows["images"][:2] == (False, 10 * 1024 * 1024) and "image/webp" in rows["images"][2]
    assert rows["exports"][0] is False
    assert rows["exports"][1] is None and "text/markdown" in rows["exports"][2]  # room exports as Markdown


@pytest.mark.parametrize(
    "bucket,mimetype", [("avatars", PNG), ("samples", "audio/wav"), ("images", "image/jpeg")]
)
def test_user_uploads_reads_and_deletes_in_own_folder(db, make_user, bucket, mimetype):
    alice = make_user()
    name = f"{alice}/file"
    upload(db, alice, bucket, name, 1000, mimetype)
    assert download(db, alice, bucket, name)
    assert list_names(db, alice, bucket, f"{alice}/") == [name]
    assert remove(db, alice, bucket, [name]) == [name]
    assert db.execute(
        "select count(*) from storage.objects where bucket_id = %s and name = %s", (bucket, name)
    ).fetchone() == (0,)


@pytest.mark.parametrize("bucket", ["avatars", "samples", "images"])
def test_foreign_folder_refused(db, make_user, bucket):
    alice, mallory = make_user(), make_user()
    with pytest.raises(StorageApiError) as err:
        upload(db, mallory, bucket, f"{alice}/evil", 10, "image/png" if bucket != "samples" else "audio/wav")
    assert err.value.status == 403
    assert db.execute(
        "select count(*) from storage.objects where name like %s", (f"{alice}/%",)
    ).fetchone() == (0,)


@pytest.mark.parametrize("name", ["loose.png", "rooms/not-a-room/x.png", "../x.png"])
def test_uploads_outside_a_user_folder_refused(db, make_user, name):
    alice = make_user()
    with pytest.raises(StorageApiError) as err:
        upload(db, alice, "images", name, 10, PNG)
    assert err.value.status == 403


def test_nobody_lists_or_reads_other_users_folders(db, make_user):
    alice, bob = make_user(), make_user()
    for bucket, mime in (("avatars", PNG), ("samples", "audio/mpeg"), ("images", PNG)):
        upload(db, alice, bucket, f"{alice}/a", 10, mime)
        assert list_names(db, bob, bucket, "") == []
        with pytest.raises(StorageApiError):
            download(db, bob, bucket, f"{alice}/a")
        assert list_names(db, None, bucket, "") == []


def test_stranger_cannot_delete_or_overwrite(db, make_user):
    alice, bob = make_user(), make_user()
    upload(db, alice, "images", f"{alice}/a.png", 10, PNG)
    assert remove(db, bob, "images", [f"{alice}/a.png"]) == []
    with pytest.raises(StorageApiError) as err:
        upload(db, bob, "images", f"{alice}/a.png", 10, PNG, upsert=True)
    assert err.value.status == 403
    assert db.execute(
        "select owner_id from storage.objects where name = %s", (f"{alice}/a.png",)
    ).fetchone() == (str(alice),)


def test_anon_cannot_upload(db, make_user):
    alice = make_user()
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into storage.objects (bucket_id, name) values ('avatars', %s)", (f"{alice}/a",))


def test_existing_path_without_upsert_is_a_conflict(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 10, PNG)
    with pytest.raises(StorageApiError) as err:
        upload(db, alice, "images", f"{alice}/a.png", 10, PNG)
    assert err.value.status == 409


@pytest.mark.parametrize(
    "bucket,size,mime,status",
    [
        ("avatars", 1024 * 1024 + 1, PNG, 413),
        ("samples", 5 * 1024 * 1024 + 1, "audio/wav", 413),
        ("images", 10 * 1024 * 1024 + 1, PNG, 413),
        ("samples", 100, "audio/ogg", 415),
        ("avatars", 100, "image/svg+xml", 415),
        ("images", 100, "application/pdf", 415),
    ],
)
def test_bucket_limits_checked_like_the_api(db, make_user, bucket, size, mime, status):
    alice = make_user()
    with pytest.raises(StorageApiError) as err:
        upload(db, alice, bucket, f"{alice}/f", size, mime)
    assert err.value.status == status
    assert db.execute("select count(*) from storage.objects where name = %s", (f"{alice}/f",)).fetchone() == (
        0,
    )


def test_exports_are_written_by_workers_read_and_deleted_by_their_user(db, make_user):
    """Only workers write exports; the user reads and may delete their own (their data, their choice)."""
    alice, bob = make_user(), make_user()
    name = f"{alice}/export.zip"
    # No user uploads into exports: not into their own folder, not into someone else's.
    for uploader, path in ((alice, name), (bob, name), (bob, f"{bob}/export.zip")):
        with pytest.raises(StorageApiError) as err:
            upload(db, uploader, "exports", path, 10, "application/zip")
        assert err.value.status == 403
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into storage.objects (bucket_id, name) values ('exports', %s)", (name,))
    assert db.execute("select count(*) from storage.objects where bucket_id = 'exports'").fetchone() == (0,)
    # The worker (service role) writes.
    with act_as(db, None, "service_role", rollback=False) as cur:
        cur.execute(
            "insert into storage.objects (bucket_id, name, metadata) values ('exports', %s, '{\"size\": 5}')",
            (name,),
        )
    assert download(db, alice, "exports", name)
    assert list_names(db, alice, "exports", f"{alice}/") == [name]
    # Another user (or anon) can neither read, list nor delete it.
    for reader in (bob, None):
        with pytest.raises(StorageApiError) as err:
            download(db, reader, "exports", name)
        assert err.value.status == 404
    assert list_names(db, bob, "exports", f"{alice}/") == []
    assert remove(db, bob, "exports", [name]) == []
    assert db.execute("select count(*) from storage.objects where name = %s", (name,)).fetchone() == (1,)
    # The owner deletes their own export.
    assert remove(db, alice, "exports", [name]) == [name]
    assert db.execute("select count(*) from storage.objects where name = %s", (name,)).fetchone() == (0,)


# -- room images -------------------------------------------------------------


@pytest.mark.parametrize(
    "persona,can_upload",
    [
        ("owner", True),
        ("editor", True),
        ("viewer", False),
        ("stranger", False),
    ],
)
def test_room_image_upload(db, room: Room, persona, can_upload):
    name = f"rooms/{room.id}/{persona}.png"
    if can_upload:
        upload(db, room.who(persona), "images", name, 100, PNG)
        assert db.execute("select owner_id from storage.objects where name = %s", (name,)).fetchone() == (
            str(room.who(persona)),
        )
    else:
        with pytest.raises(StorageApiError) as err:
            upload(db, room.who(persona), "images", name, 100, PNG)
        assert err.value.status == 403


@pytest.mark.parametrize(
    "persona,can_read",
    [
        ("owner", True),
        ("editor", True),
        ("viewer", True),
        ("stranger", False),
        ("anon", False),
    ],
)
def test_room_image_read_by_members_only(db, room: Room, persona, can_read):
    name = f"rooms/{room.id}/shared.png"
    upload(db, room.editor, "images", name, 100, PNG)
    user = room.who(persona)
    if can_read:
        assert download(db, user, "images", name)
        assert list_names(db, user, "images", f"rooms/{room.id}/") == [name]
    else:
        with pytest.raises(StorageApiError):
            download(db, user, "images", name)
        assert list_names(db, user, "images", "rooms/") == []


def test_room_image_deleted_only_by_its_uploader(db, room: Room):
    name = f"rooms/{room.id}/shared.png"
    upload(db, room.editor, "images", name, 100, PNG)
    assert remove(db, room.owner, "images", [name]) == []
    assert remove(db, room.viewer, "images", [name]) == []
    assert remove(db, room.editor, "images", [name]) == [name]


def test_service_role_reads_everything(db, make_user):
    alice = make_user()
    upload(db, alice, "samples", f"{alice}/a.wav", 10, "audio/wav")
    with act_as(db, None, "service_role") as cur:
        assert cur.execute(
            "select count(*) from storage.objects where name = %s", (f"{alice}/a.wav",)
        ).fetchone() == (1,)


def test_direct_delete_without_the_api_flag_is_refused(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 10, PNG)
    with act_as(db, alice) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("delete from storage.objects where name = %s", (f"{alice}/a.png",))


def test_room_image_overwritten_only_by_its_uploader(db, room: Room):
    name = f"rooms/{room.id}/shared.png"
    upload(db, room.editor, "images", name, 100, PNG)
    with pytest.raises(StorageApiError) as err:
        upload(db, room.owner, "images", name, 200, PNG, upsert=True)
    assert err.value.status == 403
    upload(db, room.editor, "images", name, 300, PNG, upsert=True)
    assert db.execute(
        "select owner_id, metadata->>'size' from storage.objects where bucket_id = 'images' and name = %s",
        (name,),
    ).fetchone() == (str(room.editor), "300")


@pytest.mark.parametrize("name", ["rooms/{room}", "rooms/{room}/", "rooms/ROOM/x.png", "rooms//x.png"])
def test_malformed_room_paths_refused(db, room: Room, name):
    with pytest.raises(StorageApiError) as err:
        upload(db, room.owner, "images", name.format(room=room.id).replace("ROOM", "nope"), 10, PNG)
    assert err.value.status == 403
