"""A test stand-in for the Storage API's database steps, performed exactly in its order.

Upload (supabase/storage, `Uploader.canUpload` + `completeUpload`):
  1. permission test: INSERT (or, for upsert, INSERT ... ON CONFLICT DO UPDATE)
     of the object row as the caller's role and claims, WITHOUT metadata.size,
     then ROLLBACK: RLS on storage.objects decides. Older Storage API versions
     send no metadata; current ones send {mimetype, contentLength} when the
     request declared its length (`declared_length=True` here);
  2. the API checks the bucket's file_size_limit and allowed_mime_types
     itself (413 / 415) and stores the bytes;
  3. as a privileged role (service_role here, auth.uid() null), UPSERT the
     row with owner_id (and owner) = the caller's uid and metadata {size, mimetype, ...}.
     If this fails (e.g. the quota trigger raises 42501) the bytes are dropped.
Reads and lists run as the caller under RLS. Remove runs as the caller with
`storage.allow_delete_query` = 'true' and deletes only the rows RLS lets it see.

Errors surface as StorageApiError with the status the API puts in the
body's `statusCode`: a 42501 from the database becomes 403 with our message,
a duplicate path without upsert 409, any other SQLSTATE an opaque 500.
The workers issue replaces this with the real local transport.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors

from tests.helpers import act_as


class StorageApiError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message


@dataclass(frozen=True)
class Uploaded:
    object_id: uuid.UUID
    bucket_id: str
    name: str
    size: int


def _mime_allowed(mimetype: str, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    for pattern in allowed:
        if pattern.endswith("/*") and mimetype.startswith(pattern[:-1]):
            return True
        if pattern == mimetype:
            return True
    return False


def _restore_session(conn: psycopg.Connection[Any]) -> None:
    """A released savepoint keeps SET LOCAL values: go back to the connection's own role."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("reset role")
        conn.execute("select set_config('storage.allow_delete_query', '', true)")
        conn.execute(
            "select set_config('request.jwt.claims', '', true),"
            " set_config('search_path', '\"$user\", public', true)"
        )


def _db_error(exc: psycopg.Error) -> StorageApiError:
    if isinstance(exc, errors.InsufficientPrivilege):
        return StorageApiError(403, "Unauthorized", exc.diag.message_primary or str(exc))
    if isinstance(exc, errors.UniqueViolation):
        return StorageApiError(409, "Duplicate", "The resource already exists")
    return StorageApiError(500, "DatabaseError", "database error")


# Both steps write owner_id = the JWT sub and the deprecated uuid column owner = the same
# id (supabase/storage StorageKnexDB.createObject/upsertObject: owner only when the sub is a uuid).
UPSERT_SQL = (
    "insert into storage.objects (bucket_id, name, owner_id, owner, metadata, version)"
    " values (%s, %s, %s, %s::uuid, %s, %s)"
    " on conflict (bucket_id, name) do update set owner_id = excluded.owner_id, owner = excluded.owner,"
    " metadata = excluded.metadata, version = excluded.version, updated_at = now()"
    " returning id"
)
INSERT_SQL = (
    "insert into storage.objects (bucket_id, name, owner_id, owner, metadata, version)"
    " values (%s, %s, %s, %s::uuid, %s, %s) returning id"
)


def upload(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    bucket_id: str,
    name: str,
    size: int,
    mimetype: str,
    *,
    upsert: bool = False,
    declared_length: bool = False,
) -> Uploaded:
    """Upload `size` bytes as `user_id`; raises StorageApiError like the API would."""
    statement = UPSERT_SQL if upsert else INSERT_SQL
    version = str(uuid.uuid4())
    # (1) permission test as the caller, without a size, rolled back.
    probe = json.dumps({"mimetype": mimetype, "contentLength": size}) if declared_length else None
    try:
        with act_as(conn, user_id) as cur:
            cur.execute(statement, (bucket_id, name, str(user_id), str(user_id), probe, version))
    except psycopg.Error as exc:
        raise _db_error(exc) from None
    # (2) the API's own bucket checks.
    bucket = conn.execute(
        "select file_size_limit, allowed_mime_types from storage.buckets where id = %s", (bucket_id,)
    ).fetchone()
    if bucket is None:
        raise StorageApiError(404, "Bucket not found", "Bucket not found")
    size_limit, allowed = bucket
    if size_limit is not None and size > size_limit:
        raise StorageApiError(413, "Payload too large", "The object exceeded the maximum allowed size")
    if not _mime_allowed(mimetype, allowed):
        raise StorageApiError(415, "invalid_mime_type", f"mime type {mimetype} is not supported")
    # (3) privileged upsert with owner and metadata; on failure the bytes are removed.
    metadata = {
        "size": size,
        "mimetype": mimetype,
        "eTag": f'"{uuid.uuid4().hex}"',
        "cacheControl": "max-age=3600",
        "contentLength": size,
        "httpStatusCode": 200,
    }
    try:
        with act_as(conn, None, "service_role", rollback=False) as cur:
            row = cur.execute(
                UPSERT_SQL if upsert else INSERT_SQL,
                (bucket_id, name, str(user_id), str(user_id), json.dumps(metadata), version),
            ).fetchone()
    except psycopg.Error as exc:
        raise _db_error(exc) from None
    finally:
        _restore_session(conn)
    assert row is not None
    return Uploaded(row[0], bucket_id, name, size)


def download(
    conn: psycopg.Connection[Any], user_id: uuid.UUID | None, bucket_id: str, name: str
) -> uuid.UUID:
    """The object id if the caller may read it (RLS), else 400/404 'Object not found' as the API."""
    role = "authenticated" if user_id is not None else "anon"
    with act_as(conn, user_id, role) as cur:
        row = cur.execute(
            "select id from storage.objects where bucket_id = %s and name = %s", (bucket_id, name)
        ).fetchone()
    if row is None:
        raise StorageApiError(404, "not_found", "Object not found")
    return row[0]  # type: ignore[no-any-return]


def list_names(
    conn: psycopg.Connection[Any], user_id: uuid.UUID | None, bucket_id: str, prefix: str
) -> list[str]:
    role = "authenticated" if user_id is not None else "anon"
    with act_as(conn, user_id, role) as cur:
        rows = cur.execute(
            "select name from storage.objects where bucket_id = %s and name like %s order by name",
            (bucket_id, prefix + "%"),
        ).fetchall()
    return [r[0] for r in rows]


def remove(conn: psycopg.Connection[Any], user_id: uuid.UUID, bucket_id: str, names: list[str]) -> list[str]:
    """Delete as the caller (RLS decides); returns the names actually removed, like the API."""
    with act_as(conn, user_id, rollback=False) as cur:
        cur.execute("select set_config('storage.allow_delete_query', 'true', true)")
        rows = cur.execute(
            "delete from storage.objects where bucket_id = %s and name = any(%s) returning name",
            (bucket_id, names),
        ).fetchall()
    _restore_session(conn)
    return [r[0] for r in rows]


def storage_used(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> int:
    row = conn.execute("select storage_used from public.profiles where id = %s", (user_id,)).fetchone()
    assert row is not None
    return int(row[0])
