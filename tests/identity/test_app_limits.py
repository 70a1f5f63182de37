"""The apps' specified limits (#13 item 1), as the affected user via act_as.

Sketchpad free tier (the defaults): 1,000 loops, 100 songs, 100 MB of samples. The collection
tracker's 1 GB per user is one documented call away: private.apply_limit_profile. Each limit:
allowed at the limit, refused one past it with the message.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.files.storage_api import StorageApiError, storage_used, upload
from tests.helpers import act_as, keep_as
from tests.library.bodies import sketchpad_loop, sketchpad_song

MB = 1024 * 1024
GB = 1024 * MB
FILL = "insert into public.documents (kind, body) select %s, %s::jsonb from generate_series(1, %s)"
ONE = "insert into public.documents (kind, body) values (%s, %s::jsonb)"


def live(db: psycopg.Connection[Any], user: uuid.UUID, kind: str) -> int:
    q = "select count(*) from public.documents where owner_id = %s and kind = %s and deleted_at is null"
    return int(db.execute(q, (user, kind)).fetchone()[0])


@pytest.mark.parametrize(("kind", "limit"), [("loop", 1000), ("song", 100)])
def test_free_sketchpad_user_keeps_exactly_the_specified_number(db, make_user, kind, limit):
    alice = make_user()
    body = json.dumps(sketchpad_loop() if kind == "loop" else sketchpad_song([str(uuid.uuid4())]))
    with keep_as(db, alice) as cur:
        cur.execute(FILL, (kind, body, limit))
    assert live(db, alice, kind) == limit
    with act_as(db, alice) as cur, pytest.raises(psycopg.Error) as err:
        cur.execute(ONE, (kind, body))
    assert err.value.sqlstate == "PT403"
    assert err.value.diag.message_primary == (
        f"plan limit reached: at most {limit} documents of kind {kind} (you would have {limit + 1})"
    )
    assert live(db, alice, kind) == limit


def test_the_limits_are_rows_an_operator_reads(db):
    rows = db.execute(
        "select kind, max_documents from public.document_kind_limits where plan = 'free' order by kind"
    ).fetchall()
    assert rows == [("loop", 1000), ("song", 100)]
    assert db.execute("select storage_bytes from public.plans where id = 'free'").fetchone() == (100 * MB,)


def test_free_sketchpad_user_stores_100_mb_of_samples_and_not_a_byte_more(db, make_user):
    alice = make_user()
    db.execute("update public.profiles set storage_used = %s where id = %s", (100 * MB - 1000, alice))
    upload(db, alice, "samples", f"{alice}/kick.wav", 1000, "audio/wav")
    assert storage_used(db, alice) == 100 * MB
    with pytest.raises(StorageApiError) as err:
        upload(db, alice, "samples", f"{alice}/snare.wav", 1, "audio/wav")
    assert err.value.status == 403 and "storage quota exceeded" in err.value.message
    assert storage_used(db, alice) == 100 * MB


def test_the_collection_tracker_profile_gives_1_gb(db, make_user):
    bob = make_user()
    # The service role may apply it (rolled back here); the operator applies it as the database owner.
    with act_as(db, None, "service_role") as cur:
        cur.execute("select private.apply_limit_profile('collection_tracker')")
        assert cur.fetchone()[0] == {"profile": "collection_tracker", "plan": "free", "storage_bytes": GB}
    db.execute("select private.apply_limit_profile('collection_tracker')")
    db.execute("update public.profiles set storage_used = %s where id = %s", (GB - 4000, bob))
    upload(db, bob, "images", f"{bob}/guitar.png", 4000, "image/png")
    assert storage_used(db, bob) == GB
    with pytest.raises(StorageApiError) as err:
        upload(db, bob, "images", f"{bob}/amp.png", 1, "image/png")
    assert err.value.status == 403 and "storage quota exceeded" in err.value.message
    # And back to the sketchpad's default.
    db.execute("select private.apply_limit_profile('sketchpad')")
    assert db.execute("select storage_bytes from public.plans where id = 'free'").fetchone() == (100 * MB,)


def test_an_unknown_profile_is_refused_and_changes_nothing(db):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err, db.transaction():
        db.execute("select private.apply_limit_profile('enterprise')")
    assert "unknown limit profile: enterprise" in str(err.value)
    assert err.value.diag.message_hint.startswith("Use sketchpad")
    assert db.execute("select storage_bytes from public.plans where id = 'free'").fetchone() == (100 * MB,)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_users_cannot_switch_profiles(db, make_user, role):
    with act_as(db, make_user(), role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select private.apply_limit_profile('collection_tracker')")
