"""Uploads are what they claim to be (issue #13 item 5), without a malware scanner configured.

The Storage API's completed upload records the upload pending in
public.upload_scans and queues an upload_scan job; the worker sniffs the real
type from the bytes and removes (or quarantines) a mismatch, recording why.
Without ClamAV an upload whose type is right is `not_scanned` and works as
before. test_upload_scans_clamav.py covers the scanner.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.export.test_through_worker import run_worker
from tests.files import storage_api
from tests.files.scan_fixtures import (
    AVIF,
    MP3,
    MP3_FRAME_ONLY,
    TEXT,
    ctx,
    image_bytes,
    scan_jobs,
    scan_row,
    scan_settings,
    wav_bytes,
)
from tests.helpers import act_as, create_user
from workers.files import sniff
from workers.files.scan import run_upload_scan
from workers.platform.factory import Adapters, make_adapters
from workers.platform.storage import SERVICE, Caller, StorageError
from workers.settings import Settings

Conn = psycopg.Connection[Any]


# == sniffing ==


@pytest.mark.parametrize(
    ("declared", "data", "detected"),
    [
        ("audio/wav", wav_bytes(), "audio/wav"),
        ("audio/x-wav", wav_bytes(), "audio/wav"),
        ("audio/mpeg", MP3, "audio/mpeg"),
        ("audio/mp3", MP3_FRAME_ONLY, "audio/mpeg"),
        ("image/png", image_bytes("PNG"), "image/png"),
        ("image/jpeg", image_bytes("JPEG"), "image/jpeg"),
        ("image/gif", image_bytes("GIF"), "image/gif"),
        ("image/webp", image_bytes("WEBP"), "image/webp"),
        ("image/avif", AVIF, "image/avif"),
    ],
)
def test_real_files_match_their_declared_type(declared: str, data: bytes, detected: str) -> None:
    assert sniff.mismatch(declared, data[: sniff.HEAD_BYTES]) == (detected, None)


@pytest.mark.parametrize(
    ("declared", "data", "reason"),
    [
        ("audio/wav", TEXT, "declared audio/wav but the bytes are text/plain"),
        ("audio/mpeg", wav_bytes(), "declared audio/mpeg but the bytes are audio/wav"),
        ("audio/mp3", image_bytes("PNG"), "declared audio/mpeg but the bytes are image/png"),
        ("image/png", image_bytes("JPEG"), "declared image/png but the bytes are image/jpeg"),
        ("image/webp", wav_bytes(), "declared image/webp but the bytes are audio/wav"),
        ("image/jpeg", b"%PDF-1.7\n%\xe2\xe3", "declared image/jpeg but the bytes are application/pdf"),
        ("image/gif", bytes([0x00, 0x01, 0x02, 0xFE, 0x80]) * 10, "no known file signature"),
        ("audio/wav", b"", "the file is empty"),
        # An AAC (ADTS) frame has MPEG sync bits but layer 00: not an MP3.
        ("audio/mpeg", b"\xff\xf1\x50\x80" + bytes(100), "declared audio/mpeg but the bytes are"),
    ],
)
def test_mislabelled_bytes_are_a_mismatch_naming_both_types(declared: str, data: bytes, reason: str) -> None:
    _detected, why = sniff.mismatch(declared, data)
    assert why is not None and reason in why and why.startswith("type mismatch: ")


def test_types_without_a_known_signature_are_not_judged() -> None:
    assert sniff.mismatch("application/json", b'{"a": 1}') == ("text/plain", None)
    assert not sniff.verifiable("text/markdown") and sniff.verifiable("AUDIO/MP3; charset=x")


# == through the storage transport and the worker ==


@pytest.fixture
def scan_url(clone_url: str) -> str:
    return clone_url


@pytest.fixture
def settings(scan_url: str, tmp_path: Path) -> Settings:
    return scan_settings(scan_url, tmp_path / "data")


@pytest.fixture
def adapters(settings: Settings) -> Iterator[Adapters]:
    a = make_adapters(settings)
    yield a
    a.close()


@pytest.fixture
def user(scan_url: str) -> uuid.UUID:
    with psycopg.connect(scan_url) as conn:
        return create_user(conn)


def _storage_used(url: str, user: uuid.UUID) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("select storage_used from public.profiles where id = %s", (user,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_mislabelled_upload_is_caught_and_removed_by_the_worker(
    scan_url: str, settings: Settings, adapters: Adapters, user: uuid.UUID
) -> None:
    name = f"{user}/fake.wav"
    adapters.storage.upload("samples", name, TEXT, content_type="audio/wav", caller=Caller.user(user))
    pending = scan_row(scan_url, name)
    assert pending is not None and pending["state"] == "pending" and pending["declared_type"] == "audio/wav"
    [job] = scan_jobs(scan_url, name)
    assert job["owner_id"] == user and job["payload"]["object_id"] == str(pending["object_id"])
    assert _storage_used(scan_url, user) == len(TEXT)

    run_worker(scan_url, settings.data_dir)

    [job] = scan_jobs(scan_url, name)
    assert job["status"] == "succeeded", job["last_error"]
    row = scan_row(scan_url, name)
    assert row is not None
    assert (row["state"], row["detected_type"], row["action"], row["checked"]) == (
        "rejected",
        "text/plain",
        "removed",
        True,
    )
    assert row["reason"] == "type mismatch: declared audio/wav but the bytes are text/plain"
    # Bytes and row gone together (through the transport); the quota gave the bytes back.
    with pytest.raises(StorageError, match="Object not found"):
        adapters.storage.download("samples", name, caller=Caller.user(user))
    assert not (settings.data_dir / "storage" / "samples" / name).exists()
    assert _storage_used(scan_url, user) == 0


def test_a_real_sample_without_clamav_is_marked_not_scanned_and_works_as_before(
    scan_url: str, settings: Settings, adapters: Adapters, user: uuid.UUID
) -> None:
    name = f"{user}/kick.wav"
    data = wav_bytes()
    adapters.storage.upload("samples", name, data, content_type="audio/wav", caller=Caller.user(user))
    # Pending: the owner reads the file as before (no opt-in on this bucket).
    assert b"".join(adapters.storage.download("samples", name, caller=Caller.user(user))) == data
    result = run_upload_scan(ctx(settings, scan_url, user), scan_jobs(scan_url, name)[0]["payload"])
    assert result == {"state": "not_scanned", "detected_type": "audio/wav"}
    row = scan_row(scan_url, name)
    assert row is not None and (row["state"], row["reason"], row["action"]) == ("not_scanned", None, None)
    assert b"".join(adapters.storage.download("samples", name, caller=Caller.user(user))) == data


def test_quarantine_keeps_the_bytes_for_operators_only(
    scan_url: str, settings: Settings, adapters: Adapters, user: uuid.UUID
) -> None:
    name = f"{user}/photo.png"
    adapters.storage.upload("images", name, TEXT, content_type="image/png", caller=Caller.user(user))
    quarantine = settings.model_copy(update={"upload_reject_action": "quarantine"})
    result = run_upload_scan(ctx(quarantine, scan_url, user), scan_jobs(scan_url, name)[0]["payload"])
    assert result is not None and result["state"] == "rejected" and result["action"] == "quarantined"
    row = scan_row(scan_url, name)
    assert row is not None and row["quarantine_path"] == f"quarantine/images/{name}"
    with pytest.raises(StorageError, match="Object not found"):
        adapters.storage.download("images", name, caller=Caller.user(user))
    # The service reads the quarantined copy; the uploader cannot.
    assert b"".join(adapters.storage.download("quarantine", f"images/{name}", caller=SERVICE)) == TEXT
    with pytest.raises(StorageError, match="Object not found"):
        adapters.storage.download("quarantine", f"images/{name}", caller=Caller.user(user))
    assert _storage_used(scan_url, user) == 0


def test_a_check_queued_for_replaced_bytes_is_skipped_and_the_new_bytes_decide(
    scan_url: str, settings: Settings, adapters: Adapters, user: uuid.UUID
) -> None:
    name = f"{user}/loop.mp3"
    me = Caller.user(user)
    adapters.storage.upload("samples", name, TEXT, content_type="audio/mpeg", caller=me)
    adapters.storage.upload("samples", name, MP3, content_type="audio/mpeg", caller=me, upsert=True)
    first, second = scan_jobs(scan_url, name)
    assert first["payload"]["version"] != second["payload"]["version"]
    assert run_upload_scan(ctx(settings, scan_url, user), first["payload"]) == {
        "skipped": "the upload was replaced or deleted since this check was queued"
    }
    assert run_upload_scan(ctx(settings, scan_url, user), second["payload"]) == {
        "state": "not_scanned",
        "detected_type": "audio/mpeg",
    }
    assert b"".join(adapters.storage.download("samples", name, caller=me)) == MP3


def test_deleting_an_upload_drops_its_pending_record_and_its_check(
    scan_url: str, settings: Settings, adapters: Adapters, user: uuid.UUID
) -> None:
    name = f"{user}/gone.wav"
    adapters.storage.upload("samples", name, wav_bytes(), content_type="audio/wav", caller=Caller.user(user))
    payload = scan_jobs(scan_url, name)[0]["payload"]
    assert adapters.storage.remove("samples", [name], caller=Caller.user(user)) == [name]
    assert scan_row(scan_url, name) is None
    assert "skipped" in (run_upload_scan(ctx(settings, scan_url, user), payload) or {})


def test_service_writes_and_client_probes_record_nothing(
    scan_url: str, adapters: Adapters, user: uuid.UUID
) -> None:
    thumb = f"{user}/a.png.thumb150.webp"
    adapters.storage.upload("images", thumb, image_bytes("WEBP"), content_type="image/webp")
    assert scan_row(scan_url, thumb) is None
    with psycopg.connect(scan_url) as conn, act_as(conn, user) as cur:
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata)"
            ' values (\'samples\', %s, %s, \'{"mimetype": "audio/wav", "contentLength": 10}\')',
            (f"{user}/probe.wav", str(user)),
        )
        cur.execute("reset role")
        assert cur.execute("select count(*) from public.upload_scans").fetchone() == (0,)
        assert cur.execute("select count(*) from public.jobs where kind = 'upload_scan'").fetchone() == (0,)


@pytest.mark.parametrize(
    "payload",
    [{}, {"bucket": "samples"}, {"bucket": "samples", "name": "x", "object_id": "nope"}],
)
def test_a_malformed_job_payload_fails_with_a_clear_message(
    scan_url: str, settings: Settings, payload: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="payload"):
        run_upload_scan(ctx(settings, scan_url), payload)


# == the record: who reads it, who writes it ==


def test_owners_read_their_upload_state_and_nobody_else_does(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    alice, bob = make_user(), make_user()
    storage_api.upload(db, alice, "samples", f"{alice}/a.wav", 100, "audio/wav")
    q = "select state, reason from public.upload_scans where object_name = %s"
    with act_as(db, alice) as cur:
        assert cur.execute(q, (f"{alice}/a.wav",)).fetchall() == [("pending", None)]
    with act_as(db, bob) as cur:
        assert cur.execute(q, (f"{alice}/a.wav",)).fetchall() == []
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(q, (f"{alice}/a.wav",))


@pytest.mark.parametrize(
    "statement",
    [
        "update public.upload_scans set state = 'clean', checked_at = now()",
        "delete from public.upload_scans",
        "insert into public.upload_scans (object_id, bucket_id, object_name, owner_id, state)"
        " values (gen_random_uuid(), 'samples', 'x', auth.uid(), 'clean')",
    ],
)
def test_clients_cannot_write_their_upload_state(
    db: Conn, make_user: Callable[..., uuid.UUID], statement: str
) -> None:
    alice = make_user()
    storage_api.upload(db, alice, "samples", f"{alice}/a.wav", 100, "audio/wav")
    with act_as(db, alice) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(statement)
    assert db.execute("select state from public.upload_scans").fetchall() == [("pending",)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, "v", "clean", None, None, None), "needs the object id"),
        (("{id}", "{v}", "pending", None, None, None), "must be clean, rejected or not_scanned"),
        (("{id}", "{v}", "rejected", "text/plain", None, "removed"), "needs a reason and an action"),
        (("{id}", "{v}", "clean", "audio/wav", "why", None), "needs a reason and an action"),
        (("{id}", "{v}", "rejected", None, "why", "burned"), "must be removed or quarantined"),
    ],
)
def test_recording_a_verdict_rejects_bad_input_and_changes_nothing(
    db: Conn, make_user: Callable[..., uuid.UUID], args: tuple[Any, ...], message: str
) -> None:
    alice = make_user()
    up = storage_api.upload(db, alice, "samples", f"{alice}/a.wav", 100, "audio/wav")
    version = db.execute("select version from storage.objects where id = %s", (up.object_id,)).fetchone()
    assert version is not None
    values = [str(up.object_id) if a == "{id}" else version[0] if a == "{v}" else a for a in args]
    with pytest.raises(errors.InvalidParameterValue, match=message):
        db.execute("select private.upload_scan_record(%s, %s, %s, %s, %s, %s)", values)
    db.rollback()


def test_recording_a_verdict_is_for_the_service_only(db: Conn, make_user: Callable[..., uuid.UUID]) -> None:
    alice = make_user()
    up = storage_api.upload(db, alice, "samples", f"{alice}/a.wav", 100, "audio/wav")
    with act_as(db, alice) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select private.upload_scan_record(%s, null, 'clean', null)", (up.object_id,))
    with act_as(db, None, "service_role") as cur:
        version = cur.execute("select version from storage.objects where id = %s", (up.object_id,)).fetchone()
        assert version is not None
        assert cur.execute(
            "select private.upload_scan_record(%s, %s, 'clean', 'audio/wav')", (up.object_id, version[0])
        ).fetchone() == (True,)
        # A stale version changes nothing.
        assert cur.execute(
            "select private.upload_scan_record(%s, 'old', 'not_scanned', 'audio/wav')", (up.object_id,)
        ).fetchone() == (False,)


# == buckets served to others only once checked (opt-in) ==


def _readable(db: Conn, who: uuid.UUID | None, bucket: str, name: str) -> bool:
    try:
        storage_api.download(db, who, bucket, name)
    except storage_api.StorageApiError:
        return False
    return True


def test_an_opted_in_bucket_serves_a_file_to_others_only_once_checked(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    alice, bob = make_user(), make_user()
    db.execute("select private.set_bucket_served_when_clean('avatars', true)")
    assert db.execute("select public from storage.buckets where id = 'avatars'").fetchone() == (False,)
    up = storage_api.upload(db, alice, "avatars", f"{alice}/me.png", 100, "image/png")
    name = f"{alice}/me.png"
    assert _readable(db, alice, "avatars", name)  # the uploader always
    assert not _readable(db, bob, "avatars", name) and not _readable(db, None, "avatars", name)

    db.execute(
        "select private.upload_scan_record(id, version, 'clean', 'image/png')"
        " from storage.objects where id = %s",
        (up.object_id,),
    )
    assert _readable(db, bob, "avatars", name) and _readable(db, None, "avatars", name)

    # A new version is held again until checked.
    storage_api.upload(db, alice, "avatars", name, 120, "image/png", upsert=True)
    assert not _readable(db, bob, "avatars", name) and not _readable(db, None, "avatars", name)
    db.execute(
        "select private.upload_scan_record(id, version, 'not_scanned', 'image/png') from storage.objects"
        " where id = %s",
        (up.object_id,),
    )
    assert _readable(db, None, "avatars", name)

    # Opting out restores the bucket's public flag; others read through the public URL again, not RLS.
    db.execute("select private.set_bucket_served_when_clean('avatars', false)")
    assert db.execute("select public from storage.buckets where id = 'avatars'").fetchone() == (True,)
    assert not _readable(db, bob, "avatars", name)


def test_buckets_not_opted_in_are_not_opened_by_a_clean_check(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    alice, bob = make_user(), make_user()
    up = storage_api.upload(db, alice, "samples", f"{alice}/a.wav", 100, "audio/wav")
    db.execute(
        "select private.upload_scan_record(id, version, 'clean', 'audio/wav')"
        " from storage.objects where id = %s",
        (up.object_id,),
    )
    assert _readable(db, alice, "samples", f"{alice}/a.wav")
    assert not _readable(db, bob, "samples", f"{alice}/a.wav")


@pytest.mark.parametrize(
    ("args", "message"),
    [(("nope", True), "no such bucket: nope"), (("avatars", None), "needs true or false")],
)
def test_opting_in_rejects_bad_input(db: Conn, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(errors.InvalidParameterValue, match=message):
        db.execute("select private.set_bucket_served_when_clean(%s, %s)", args)
    db.rollback()
    assert db.execute("select count(*) from private.buckets_served_when_clean").fetchone() == (0,)


def test_opting_in_is_for_operators_only(db: Conn, make_user: Callable[..., uuid.UUID]) -> None:
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select private.set_bucket_served_when_clean('avatars', true)")


def test_derived_files_are_held_with_their_original(db: Conn, make_user: Callable[..., uuid.UUID]) -> None:
    alice, bob = make_user(), make_user()
    db.execute("select private.set_bucket_served_when_clean('images', true)")
    up = storage_api.upload(db, alice, "images", f"{alice}/item.jpg", 100, "image/jpeg")
    derived = [f"{alice}/item.jpg.thumb150.webp", f"{alice}/item.jpg.full.webp"]
    for name in derived:  # what the thumbnail worker writes (no owner)
        db.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata, version)"
            " values ('images', %s, null, '{\"size\": 10, \"mimetype\": \"image/webp\"}', 'v')",
            (name,),
        )
    assert not any(_readable(db, bob, "images", n) or _readable(db, None, "images", n) for n in derived)
    db.execute(
        "select private.upload_scan_record(id, version, 'clean', 'image/jpeg')"
        " from storage.objects where id = %s",
        (up.object_id,),
    )
    assert all(_readable(db, bob, "images", n) and _readable(db, None, "images", n) for n in derived)
