"""storage.objects rows belong to their uploader, and only the Storage API moves the quota (issue #12).

A client writing storage.objects directly (anon/authenticated, as PostgREST or the Storage
API's permission test does) may not name another owner, change a row's owner, or set
metadata.size; an update it makes never lowers the quota count. The Storage API's own flow
(tests/files/storage_api.py: caller's probe, then the service_role upsert) works unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.files.storage_api import StorageApiError, remove, storage_used, upload
from tests.helpers import act_as, keep_as
from tests.rooms.conftest import Room

MB = 1024 * 1024
FREE_QUOTA = 100 * MB
PNG = "image/png"
INSERT = (
    "insert into storage.objects (bucket_id, name, owner_id, owner, metadata, version)"
    " values (%s, %s, %s, %s, %s, '1')"
)


def _probe_metadata(length: int) -> str:
    """What the current Storage API's permission test writes: no size, the declared length."""
    return json.dumps({"mimetype": PNG, "contentLength": length})


def _row(db: psycopg.Connection[Any], bucket: str, name: str) -> tuple[Any, ...] | None:
    return db.execute(
        "select owner_id, owner, metadata from storage.objects where bucket_id = %s and name = %s",
        (bucket, name),
    ).fetchone()


# -- inserting: the owner is the caller ---------------------------------------------------


@pytest.mark.parametrize("folder", ["own", "victim"])
def test_insert_owned_by_another_user_is_refused_and_charges_nobody(db, make_user, folder):
    alice, mallory = make_user(), make_user()
    name = f"{mallory if folder == 'own' else alice}/charge-alice.png"
    with pytest.raises(errors.InsufficientPrivilege) as err, keep_as(db, mallory) as cur:
        cur.execute(INSERT, ("images", name, str(alice), None, _probe_metadata(5 * MB)))
    assert "owner_id must be your own user id" in err.value.diag.message_primary
    assert err.value.diag.message_hint and "Storage API" in err.value.diag.message_hint
    assert (storage_used(db, alice), storage_used(db, mallory)) == (0, 0)
    assert _row(db, "images", name) is None


def test_editor_cannot_upload_to_a_room_in_the_owners_name(db, room: Room):
    name = f"rooms/{room.id}/blame-the-owner.png"
    with pytest.raises(errors.InsufficientPrivilege), keep_as(db, room.editor) as cur:
        cur.execute(INSERT, ("images", name, str(room.owner), None, _probe_metadata(3 * MB)))
    assert storage_used(db, room.owner) == 0
    assert _row(db, "images", name) is None


def test_insert_naming_another_user_in_the_legacy_owner_column_is_refused(db, make_user):
    alice, mallory = make_user(), make_user()
    with pytest.raises(errors.InsufficientPrivilege) as err, keep_as(db, mallory) as cur:
        cur.execute(INSERT, ("images", f"{mallory}/x.png", str(mallory), alice, None))
    assert "owner must be your own user id" in err.value.diag.message_primary


def test_insert_without_an_owner_is_refused(db, make_user):
    mallory = make_user()
    with pytest.raises(errors.InsufficientPrivilege), keep_as(db, mallory) as cur:
        cur.execute(INSERT, ("images", f"{mallory}/x.png", None, None, None))


def test_insert_claiming_a_size_is_refused(db, make_user):
    """Only the Storage API's privileged step, after storing the bytes, writes metadata.size."""
    alice = make_user()
    with pytest.raises(errors.InsufficientPrivilege) as err, keep_as(db, alice) as cur:
        cur.execute(INSERT, ("images", f"{alice}/x.png", str(alice), None, '{"size": 0}'))
    assert "metadata.size is set by the Storage API" in err.value.diag.message_primary


def test_the_storage_api_probe_with_the_callers_own_ids_passes(db, make_user):
    """Step 1 exactly as the real Storage API sends it: owner_id and owner = the JWT sub."""
    alice = make_user()
    with act_as(db, alice) as cur:
        cur.execute(INSERT, ("images", f"{alice}/ok.png", str(alice), alice, _probe_metadata(1000)))
        assert cur.rowcount == 1


# -- updating: owner and size stay what the Storage API wrote ------------------------------


