"""Quota accounting on the Storage API's real path: step 1 counts nothing, step 3 counts metadata.size."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from psycopg import errors

from tests.files.storage_api import StorageApiError, remove, storage_used, upload
from tests.helpers import act_as, create_user

MB = 1024 * 1024
FREE_QUOTA = 100 * MB
PNG = "image/png"


def test_upload_counts_its_size(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 3000, PNG)
    upload(db, alice, "samples", f"{alice}/b.wav", 500, "audio/wav")
    assert storage_used(db, alice) == 3500


def test_permission_test_step_alone_counts_nothing(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur:
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id) values ('images', %s, %s)",
            (f"{alice}/a.png", str(alice)),
        )
        cur.execute("reset role")
        assert cur.execute("select storage_used from public.profiles where id = %s", (alice,)).fetchone() == (
            0,
        )


@pytest.mark.parametrize("declared_length", [False, True], ids=["no-metadata-probe", "content-length-probe"])
def test_upload_past_the_free_quota_is_refused_with_a_clear_error(db, make_user, declared_length):
    alice = make_user()
    db.execute("update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA - 500, alice))
    with pytest.raises(StorageApiError) as err:
        upload(db, alice, "images", f"{alice}/big.png", 1000, PNG, declared_length=declared_length)
    assert err.value.status == 403
    assert "storage quota exceeded" in err.value.message and "free plan" in err.value.message
    assert storage_used(db, alice) == FREE_QUOTA - 500
    assert db.execute(
        "select count(*) from storage.objects where name = %s", (f"{alice}/big.png",)
    ).fetchone() == (0,)
    upload(db, alice, "images", f"{alice}/fits.png", 500, PNG)
    assert storage_used(db, alice) == FREE_QUOTA


def test_quota_error_code_is_42501_from_the_privileged_step(db, make_user):
    alice = make_user()
    db.execute("update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA, alice))
    with act_as(db, None, "service_role") as cur, pytest.raises(errors.InsufficientPrivilege) as err:
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata)"
            " values ('images', %s, %s, '{\"size\": 1}')",
            (f"{alice}/x.png", str(alice)),
        )
    assert err.value.diag.message_hint == "Delete files or upgrade your plan."


def test_pro_plan_has_a_bigger_quota(db, make_user):
    alice = make_user()
    db.execute(
        "update public.profiles set plan = 'pro', storage_used = %s where id = %s", (FREE_QUOTA, alice)
    )
    upload(db, alice, "images", f"{alice}/a.png", 5 * MB, PNG)
    assert storage_used(db, alice) == FREE_QUOTA + 5 * MB


def test_declared_length_refuses_before_the_bytes_are_sent(db, make_user):
    """Current Storage API: the permission test carries contentLength, so step 1 already says no."""
    alice = make_user()
    db.execute("update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA - 500, alice))
    with act_as(db, alice) as cur, pytest.raises(errors.InsufficientPrivilege) as err:
        cur.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata, version)"
            " values ('images', %s, %s, %s, '1')",
            (f"{alice}/big.png", str(alice), '{"mimetype": "image/png", "contentLength": 1000}'),
        )
    assert "storage quota exceeded" in err.value.diag.message_primary
    assert storage_used(db, alice) == FREE_QUOTA - 500


@pytest.mark.parametrize("declared_length", [False, True], ids=["no-metadata-probe", "content-length-probe"])
def test_probe_and_upload_are_counted_once(db, make_user, declared_length):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG, declared_length=declared_length)
    upload(db, alice, "images", f"{alice}/a.png", 6000, PNG, upsert=True, declared_length=declared_length)
    assert storage_used(db, alice) == 6000


def test_overwrite_counts_the_size_difference(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    upload(db, alice, "images", f"{alice}/a.png", 6000, PNG, upsert=True)
    assert storage_used(db, alice) == 6000
    upload(db, alice, "images", f"{alice}/a.png", 1000, PNG, upsert=True)
    assert storage_used(db, alice) == 1000


def test_overwrite_that_grows_past_the_quota_is_refused(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    db.execute("update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA - 100, alice))
    with pytest.raises(StorageApiError) as err:
        upload(db, alice, "images", f"{alice}/a.png", 4101, PNG, upsert=True)
    assert err.value.status == 403
    upload(db, alice, "images", f"{alice}/a.png", 4100, PNG, upsert=True)  # +100 fits exactly
    assert storage_used(db, alice) == FREE_QUOTA


def test_shrinking_overwrite_allowed_even_at_the_quota(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    db.execute("update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA + 10, alice))
    upload(db, alice, "images", f"{alice}/a.png", 1000, PNG, upsert=True)
    assert storage_used(db, alice) == FREE_QUOTA + 10 - 3000


def test_delete_gives_the_bytes_back(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    upload(db, alice, "images", f"{alice}/b.png", 1000, PNG)
    assert remove(db, alice, "images", [f"{alice}/a.png"]) == [f"{alice}/a.png"]
    assert storage_used(db, alice) == 1000


def test_refused_delete_keeps_the_count(db, make_user):
    alice, bob = make_user(), make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    assert remove(db, bob, "images", [f"{alice}/a.png"]) == []
    assert storage_used(db, alice) == 4000


def test_room_upload_counts_for_the_uploader(db, room):
    upload(db, room.editor, "images", f"rooms/{room.id}/a.png", 700, PNG)
    assert (storage_used(db, room.editor), storage_used(db, room.owner)) == (700, 0)


def test_service_upload_without_owner_counts_for_nobody(db, make_user):
    alice = make_user()
    db.execute(
        "insert into storage.objects (bucket_id, name, metadata) values ('exports', %s, '{\"size\": 99}')",
        (f"{alice}/e.zip",),
    )
    assert storage_used(db, alice) == 0


def test_changing_owner_moves_the_bytes(db, make_user):
    alice, bob = make_user(), make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    db.execute("update storage.objects set owner_id = %s where name = %s", (str(bob), f"{alice}/a.png"))
    assert (storage_used(db, alice), storage_used(db, bob)) == (0, 4000)


def test_malformed_size_counts_zero(db, make_user):
    alice = make_user()
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id, metadata)"
        " values ('images', %s, %s, '{\"size\": \"lots\"}')",
        (f"{alice}/a.png", str(alice)),
    )
    assert storage_used(db, alice) == 0


def test_account_deletion_does_not_block_on_quota(db, make_user):
    alice = make_user()
    upload(db, alice, "images", f"{alice}/a.png", 4000, PNG)
    db.execute("delete from auth.users where id = %s", (alice,))
    db.execute("select set_config('storage.allow_delete_query', 'true', true)")
    assert db.execute("delete from storage.objects where name = %s", (f"{alice}/a.png",)).rowcount == 1


# -- concurrency: real commits, two connections --------------------------------------


def _new_user(url: str) -> uuid.UUID:
    with psycopg.connect(url, autocommit=True) as conn:
        return create_user(conn)


def test_two_concurrent_uploads_that_together_exceed_the_quota_one_refused(clone_url):
    alice = _new_user(clone_url)
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute(
            "update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA - 8 * MB, alice)
        )
    a = psycopg.connect(clone_url)
    b = psycopg.connect(clone_url)
    try:
        # Both permission tests pass; A's privileged upsert holds its transaction open.
        for conn in (a, b):
            with act_as(conn, alice) as cur:
                cur.execute(
                    "insert into storage.objects (bucket_id, name, owner_id) values ('images', %s, %s)",
                    (f"{alice}/probe.png", str(alice)),
                )
        a.execute("set role service_role")
        a.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata) values ('images', %s, %s, %s)",
            (f"{alice}/a.png", str(alice), '{"size": 5242880}'),
        )
        outcome: dict[str, BaseException | None] = {}

        def second() -> None:
            try:
                b.execute("set role service_role")
                b.execute(
                    "insert into storage.objects (bucket_id, name, owner_id, metadata)"
                    " values ('images', %s, %s, %s)",
                    (f"{alice}/b.png", str(alice), '{"size": 5242880}'),
                )
                b.commit()
                outcome["b"] = None
            except BaseException as exc:
                b.rollback()
                outcome["b"] = exc

        worker = threading.Thread(target=second)
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "B must wait for A's lock on the profile row"
        a.commit()
        worker.join(timeout=10)
        assert isinstance(outcome["b"], errors.InsufficientPrivilege)
    finally:
        a.close()
        b.close()
    with psycopg.connect(clone_url, autocommit=True) as conn:
        used = conn.execute("select storage_used from public.profiles where id = %s", (alice,)).fetchone()[0]
        names = [
            r[0] for r in conn.execute("select name from storage.objects where owner_id = %s", (str(alice),))
        ]
    assert used == FREE_QUOTA - 8 * MB + 5 * MB
    assert names == [f"{alice}/a.png"]


def test_many_concurrent_uploads_never_overshoot(clone_url):
    alice = _new_user(clone_url)
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute(
            "update public.profiles set storage_used = %s where id = %s", (FREE_QUOTA - 10 * MB, alice)
        )
    results: list[int | None] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with psycopg.connect(clone_url, autocommit=True) as conn:
            try:
                upload(conn, alice, "images", f"{alice}/{i}.png", 3 * MB, PNG)
                status = None
            except StorageApiError as exc:
                status = exc.status
        with lock:
            results.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results, key=lambda s: s or 0) == [None, None, None, 403, 403, 403]
    with psycopg.connect(clone_url, autocommit=True) as conn:
        used = conn.execute("select storage_used from public.profiles where id = %s", (alice,)).fetchone()[0]
        total = conn.execute(
            "select sum((metadata->>'size')::bigint) from storage.objects where owner_id = %s", (str(alice),)
        ).fetchone()[0]
    assert used == FREE_QUOTA - 10 * MB + 9 * MB
    assert total == 9 * MB
