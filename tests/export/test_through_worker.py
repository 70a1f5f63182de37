"""The data-rights, thumbnail and metrics handlers run through the real job runtime (Worker + SQL queue)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import psycopg

from tests.export.test_thumbnails import image_bytes
from tests.helpers import act_as, create_user
from workers.jobs.logs import JobLog
from workers.jobs.queue_sql import SqlQueue
from workers.jobs.registry import HANDLERS
from workers.jobs.worker import Worker
from workers.platform.factory import Adapters
from workers.platform.storage import Caller
from workers.settings import Settings


def run_worker(url: str, data_dir: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=url,
        BACKLINE_DATA_DIR=str(data_dir),
        BACKLINE_JOBS_LEASE_SECONDS=30.0,
        BACKLINE_JOBS_POLL_SECONDS=0.2,
    )
    queue = SqlQueue(url, pool_size=2)
    try:
        Worker(
            queue, HANDLERS, settings=settings, cron=False, concurrency=1, log=JobLog(stream=io.StringIO())
        ).run(once=True)
    finally:
        queue.close()


def jobs(url: str, kind: str) -> list[tuple[str, Any, str | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select status, result, last_error from public.jobs where kind = %s order by created_at", (kind,)
        ).fetchall()


def test_requests_and_uploads_are_processed_by_a_worker(
    rights_url: str, settings: Settings, adapters: Adapters
):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
        conn.execute("insert into public.privacy_consents (user_id, telemetry) values (%s, true)", (uid,))
        conn.execute("select private.job_enqueue('metrics', '{}'::jsonb)")
        conn.commit()
        with act_as(conn, uid, rollback=False) as cur:
            cur.execute("select public.ingest_telemetry(%s::jsonb)", (json.dumps([{"name": "app.opened"}]),))
            cur.execute("select public.request_export()")
    me = Caller.user(uid)
    adapters.storage.upload(
        "images", f"{uid}/ok.png", image_bytes("PNG", (500, 500)), content_type="image/png", caller=me
    )
    adapters.storage.upload("images", f"{uid}/bad.png", b"not an image", content_type="image/png", caller=me)

    run_worker(rights_url, settings.data_dir)

    [(status, result, _)] = jobs(rights_url, "export")
    assert status == "succeeded" and result["path"].startswith(f"{uid}/") and "token=" in result["url"]
    thumbs = jobs(rights_url, "thumbnail")
    assert sorted(s for s, _r, _e in thumbs) == [
        "failed",
        "succeeded",
    ]  # the bad image fails at once, no retry
    [error] = [e for s, _r, e in thumbs if s == "failed"]
    # Whichever runs first: the thumbnail job finds no image, or the upload check already removed it.
    assert "not an image" in error or "Object not found" in error
    # The upload check removed bad.png (its bytes are not a PNG); ok.png got its derived files.
    assert [e.name for e in adapters.storage.list("images", str(uid))] == [
        "ok.png",
        "ok.png.full.webp",
        "ok.png.thumb150.webp",
        "ok.png.thumb300.webp",
    ]
    assert sorted((r["state"], r.get("action")) for s, r, _e in jobs(rights_url, "upload_scan")) == [
        ("not_scanned", None),
        ("rejected", "removed"),
    ]
    [(status, result, _)] = jobs(rights_url, "metrics")
    assert status == "succeeded" and result["rollup_rows"] >= 1

    with psycopg.connect(rights_url) as conn, act_as(conn, uid, rollback=False) as cur:
        cur.execute("select public.request_account_deletion()")
    run_worker(rights_url, settings.data_dir)
    [(status, result, error)] = jobs(rights_url, "erasure")
    assert status == "succeeded", error
    assert result["objects_removed"] == 5  # 1 image, its WebP original and 2 thumbnails, 1 export archive
    with psycopg.connect(rights_url) as conn:
        assert conn.execute("select count(*) from auth.users where id = %s", (uid,)).fetchone()[0] == 0