@pytest.mark.parametrize("column", ["owner_id", "owner"])
def test_giving_away_own_object_is_refused_and_usage_unchanged(db, make_user, column):
    alice, bob = make_user(), make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    value: Any = str(bob) if column == "owner_id" else bob
    with pytest.raises(errors.InsufficientPrivilege) as err, keep_as(db, alice) as cur:
        cur.execute(f"update storage.objects set {column} = %s where name = %s", (value, f"{alice}/a.png"))
    assert "must be your own user id" in err.value.diag.message_primary
    assert (storage_used(db, alice), storage_used(db, bob)) == (4000, 0)
    row = _row(db, "images", f"{alice}/a.png")
    assert row is not None and row[0] == str(alice)


@pytest.mark.parametrize("size", [0, 1, 3999, 4001, 50 * MB])
def test_rewriting_own_metadata_size_is_refused_and_usage_unchanged(db, make_user, size):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    with pytest.raises(errors.InsufficientPrivilege) as err, keep_as(db, alice) as cur:
        cur.execute(
            "update storage.objects set metadata = jsonb_set(metadata, '{size}', to_jsonb(%s::bigint))"
            " where name = %s",
            (size, f"{alice}/a.png"),
        )
    assert "metadata.size is set by the Storage API" in err.value.diag.message_primary
    assert storage_used(db, alice) == 4000
    row = _row(db, "images", f"{alice}/a.png")
    assert row is not None and row[2]["size"] == 4000


@pytest.mark.parametrize(
    "metadata",
    [None, "{}", _probe_metadata(0)],
    ids=["null", "empty", "probe-shape"],
)
def test_dropping_the_size_from_own_metadata_does_not_lower_usage(db, make_user, metadata):
    """The overwrite probe replaces {size, ...} by {mimetype, contentLength}, so this cannot be
    refused; committed (direct SQL) it must not hide the bytes that are still stored."""
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    with keep_as(db, alice) as cur:
        cur.execute("update storage.objects set metadata = %s where name = %s", (metadata, f"{alice}/a.png"))
        assert cur.rowcount == 1
    assert storage_used(db, alice) == 4000


def test_a_size_a_client_claims_is_charged_before_a_delete_can_give_it_back(db, make_user):
    """Otherwise: claim 9000 bytes for a 4000-byte file, delete it, and usage drops below the truth."""
    alice = make_user()
    a, b = f"{alice}/a.png", f"{alice}/b.png"
    upload(db, alice, "images", a, 4000, PNG)
    upload(db, alice, "images", b, 2000, PNG)
    with keep_as(db, alice) as cur:
        cur.execute("update storage.objects set metadata = %s where name = %s", (_probe_metadata(9000), a))
    assert storage_used(db, alice) == 6000 + 5000
    assert remove(db, alice, "images", [a]) == [a]
    assert storage_used(db, alice) == 2000


