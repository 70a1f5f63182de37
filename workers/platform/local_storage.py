"""Local storage transport: object rows in Postgres, bytes in `<data dir>/storage/<bucket>/<name>`.

It follows the Storage API's upload path (DESIGN.md "How the Storage API
uploads") so RLS policies and quota triggers behave as on hosted Supabase:

1. permission test: INSERT the row as the caller (role + claims), without
   metadata, then roll back: RLS decides;
2. the bucket's file_size_limit (413 "Payload too large") and
   allowed_mime_types (415) are checked by this code, not the database,
   while the bytes stream to a temporary file;
3. as service_role, upsert the row with owner_id = the caller's uid and the
   metadata (size, mimetype, eTag, ...); the temporary file is renamed into
   place inside that transaction. If the row fails (a quota trigger raising
   42501, say), the bytes are deleted and the old object, if any, is kept.

Reads, lists and removes run as the caller under RLS; a remove deletes rows
(with `storage.allow_delete_query`) and bytes together.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jwt
import psycopg
from psycopg import errors

from workers.db.impersonate import act_as
from workers.platform.storage import (
    CHUNK_SIZE,
    SERVICE,
    Caller,
    ObjectInfo,
    Source,
    StorageError,
    UploadResult,
    iter_source,
    mime_allowed,
    validate_key,
)

SIGN_PATH = "/storage/v1/object/sign/"


class LocalStorage:
    """StorageAdapter over psycopg (rows, RLS) and a directory (bytes)."""

    def __init__(self, database_url: str, root: Path, *, jwt_secret: str, public_url: str) -> None:
        self.database_url = database_url
        self.root = Path(root)
        self.jwt_secret = jwt_secret
        self.public_url = public_url.rstrip("/")
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()

    # -- plumbing -----------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.database_url, application_name="backline-storage", prepare_threshold=None
            )
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._conn = None

    def path_of(self, bucket: str, name: str) -> Path:
        validate_key(bucket)
        validate_key(name)
        return self.root / bucket / name

    def _bucket(self, conn: psycopg.Connection[Any], bucket: str) -> tuple[int | None, list[str] | None]:
        row = conn.execute(
            "select file_size_limit, allowed_mime_types from storage.buckets where id = %s", (bucket,)
        ).fetchone()
        conn.rollback()
        if row is None:
            raise StorageError(404, "NoSuchBucket", "Bucket not found")
        return row[0], row[1]

    # -- upload ---------------------------------------------------------------

    def upload(
        self,
        bucket: str,
        name: str,
        data: Source,
        *,
        content_type: str,
        caller: Caller = SERVICE,
        upsert: bool = False,
        cache_control: str = "3600",
    ) -> UploadResult:
        final = self.path_of(bucket, name)
        with self._lock:
            conn = self._connection()
            size_limit, allowed = self._bucket(conn, bucket)
            self._permission_test(conn, bucket, name, caller, upsert)
            if not mime_allowed(content_type, allowed):
                raise StorageError(415, "InvalidMimeType", f"mime type {content_type} is not supported")
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.parent / f".{final.name}.{uuid.uuid4().hex}.part"
            try:
                size, etag = _write(temp, data, size_limit)
                self._record(conn, bucket, name, caller, content_type, cache_control, size, etag, temp, final)
            except BaseException:
                conn.rollback()
                temp.unlink(missing_ok=True)
                raise
        return UploadResult(bucket, name, size, content_type, etag)

    def _permission_test(
        self, conn: psycopg.Connection[Any], bucket: str, name: str, caller: Caller, upsert: bool
    ) -> None:
        """Step 1: the caller's INSERT (or, for an upsert over an existing object, UPDATE), rolled back."""
        exists_row = conn.execute(
            "select 1 from storage.objects where bucket_id = %s and name = %s", (bucket, name)
        ).fetchone()
        conn.rollback()
        owner = str(caller.user_id) if caller.user_id else None
        try:
            with act_as(conn, caller.user_id, caller.role) as cur:
                if exists_row and upsert:
                    cur.execute(
                        "update storage.objects set owner_id = %s where bucket_id = %s and name = %s",
                        (owner, bucket, name),
                    )
                    if cur.rowcount == 0:
                        raise errors.InsufficientPrivilege("new row violates row-level security policy")
                else:
                    cur.execute(
                        "insert into storage.objects (bucket_id, name, owner_id) values (%s, %s, %s)",
                        (bucket, name, owner),
                    )
        except errors.UniqueViolation:
            conn.rollback()
            raise StorageError(409, "Duplicate", "The resource already exists") from None
        except errors.InsufficientPrivilege as exc:
            conn.rollback()
            raise StorageError(403, "Unauthorized", _message(exc)) from None
        finally:
            conn.rollback()

    def _record(
        self,
        conn: psycopg.Connection[Any],
        bucket: str,
        name: str,
        caller: Caller,
        content_type: str,
        cache_control: str,
        size: int,
        etag: str,
        temp: Path,
        final: Path,
    ) -> None:
        """Step 3: upsert the row as service_role, move the bytes in place, commit."""
        now = datetime.now(UTC)
        metadata = {
            "eTag": f'"{etag}"',
            "size": size,
            "mimetype": content_type,
            "cacheControl": f"max-age={cache_control}",
            "lastModified": format_datetime(now, usegmt=True),
            "contentLength": size,
            "httpStatusCode": 200,
        }
        owner = str(caller.user_id) if caller.user_id else None
        try:
            with act_as(conn, None, "service_role", rollback=False) as cur:
                cur.execute(
                    "insert into storage.objects (bucket_id, name, owner_id, metadata, version)"
                    " values (%s, %s, %s, %s, %s)"
                    " on conflict (bucket_id, name) do update set owner_id = excluded.owner_id,"
                    " metadata = excluded.metadata, version = excluded.version, updated_at = now()",
                    (bucket, name, owner, json.dumps(metadata), str(uuid.uuid4())),
                )
                os.replace(temp, final)
        except errors.InsufficientPrivilege as exc:
            raise StorageError(403, "Unauthorized", _message(exc)) from None
        except psycopg.Error as exc:
            raise StorageError(500, "DatabaseError", "database error") from exc

    # -- read -----------------------------------------------------------------

    def _visible(self, bucket: str, name: str, caller: Caller) -> bool:
        with self._lock:
            conn = self._connection()
            with act_as(conn, caller.user_id, caller.role) as cur:
                row = cur.execute(
                    "select 1 from storage.objects where bucket_id = %s and name = %s", (bucket, name)
                ).fetchone()
        return row is not None

    def download(self, bucket: str, name: str, *, caller: Caller = SERVICE) -> Iterator[bytes]:
        path = self.path_of(bucket, name)
        if not self._visible(bucket, name, caller) or not path.exists():
            raise StorageError(404, "not_found", "Object not found")
        return _read_chunks(path)

    def list(
        self, bucket: str, prefix: str = "", *, caller: Caller = SERVICE, limit: int = 100, offset: int = 0
    ) -> list[ObjectInfo]:
        """One folder level, like the Storage API's list: files, and sub-folders as entries without id."""
        folder = prefix.strip("/")
        start = f"{folder}/" if folder else ""
        with self._lock:
            conn = self._connection()
            with act_as(conn, caller.user_id, caller.role) as cur:
                rows = cur.execute(
                    "with entries as ("
                    "  select split_part(substr(name, length(%(start)s) + 1), '/', 1) as entry,"
                    "         position('/' in substr(name, length(%(start)s) + 1)) > 0 as is_folder,"
                    "         id, metadata, created_at, updated_at"
                    "    from storage.objects"
                    "   where bucket_id = %(bucket)s and left(name, length(%(start)s)) = %(start)s)"
                    " select entry, bool_or(is_folder) as folder,"
                    "        (array_agg(id::text) filter (where not is_folder))[1],"
                    "        (array_agg(metadata) filter (where not is_folder))[1],"
                    "        max(created_at)::text, max(updated_at)::text"
                    "   from entries group by entry order by entry limit %(limit)s offset %(offset)s",
                    {"start": start, "bucket": bucket, "limit": limit, "offset": offset},
                ).fetchall()
        out = []
        for entry, is_folder, oid, metadata, created, updated in rows:
            if is_folder:
                out.append(ObjectInfo(name=entry))
            else:
                out.append(ObjectInfo(entry, oid, metadata or {}, updated, created))
        return out

    # -- remove ---------------------------------------------------------------

    def remove(
        self, bucket: str, names: builtins.list[str], *, caller: Caller = SERVICE
    ) -> builtins.list[str]:
        """Delete rows (as the caller, RLS decides) and their bytes together; returns removed names."""
        for name in names:
            validate_key(name)
        if not names:
            return []
        with self._lock:
            conn = self._connection()
            try:
                with act_as(conn, caller.user_id, caller.role, rollback=False) as cur:
                    cur.execute("select set_config('storage.allow_delete_query', 'true', true)")
                    removed = [
                        r[0]
                        for r in cur.execute(
                            "delete from storage.objects where bucket_id = %s and name = any(%s)"
                            " returning name",
                            (bucket, names),
                        ).fetchall()
                    ]
                    for name in removed:
                        self.path_of(bucket, name).unlink(missing_ok=True)
            except errors.InsufficientPrivilege as exc:
                raise StorageError(403, "Unauthorized", _message(exc)) from None
        for name in removed:
            _prune_empty_dirs(self.path_of(bucket, name).parent, self.root / bucket)
        return removed

    # -- signed URLs ------------------------------------------------------------

    def signed_url(self, bucket: str, name: str, expires_in: int, *, caller: Caller = SERVICE) -> str:
        """A URL carrying a JWT {url, iat, exp} signed with the project secret, as Storage signs them."""
        if expires_in < 1:
            raise StorageError(400, "InvalidParameter", "expiresIn must be a positive number of seconds")
        self.path_of(bucket, name)
        if not self._visible(bucket, name, caller):
            raise StorageError(404, "not_found", "Object not found")
        now = int(time.time())
        token = jwt.encode(
            {"url": f"{bucket}/{name}", "iat": now, "exp": now + expires_in},
            self.jwt_secret,
            algorithm="HS256",
        )
        quoted = urllib.parse.quote(f"{bucket}/{name}")
        return f"{self.public_url}{SIGN_PATH}{quoted}?token={token}"

    def verify_signed_url(self, url: str) -> tuple[str, str]:
        """(bucket, name) of a signed URL made by this transport; StorageError if forged or expired."""
        return verify_signed_url(url, self.jwt_secret)


