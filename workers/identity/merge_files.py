"""Kind 'account_merge_files': move a merged anonymous account's files, then delete that account.

public.claim_merge_ticket moves every row in SQL but cannot move bytes, so it
enqueues this job with the plan it made (private.merge_plan_files): for each
object {bucket, from, to, size, mimetype}. Each object is copied through the
storage transport (local directory or the Storage API, as the service role),
made the permanent user's and its file links re-pointed
(private.merge_adopt_object), then the original is removed. The real Storage
API has no "change owner", and a copy uploaded with the service key has no
owner, so adoption is the one SQL step (storage.objects.owner_id is data the
API stores, not enforces).

Idempotent: a retry skips copies already adopted and sources already gone.
A copy the quota refuses is removed again and reported; its original stays in
the anonymous account, which is then kept. When nothing references the
anonymous user any more (private.account_merge_finish), it is deleted through
the Auth admin API, as erasure does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from workers.export.context import (
    HandlerContext,
    InvalidPayload,
    NotAllowed,
    payload_uuid,
    require_database_url,
)
from workers.platform.auth_admin import AuthAdminError
from workers.platform.factory import Adapters, make_adapters
from workers.platform.storage import SERVICE, StorageError


@dataclass(frozen=True)
class PlannedObject:
    bucket: str
    source: str
    target: str
    mimetype: str

    @classmethod
    def parse(cls, value: object) -> PlannedObject:
        if not isinstance(value, dict):
            raise InvalidPayload(f"payload objects must be objects, got {value!r}")
        try:
            return cls(
                str(value["bucket"]),
                str(value["from"]),
                str(value["to"]),
                str(value.get("mimetype") or "application/octet-stream"),
            )
        except KeyError as exc:
            raise InvalidPayload(f"payload object is missing {exc.args[0]!r}") from None


@dataclass
class MergeFilesResult:
    moved: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    left_in_anonymous_account: dict[str, int] = field(default_factory=dict)
    anonymous_account_deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "moved": len(self.moved),
            "moved_objects": self.moved,
            "skipped": self.skipped,
            "left_in_anonymous_account": self.left_in_anonymous_account,
            "anonymous_account_deleted": self.anonymous_account_deleted,
        }


def _owner(conn: psycopg.Connection[Any], bucket: str, name: str) -> str | bool | None:
    """The object's owner_id, or False when there is no such object."""
    row = conn.execute(
        "select owner_id from storage.objects where bucket_id = %s and name = %s", (bucket, name)
    ).fetchone()
    return False if row is None else row[0]


def move_merged_files(
    database_url: str,
    adapters: Adapters,
    merge_id: uuid.UUID,
    anonymous_id: uuid.UUID,
    permanent_id: uuid.UUID,
    objects: list[PlannedObject],
    *,
    advance: Callable[[str], None] | None = None,
) -> MergeFilesResult:
    step = advance or (lambda _label: None)
    result = MergeFilesResult()
    with psycopg.connect(
        database_url, autocommit=True, application_name="backline-merge-files", prepare_threshold=None
    ) as conn:
        for obj in objects:
            label = f"{obj.bucket}/{obj.source}"
            if _move_one(conn, adapters, merge_id, permanent_id, obj, result):
                result.moved.append(f"{label} -> {obj.bucket}/{obj.target}")
            step(label)
        row = conn.execute(
            "select private.account_merge_finish(%s, %s)",
            (merge_id, Jsonb({"moved": len(result.moved), "skipped": result.skipped})),
        ).fetchone()
        result.left_in_anonymous_account = dict(row[0]) if row else {}
    if not result.left_in_anonymous_account:
        try:
            adapters.auth.delete_user(anonymous_id)
        except AuthAdminError as exc:
            if exc.status != 404:
                raise
        result.anonymous_account_deleted = True
    return result


def _move_one(
    conn: psycopg.Connection[Any],
    adapters: Adapters,
    merge_id: uuid.UUID,
    permanent_id: uuid.UUID,
    obj: PlannedObject,
    result: MergeFilesResult,
) -> bool:
    """Copy, adopt, remove the original; False (and a skipped entry) when the quota refuses the copy."""
    source_owner = _owner(conn, obj.bucket, obj.source)
    target_owner = _owner(conn, obj.bucket, obj.target)
    if source_owner is False and target_owner == str(permanent_id):
        return True  # done by an earlier attempt
    if source_owner is False:
        result.skipped.append(
            {"bucket": obj.bucket, "name": obj.source, "reason": "the file no longer exists"}
        )
        return False
    if obj.source != obj.target and target_owner != str(permanent_id):
        data = adapters.storage.download(obj.bucket, obj.source, caller=SERVICE)
        adapters.storage.upload(obj.bucket, obj.target, data, content_type=obj.mimetype, upsert=True)
    try:
        conn.execute(
            "select private.merge_adopt_object(%s, %s, %s, %s)",
            (merge_id, obj.bucket, obj.source, obj.target),
        )
    except psycopg.errors.InsufficientPrivilege as exc:  # the storage quota
        if obj.source != obj.target:
            adapters.storage.remove(obj.bucket, [obj.target], caller=SERVICE)
        result.skipped.append(
            {"bucket": obj.bucket, "name": obj.source, "reason": str(exc.diag.message_primary)}
        )
        return False
    if obj.source != obj.target:
        try:
            adapters.storage.remove(obj.bucket, [obj.source], caller=SERVICE)
        except StorageError as exc:
            if exc.status != 404:
                raise
    return True


def run_account_merge_files(ctx: HandlerContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Kind 'account_merge_files': payload {merge_id, anonymous_id, permanent_id, objects: [...]}.

    Enqueued by public.claim_merge_ticket with the permanent user as owner.
    """
    merge_id = payload_uuid(payload, "merge_id")
    anonymous_id = payload_uuid(payload, "anonymous_id")
    permanent_id = payload_uuid(payload, "permanent_id")
    if ctx.owner_id is not None and ctx.owner_id != permanent_id:
        raise NotAllowed("an account merge job acts only for the account its owner merged into")
    raw = payload.get("objects", [])
    if not isinstance(raw, list):
        raise InvalidPayload("payload 'objects' must be a list")
    objects = [PlannedObject.parse(o) for o in raw]
    url = require_database_url(ctx.settings, ctx.database_url)
    adapters = make_adapters(ctx.settings, url)
    try:
        result = move_merged_files(
            url,
            adapters,
            merge_id,
            anonymous_id,
            permanent_id,
            objects,
            advance=lambda _label: ctx.heartbeat(),
        )
    finally:
        adapters.close()
    return result.as_dict()
