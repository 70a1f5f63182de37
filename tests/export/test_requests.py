"""request_export() / request_account_deletion() RPCs and the thumbnail trigger queue the right jobs."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg import errors

from tests.export.conftest import FakeJobContext
from tests.helpers import act_as, create_user
from workers.export.jobs import run_erasure, run_export
from workers.export.thumbnails import run_thumbnail
from workers.platform.factory import Adapters
from workers.platform.storage import Caller

MakeUser = Callable[..., uuid.UUID]


def test_request_export_queues_an_owned_export_job_with_audit_and_plan_limit(db, make_user: MakeUser):
    uid = make_user()
    with act_as(db, uid, rollback=False) as cur:
        job_id = cur.execute("select public.request_export()").fetchone()[0]
    kind, owner, payload, status = db.execute(
        "select kind, owner_id, payload, status from public.jobs where id = %s", (job_id,)
    ).fetchone()
    assert (kind, owner, payload, status) == ("export", uid, {}, "queued")
    assert db.execute(
        "select details ->> 'job_id' from public.audit_log"
        " where user_id = %s and action = 'export.requested'",
        (uid,),
    ).fetchone()[0] == str(job_id)
    with act_as(db, uid) as cur, pytest.raises(psycopg.Error) as err:  # free plan: 1 export per day
        cur.execute("select public.request_export()")
    assert err.value.sqlstate == "PT429"
    with act_as(db, uid) as cur:  # the user sees their own job
        assert (
            cur.execute("select status from public.jobs where id = %s", (job_id,)).fetchone()[0] == "queued"
        )
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select public.request_export()")


def test_request_account_deletion_queues_one_erasure_job(db, make_user: MakeUser):
    uid, other = make_user(), make_user()
    with act_as(db, uid, rollback=False) as cur:
        first = cur.execute("select public.request_account_deletion()").fetchone()[0]
    with act_as(db, uid, rollback=False) as cur:
        again = cur.execute("select public.request_account_deletion()").fetchone()[0]
    assert first == again
    kind, owner, payload = db.execute(
        "select kind, owner_id, payload from public.jobs where id = %s", (first,)
    ).fetchone()
    assert (kind, owner, payload) == ("erasure", uid, {"user_id": str(uid)})
    assert (
        db.execute(
            "select count(*) from public.audit_log where user_id = %s"
            " and action = 'account.deletion_requested'",
            (uid,),
        ).fetchone()[0]
        == 1
    )
    with act_as(db, uid) as cur:  # the owner sees it, another user does not
        assert cur.execute("select count(*) from public.jobs where id = %s", (first,)).fetchone()[0] == 1
    with act_as(db, other) as cur:
        assert cur.execute("select count(*) from public.jobs where id = %s", (first,)).fetchone()[0] == 0
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select public.request_account_deletion()")
    with act_as(db, uid) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select public.enqueue_job('erasure', '{}')")


def test_exported_and_erased_through_the_queued_jobs(
    rights_url: str, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
        victim = create_user(conn)
        with act_as(conn, uid, rollback=False) as cur:
            export_job = cur.execute("select public.request_export()").fetchone()[0]
        owner, payload = conn.execute(
            "select owner_id, payload from public.jobs where id = %s", (export_job,)
        ).fetchone()
    result = run_export(make_ctx(owner), payload)
    assert result is not None and result["path"].startswith(f"{uid}/")
    # A user's own job cannot name another user.
    with pytest.raises(PermissionError):
        run_export(make_ctx(uid), {"user_id": str(victim)})
    with psycopg.connect(rights_url) as conn:
        with act_as(conn, uid, rollback=False) as cur:
            erase_job = cur.execute("select public.request_account_deletion()").fetchone()[0]
        owner, payload = conn.execute(
            "select owner_id, payload from public.jobs where id = %s", (erase_job,)
        ).fetchone()
    assert owner == uid
    ctx = make_ctx(owner, kind="erasure")
    ctx.job_id = erase_job
    assert run_erasure(ctx, payload)["objects_removed"] == 1
    with psycopg.connect(rights_url) as conn:
        assert conn.execute("select count(*) from auth.users where id = %s", (uid,)).fetchone()[0] == 0
        # The erasure job survived its owner's deletion (the runtime can still complete it).
        assert conn.execute(
            "select status, owner_id from public.jobs where id = %s", (erase_job,)
        ).fetchone() == ("queued", None)


def test_an_image_upload_queues_a_thumbnail_job(
    rights_url: str, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    from tests.export.test_thumbnails import image_bytes

    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
    me = Caller.user(uid)
    adapters.storage.upload(
        "images", f"{uid}/p.png", image_bytes("PNG", (400, 400)), content_type="image/png", caller=me
    )
    adapters.storage.upload("exports", f"{uid}/x.zip", b"zip", content_type="application/zip")
    with psycopg.connect(rights_url) as conn:
        jobs = conn.execute("select owner_id, payload from public.jobs where kind = 'thumbnail'").fetchall()
    assert jobs == [(uid, {"bucket": "images", "name": f"{uid}/p.png"})]
    run_thumbnail(make_ctx(uid, kind="thumbnail"), jobs[0][1])
    with psycopg.connect(rights_url) as conn:  # writing the thumbnails queued nothing more
        assert conn.execute("select count(*) from public.jobs where kind = 'thumbnail'").fetchone()[0] == 1
    with pytest.raises(PermissionError):
        run_thumbnail(make_ctx(uuid.uuid4()), jobs[0][1])
