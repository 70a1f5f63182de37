"""Job `upload_scan`: check that an upload is what it claims to be, then record the verdict.

Queued by the database when the Storage API completes a user's upload
(migration 20261207040100_files_upload_scans). The worker streams the file
once: its head is sniffed for the real type (workers/files/sniff.py) and, when
BACKLINE_CLAMAV_ADDRESS is set, every byte goes to clamd (INSTREAM). Then:

- type mismatch or malware: the verdict (rejected, with the reason) is recorded
  first, then the file is removed through the storage transport (bytes and row
  together; the quota gives the bytes back) or, with
  BACKLINE_UPLOAD_REJECT_ACTION=quarantine, copied to the service-only bucket
  `quarantine` (as <bucket>/<name>) and removed;
- otherwise `clean` (ClamAV said OK) or `not_scanned` (no ClamAV configured).

A file replaced or deleted since the job was queued is skipped (a newer job
checks the new bytes). clamd unreachable or failing raises: the job is retried
and the upload stays pending, never assumed clean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg

from workers.export.context import HandlerContext, InvalidPayload, payload_uuid, require_database_url
from workers.files.clamd import ClamdAddress, Verdict, scan_stream
from workers.files.sniff import HEAD_BYTES, mismatch
from workers.platform.factory import make_adapters
from workers.platform.storage import SERVICE, StorageAdapter, StorageError

QUARANTINE_BUCKET = "quarantine"


def _closing(chunks: Iterator[bytes]) -> contextlib.AbstractContextManager[Iterator[bytes]]:
    """Close a download stream (its file or HTTP response) even when not read to the end."""
    close = getattr(chunks, "close", None)

    @contextlib.contextmanager
    def manage() -> Iterator[Iterator[bytes]]:
        try:
            yield chunks
        finally:
            if callable(close):
                close()

    return manage()


class _Head:
    """Passes chunks through while keeping the first HEAD_BYTES."""

    def __init__(self) -> None:
        self.data = b""

    def tee(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if len(self.data) < HEAD_BYTES:
                self.data += chunk[: HEAD_BYTES - len(self.data)]
            yield chunk


def _pending(url: str, object_id: str, version: str | None) -> str | None:
    """The declared type of the upload if this version still awaits its check, else None."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute(
            "select declared_type, object_version is not distinct from %s from public.upload_scans"
            " where object_id = %s",
            (version, object_id),
        ).fetchone()
    if row is None or not row[1]:
        return None
    return str(row[0] or "")


def _record(
    url: str,
    object_id: str,
    version: str | None,
    state: str,
    detected: str | None,
    reason: str | None = None,
    action: str | None = None,
    quarantine_path: str | None = None,
) -> bool:
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute(
            "select private.upload_scan_record(%s, %s, %s, %s, %s, %s, %s)",
            (object_id, version, state, detected, reason, action, quarantine_path),
        ).fetchone()
    return bool(row and row[0])


def _inspect(
    storage: StorageAdapter, bucket: str, name: str, clamd: ClamdAddress | None, timeout: float
) -> tuple[bytes, Verdict | None]:
    """Stream the file once: its head, and clamd's verdict when a scanner is configured."""
    head = _Head()
    with _closing(storage.download(bucket, name, caller=SERVICE)) as chunks:
        if clamd is not None:
            verdict = scan_stream(clamd, head.tee(chunks), timeout=timeout)
            return head.data, verdict
        for _ in head.tee(chunks):
            if len(head.data) >= HEAD_BYTES:
                break
    return head.data, None


def _quarantine(storage: StorageAdapter, bucket: str, name: str) -> str:
    target = f"{bucket}/{name}"
    with _closing(storage.download(bucket, name, caller=SERVICE)) as chunks:
        storage.upload(
            QUARANTINE_BUCKET,
            target,
            chunks,
            content_type="application/octet-stream",
            upsert=True,
            caller=SERVICE,
        )
    return f"{QUARANTINE_BUCKET}/{target}"


def run_upload_scan(ctx: HandlerContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Handler: payload {"bucket", "name", "object_id", "version"} as the database queued it."""
    bucket, name = payload.get("bucket"), payload.get("name")
    if not isinstance(bucket, str) or not bucket or not isinstance(name, str) or not name:
        raise InvalidPayload("payload needs 'bucket' and 'name' (the uploaded object)")
    object_id = str(payload_uuid(payload, "object_id"))
    version = payload.get("version")
    if version is not None and not isinstance(version, str):
        raise InvalidPayload("payload 'version' must be a string (storage.objects.version)")
    settings = ctx.settings
    url = require_database_url(settings, ctx.database_url)
    declared = _pending(url, object_id, version)
    if declared is None:
        return {"skipped": "the upload was replaced or deleted since this check was queued"}
    clamd = ClamdAddress.parse(settings.clamav_address) if settings.clamav_address else None
    adapters = make_adapters(settings, url)
    try:
        try:
            head, verdict = _inspect(adapters.storage, bucket, name, clamd, settings.clamav_timeout_seconds)
        except StorageError as exc:
            if exc.status in (400, 404):
                return {"skipped": "the file is gone"}
            raise
        ctx.heartbeat()
        detected, reason = mismatch(declared, head)
        if reason is None and verdict is not None and not verdict.clean:
            reason = f"malware: ClamAV found {verdict.signature}"
        if reason is None:
            state = "clean" if verdict is not None else "not_scanned"
            if not _record(url, object_id, version, state, detected):
                return {"skipped": "the upload was replaced or deleted during the check"}
            return {"state": state, "detected_type": detected}
        action = "quarantined" if settings.upload_reject_action == "quarantine" else "removed"
        quarantine_path = f"{QUARANTINE_BUCKET}/{bucket}/{name}" if action == "quarantined" else None
        if not _record(url, object_id, version, "rejected", detected, reason, action, quarantine_path):
            return {"skipped": "the upload was replaced or deleted during the check"}
        if action == "quarantined":
            _quarantine(adapters.storage, bucket, name)
        adapters.storage.remove(bucket, [name], caller=SERVICE)
        return {"state": "rejected", "reason": reason, "action": action, "detected_type": detected}
    finally:
        adapters.close()