def test_a_client_update_that_grows_is_counted_and_refused_past_the_plan(db, make_user):
    """The overwrite probe of a bigger file is still refused before its bytes are sent."""
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    db.execute("update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA - 100, alice))
    with pytest.raises(errors.InsufficientPrivilege) as err, act_as(db, alice) as cur:
        cur.execute(
            "update storage.objects set metadata = %s, version = '1' where name = %s",
            (_probe_metadata(4101), f"{alice}/a.png"),
        )
    assert "storage quota exceeded" in err.value.diag.message_primary
    with pytest.raises(StorageApiError) as api_err:
        upload(db, alice, "images", f"{alice}/a.png", 4101, PNG, upsert=True, declared_length=True)
    assert api_err.value.status == 403
    assert storage_used(db, alice) == FREE_QUOTA - 100


# -- strangers ----------------------------------------------------------------------------


def test_a_stranger_cannot_charge_or_refund_another_users_bytes(db, make_user):
    alice, mallory = make_user(), make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    name = f"{alice}/a.png"
    with keep_as(db, mallory) as cur:  # RLS hides the row: nothing to update
        cur.execute(
            "update storage.objects set metadata = '{}', owner_id = %s where name = %s", (str(mallory), name)
        )
        assert cur.rowcount == 0
    with pytest.raises(errors.InsufficientPrivilege), keep_as(db, mallory) as cur:
        cur.execute(
            INSERT + " on conflict (bucket_id, name) do update set metadata = excluded.metadata",
            ("images", name, str(mallory), None, _probe_metadata(0)),
        )
    with pytest.raises(errors.InsufficientPrivilege), keep_as(db, mallory) as cur:
        cur.execute(INSERT, ("images", f"{mallory}/b.png", str(alice), alice, _probe_metadata(MB)))
    assert (storage_used(db, alice), storage_used(db, mallory)) == (4000, 0)
    row = _row(db, "images", name)
    assert row is not None and row[0] == str(alice) and row[2]["size"] == 4000


# -- the Storage API's real flow is unchanged ------------------------------------------------


@pytest.mark.parametrize("declared_length", [False, True], ids=["no-metadata-probe", "content-length-probe"])
def test_the_storage_api_flow_still_works_and_counts(db, make_user, declared_length):
    alice = make_user()
    a, b = f"{alice}/a.png", f"{alice}/b.png"
    steps = [
        (a, 3000, False, 3000),
        (a, 5000, True, 5000),  # overwrite that grows
        (a, 1000, True, 1000),  # overwrite that shrinks: the probe must not be refused
        (b, 200, False, 1200),
    ]
    for name, size, upsert, used in steps:
        upload(db, alice, "images", name, size, PNG, upsert=upsert, declared_length=declared_length)
        assert storage_used(db, alice) == used
    row = _row(db, "images", a)
    assert row is not None and row[0] == str(alice) and row[2]["size"] == 1000
    assert remove(db, alice, "images", [a]) == [a]
    assert storage_used(db, alice) == 200


def test_room_uploads_still_count_for_the_uploader(db, room: Room):
    name = f"rooms/{room.id}/a.png"
    upload(db, room.editor, "images", name, 700, PNG, declared_length=True)
    upload(db, room.editor, "images", name, 900, PNG, upsert=True, declared_length=True)
    assert (storage_used(db, room.editor), storage_used(db, room.owner)) == (900, 0)


def test_the_privileged_step_may_still_set_owner_and_size(db, make_user):
    """service_role (step 3) and the database owner are not clients: they write owner and size."""
    alice, bob = make_user(), make_user()
    with keep_as(db, None, "service_role") as cur:
        cur.execute(INSERT, ("images", f"{alice}/s.png", str(alice), alice, '{"size": 700}'))
        cur.execute(
            "update storage.objects set metadata = '{\"size\": 300}' where name = %s", (f"{alice}/s.png",)
        )
    assert storage_used(db, alice) == 300
    db.execute("update storage.objects set owner_id = %s where name = %s", (str(bob), f"{alice}/s.png"))
    assert (storage_used(db, alice), storage_used(db, bob)) == (0, 300)


# -- the policies pin the owner on their own (the trigger only explains why) ------------------


def test_every_insert_and_update_policy_on_objects_pins_the_owner(db):
    rows = db.execute(
        "select policyname, coalesce(with_check, qual) from pg_policies"
        " where schemaname = 'storage' and tablename = 'objects' and cmd in ('INSERT', 'UPDATE', 'ALL')"
    ).fetchall()
    assert rows, "expected Backline's upload and overwrite policies"
    for name, check in rows:
        assert check is not None and "owner_id = (( SELECT auth.uid() AS uid))::text" in check, name


@pytest.mark.parametrize("statement", ["insert", "update"])
def test_policies_alone_refuse_another_owner(db, make_user, statement):
    alice, mallory = make_user(), make_user()
    upload(db, mallory, "images", f"{mallory}/m.png", 100, PNG)
    db.execute("alter table storage.objects disable trigger backline_objects_client_guard")
    with pytest.raises(errors.InsufficientPrivilege) as err, keep_as(db, mallory) as cur:
        if statement == "insert":
            cur.execute(INSERT, ("images", f"{mallory}/x.png", str(alice), None, None))
        else:
            cur.execute(
                "update storage.objects set owner_id = %s where name = %s", (str(alice), f"{mallory}/m.png")
            )
    assert "row-level security" in err.value.diag.message_primary
    assert (storage_used(db, alice), storage_used(db, mallory)) == (0, 100)


def test_the_guard_is_a_trigger_on_objects_for_every_write(db):
    row = db.execute(
        "select tgenabled, pg_get_triggerdef(t.oid) from pg_trigger t"
        " where t.tgrelid = 'storage.objects'::regclass and t.tgname = 'backline_objects_client_guard'"
    ).fetchone()
    assert row is not None and row[0] == "O"
    assert "BEFORE INSERT OR UPDATE" in row[1] and "FOR EACH ROW" in row[1]


def test_unique_names_keep_their_meaning(db, make_user):
    """A second insert of the same path still answers 409 (unique), not the guard's 403."""
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 10, PNG)
    with pytest.raises(StorageApiError) as err:
        upload(db, alice, "images", f"{alice}/a.png", 10, PNG)
    assert err.value.status == 409
