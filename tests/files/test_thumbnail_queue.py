"""Thumbnail jobs are queued by the Storage API's completed upload, never by a client's own write.

The Storage API's last step (service_role) stores size and mimetype; a client
touching its own row's metadata directly (anon/authenticated through the Data
API) must not be able to fill the job queue.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from tests.files import storage_api
from tests.helpers import act_as

Conn = psycopg.Connection[Any]


def _thumbnail_jobs(db: Conn, name: str) -> int:
    row = db.execute(
        "select count(*) from public.jobs where kind = 'thumbnail' and payload ->> 'name' = %s", (name,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_an_upload_queues_one_thumbnail_and_client_edits_queue_none(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    owner = make_user()
    name = f"{owner}/photo.png"
    storage_api.upload(db, owner, "images", name, 2048, "image/png")
    assert _thumbnail_jobs(db, name) == 1
    for mimetype in ("image/jpeg", "image/webp", "image/png"):
        with act_as(db, owner, rollback=False) as cur:
            cur.execute(
                "update storage.objects set metadata = metadata || %s"
                " where bucket_id = 'images' and name = %s",
                (json.dumps({"mimetype": mimetype}), name),
            )
            assert cur.rowcount == 1
    assert _thumbnail_jobs(db, name) == 1
    # The Storage API replacing the file (its privileged upsert) queues a fresh thumbnail.
    storage_api.upload(db, owner, "images", name, 4096, "image/png", upsert=True)
    assert _thumbnail_jobs(db, name) == 2