def verify_signed_url(url: str, secret: str) -> tuple[str, str]:
    parsed = urllib.parse.urlsplit(url)
    if SIGN_PATH not in parsed.path:
        raise StorageError(400, "InvalidSignature", "Invalid signature")
    target = urllib.parse.unquote(parsed.path.split(SIGN_PATH, 1)[1])
    token = dict(urllib.parse.parse_qsl(parsed.query)).get("token")
    if not token:
        raise StorageError(400, "InvalidSignature", "Invalid signature")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "url"]})
    except jwt.ExpiredSignatureError:
        raise StorageError(400, "ExpiredToken", "The provided token has expired.") from None
    except jwt.PyJWTError:
        raise StorageError(400, "InvalidSignature", "Invalid signature") from None
    if claims["url"] != target:
        raise StorageError(400, "InvalidSignature", "Invalid signature")
    bucket, _, name = target.partition("/")
    return bucket, name


def _write(temp: Path, data: Source, size_limit: int | None) -> tuple[int, str]:
    """Stream a source to `temp`, enforcing the bucket size limit as bytes arrive."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(temp, "wb") as out:
        for chunk in iter_source(data):
            size += len(chunk)
            if size_limit is not None and size > size_limit:
                raise StorageError(413, "Payload too large", "The object exceeded the maximum allowed size")
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


def _prune_empty_dirs(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _message(exc: psycopg.Error) -> str:
    diag = exc.diag.message_primary if exc.diag else None
    return diag or str(exc).splitlines()[0]
