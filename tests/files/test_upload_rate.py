"""Upload rate (issue #13 item 1): at most plans.uploads_per_hour completed uploads per user per sliding hour.

Counted by the shared limiter (private.rate_limit_events, key upload:<uid>)
where the Storage API completes an upload (step 3, service_role, owner_id set);
the caller's permission test (step 1) only checks the window, so the 21st
upload is refused before its bytes are sent. Refusals are 42501, which the
Storage API returns to the client as a 403 with our message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.files.storage_api import StorageApiError, remove, upload
from tests.helpers import act_as

Conn = psycopg.Connection[Any]
WAV = "audio/wav"


def _counted(db: Conn, user: uuid.UUID) -> int:
    row = db.execute(
        "select count(*) from private.rate_limit_events where key = %s", (f"upload:{user}",)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _objects(db: Conn, user: uuid.UUID) -> int:
    row = db.execute("select count(*) from storage.objects where owner_id = %s", (str(user),)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_free_plan_allows_20_uploads_per_hour(db: Conn) -> None:
    assert db.execute("select uploads_per_hour from public.plans where id = 'free'").fetchone() == (20,)


@pytest.mark.parametrize("declared_length", [False, True], ids=["no-metadata-probe", "content-length-probe"])
def test_the_20th_upload_passes_and_the_21st_is_refused_with_the_message(
    db: Conn, make_user: Callable[..., uuid.UUID], declared_length: bool
) -> None:
    alice = make_user()
    for i in range(20):
        upload(db, alice, "samples", f"{alice}/loop-{i}.wav", 1000, WAV, declared_length=declared_length)
    assert _counted(db, alice) == 20 and _objects(db, alice) == 20

    with pytest.raises(StorageApiError) as err:
        upload(db, alice, "samples", f"{alice}/loop-20.wav", 1000, WAV, declared_length=declared_length)
    assert err.value.status == 403
    assert "upload rate limit exceeded: at most 20 uploads per hour on the free plan" in err.value.message
    assert "retry in" in err.value.message
    # Nothing stored, nothing counted, no bytes charged.
    assert _counted(db, alice) == 20 and _objects(db, alice) == 20
    used = db.execute("select storage_used from public.profiles where id = %s", (alice,)).fetchone()
    assert used == (20000,)


def test_overwrites_count_and_another_user_has_their_own_window(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    alice, bob = make_user(), make_user()
    db.execute("update public.plans set uploads_per_hour = 3 where id = 'free'")
    upload(db, alice, "images", f"{alice}/a.png", 100, "image/png")
    upload(db, alice, "images", f"{alice}/a.png", 200, "image/png", upsert=True)
    upload(db, alice, "images", f"{alice}/a.png", 300, "image/png", upsert=True)
    with pytest.raises(StorageApiError, match="at most 3 uploads per hour"):
        upload(db, alice, "images", f"{alice}/a.png", 400, "image/png", upsert=True)
    # Deleting a file does not give an upload back: the limit counts uploads, not files.
    assert remove(db, alice, "images", [f"{alice}/a.png"]) == [f"{alice}/a.png"]
    with pytest.raises(StorageApiError, match="upload rate limit exceeded"):
        upload(db, alice, "images", f"{alice}/b.png", 100, "image/png")
    upload(db, bob, "images", f"{bob}/b.png", 100, "image/png")
    assert _counted(db, bob) == 1


def test_the_number_is_a_plan_setting(db: Conn, make_user: Callable[..., uuid.UUID]) -> None:
    alice = make_user()
    db.execute("update public.profiles set plan = 'pro' where id = %s", (alice,))
    db.execute("update public.plans set uploads_per_hour = 2 where id = 'pro'")
    upload(db, alice, "samples", f"{alice}/1.wav", 10, WAV)
    upload(db, alice, "samples", f"{alice}/2.wav", 10, WAV)
    with pytest.raises(StorageApiError, match="at most 2 uploads per hour on the pro plan"):
        upload(db, alice, "samples", f"{alice}/3.wav", 10, WAV)
    db.execute("update public.plans set uploads_per_hour = 0 where id = 'pro'")
    with pytest.raises(StorageApiError, match="at most 0 uploads per hour"):
        upload(db, alice, "samples", f"{alice}/4.wav", 10, WAV)


def test_a_refused_privileged_step_raises_42501_and_the_probe_refuses_before_the_bytes(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    alice = make_user()
    db.execute("update public.plans set uploads_per_hour = 1 where id = 'free'")
    upload(db, alice, "samples", f"{alice}/1.wav", 10, WAV)
    # Step 1 (the caller's rolled-back permission test) is refused by the window check.
    with act_as(db, alice) as cur, pytest.raises(errors.InsufficientPrivilege, match="upload rate limit"):
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id) values ('samples', %s, %s)",
            (f"{alice}/2.wav", str(alice)),
        )
    # Step 3 itself (should a probe have passed before the window filled) raises 42501 too.
    with act_as(db, None, "service_role") as cur, pytest.raises(errors.InsufficientPrivilege) as err:
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata, version)"
            " values ('samples', %s, %s, '{\"size\": 10, \"mimetype\": \"audio/wav\"}', 'v')",
            (f"{alice}/2.wav", str(alice)),
        )
    assert err.value.diag.sqlstate == "42501"
    assert "Wait" in (err.value.diag.message_hint or "")


def test_worker_writes_without_an_owner_and_metadata_edits_are_not_uploads(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    alice = make_user()
    db.execute("update public.plans set uploads_per_hour = 1 where id = 'free'")
    upload(db, alice, "images", f"{alice}/a.png", 100, "image/png")
    with act_as(db, None, "service_role") as cur:
        for size in (150, 300):  # thumbnails, written by the workers without an owner
            cur.execute(
                "insert into storage.objects (bucket_id, name, owner_id, metadata, version)"
                " values ('images', %s, null, %s, 'v')",
                (f"{alice}/a.png.thumb{size}.webp", f'{{"size": {size}, "mimetype": "image/webp"}}'),
            )
        # The platform touching the row's metadata without a new version is no new upload.
        cur.execute(
            'update storage.objects set metadata = metadata || \'{"cacheControl": "no-cache"}\''
            " where bucket_id = 'images' and name = %s",
            (f"{alice}/a.png",),
        )
    assert _counted(db, alice) == 1


def test_an_anonymous_sketchpad_user_has_the_same_limit(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    guest = make_user(anonymous=True)
    db.execute("update public.plans set uploads_per_hour = 2 where id = 'free'")
    upload(db, guest, "samples", f"{guest}/1.wav", 10, WAV)
    upload(db, guest, "samples", f"{guest}/2.wav", 10, WAV)
    with pytest.raises(StorageApiError, match="at most 2 uploads per hour on the free plan") as err:
        upload(db, guest, "samples", f"{guest}/3.wav", 10, WAV)
    assert err.value.status == 403
