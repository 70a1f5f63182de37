"""Data rights operations shared by the job handlers and the CLI: export a user, erase a user."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from workers.errors import BacklineError
from workers.export.archive import Advance, ExportPlan, ExportSummary, plan_export, write_archive
from workers.export.catalog import referencing_rows, user_objects, user_tables
from workers.export.context import PermanentError
from workers.platform.auth_admin import AuthAdminError
from workers.platform.factory import Adapters
from workers.platform.storage import SERVICE

EXPORTS_BUCKET = "exports"
REMOVE_BATCH = 100


@dataclass
class ExportResult:
    bucket: str
    path: str
    url: str
    expires_at: str
    summary: ExportSummary

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "path": self.path,
            "url": self.url,
            "expires_at": self.expires_at,
            **self.summary.as_dict(),
        }


def export_to_file(
    database_url: str,
    adapters: Adapters,
    user_id: uuid.UUID,
    out: Path,
    *,
    on_plan: Callable[[ExportPlan], None] | None = None,
    advance: Advance | None = None,
) -> ExportSummary:
    """Write the user's archive to a local file (CLI `users export --out`)."""
    with psycopg.connect(database_url, application_name="backline-export", prepare_threshold=None) as conn:
        # One snapshot for the whole archive: every table as of the same moment.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        _require_user(conn, user_id)
        plan = plan_export(conn, user_id)
        if on_plan:
            on_plan(plan)
        return write_archive(conn, adapters.storage, plan, out, advance)


def record_file_export(database_url: str, user_id: uuid.UUID, out: Path, summary: ExportSummary) -> None:
    """Audit an export an operator wrote to a local file (`users export --out`): data leaving the
    database is recorded however it leaves (the bucket path audits in export_to_bucket)."""
    details = {"file": out.name, "by": "operator", **summary.as_dict()}
    _audit(database_url, user_id, "export.completed", details)


def export_to_bucket(
    database_url: str,
    adapters: Adapters,
    user_id: uuid.UUID,
    *,
    url_ttl_seconds: int,
    job_id: uuid.UUID | None = None,
    on_plan: Callable[[ExportPlan], None] | None = None,
    advance: Advance | None = None,
) -> ExportResult:
    """Export to `exports/<uid>/<timestamp>.zip`, sign a download URL, and audit it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = f"{user_id}/{stamp}.zip"
    with tempfile.TemporaryDirectory(prefix="backline-export-") as tmp:
        archive = Path(tmp) / "export.zip"
        summary = export_to_file(database_url, adapters, user_id, archive, on_plan=on_plan, advance=advance)
        with open(archive, "rb") as source:
            adapters.storage.upload(EXPORTS_BUCKET, path, source, content_type="application/zip", upsert=True)
    url = adapters.storage.signed_url(EXPORTS_BUCKET, path, url_ttl_seconds)
    expires_at = (datetime.now(UTC) + timedelta(seconds=url_ttl_seconds)).isoformat()
    details = {
        "path": f"{EXPORTS_BUCKET}/{path}",
        "job_id": str(job_id) if job_id else None,
        **summary.as_dict(),
    }
    _audit(database_url, user_id, "export.completed", details)
    return ExportResult(EXPORTS_BUCKET, path, url, expires_at, summary)


@dataclass
class ErasureResult:
    objects_removed: int
    rows_removed: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"objects_removed": self.objects_removed, "rows_removed": self.rows_removed}


def erase_user(
    database_url: str,
    adapters: Adapters,
    user_id: uuid.UUID,
    *,
    job_id: uuid.UUID | None = None,
    reason: str = "requested",
    on_total: Callable[[int], None] | None = None,
    advance: Advance | None = None,
) -> ErasureResult:
    """Remove the user's files (bytes and rows) and the auth user (rows cascade); audit without personal data.

    Idempotent: a retry after a crash finds fewer objects, and a user already
    deleted counts as done. Raises if anything still references the user.
    """
    step = advance or (lambda _label: None)
    with psycopg.connect(database_url, application_name="backline-erasure", prepare_threshold=None) as conn:
        objects = user_objects(conn, user_id, include_exports=True)
        rows = {}
        for table in user_tables(conn):
            (n,) = conn.execute(table.count_rows(), {"uid": user_id}).fetchone() or (0,)
            if n:
                rows[table.qualified] = int(n)
        exists = conn.execute("select 1 from auth.users where id = %s", (user_id,)).fetchone() is not None
    if not exists and not objects:
        raise PermanentError(f"user {user_id} not found")
    by_bucket: dict[str, list[str]] = defaultdict(list)
    for obj in objects:
        by_bucket[obj.bucket].append(obj.name)
    if on_total:
        on_total(len(objects) + 1)
    removed = 0
    for bucket, names in by_bucket.items():
        for start in range(0, len(names), REMOVE_BATCH):
            batch = names[start : start + REMOVE_BATCH]
            removed += len(adapters.storage.remove(bucket, batch, caller=SERVICE))
            for name in batch:
                step(f"{bucket}/{name}")
    if exists:
        _detach_job(database_url, job_id, user_id)
        try:
            adapters.auth.delete_user(user_id)
        except AuthAdminError as exc:
            if exc.status != 404:
                raise
    step("account")
    with psycopg.connect(database_url, prepare_threshold=None) as conn:
        left = referencing_rows(conn, user_id)
        left_objects = user_objects(conn, user_id, include_exports=True)
    if left or left_objects:
        raise BacklineError(
            f"erasure incomplete: still referenced by {json.dumps(left)} and {len(left_objects)} objects"
        )
    details = {
        "job_id": str(job_id) if job_id else None,
        "reason": reason,
        "objects_removed": removed,
        "rows_removed": rows,
        "at": int(time.time()),
    }
    _audit(database_url, None, "account.erased", details)
    return ErasureResult(removed, rows)


def _detach_job(database_url: str, job_id: uuid.UUID | None, user_id: uuid.UUID) -> None:
    """The erasure job row must survive the account (jobs.owner_id cascades): drop its owner first."""
    if job_id is None:
        return
    with psycopg.connect(database_url, prepare_threshold=None) as conn:
        if conn.execute("select to_regclass('public.jobs') is not null").fetchone() == (True,):
            conn.execute(
                "update public.jobs set owner_id = null where id = %s and owner_id = %s", (job_id, user_id)
            )


def _require_user(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> None:
    if conn.execute("select 1 from auth.users where id = %s", (user_id,)).fetchone() is None:
        raise PermanentError(f"user {user_id} not found")


def _audit(database_url: str, user_id: uuid.UUID | None, action: str, details: dict[str, Any]) -> None:
    with psycopg.connect(database_url, prepare_threshold=None) as conn:
        conn.execute("select private.audit(%s, %s, %s::jsonb)", (user_id, action, json.dumps(details)))
