"""Supabase storage transport: the official `storage3` SDK against `<SUPABASE_URL>/storage/v1`.

Service calls send the service key; user calls send the user's JWT (the
Storage API then applies RLS). Downloads are streamed with the SDK's own
HTTP session (storage3's `download()` buffers the whole body) on the same
documented endpoint, `GET /storage/v1/object/<bucket>/<path>`.
"""

from __future__ import annotations

import builtins
import json
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from workers.platform.storage import (
    CHUNK_SIZE,
    SERVICE,
    Caller,
    ObjectInfo,
    Source,
    StorageError,
    UploadResult,
    iter_source,
    validate_key,
)


class SupabaseStorage:
    """StorageAdapter over storage3."""

    def __init__(self, supabase_url: str, service_key: str) -> None:
        self.base_url = supabase_url.rstrip("/") + "/storage/v1/"
        self.service_key = service_key
        self._clients: dict[str, SyncStorageClient] = {}

    def _client(self, caller: Caller) -> SyncStorageClient:
        if caller.role == "service_role":
            token = self.service_key
        elif caller.access_token:
            token = caller.access_token
        else:
            raise StorageError(
                400, "InvalidJWT", "a user call through Supabase Storage needs the user's token"
            )
        client = self._clients.get(token)
        if client is None:
            client = SyncStorageClient(
                self.base_url, {"apikey": self.service_key, "Authorization": f"Bearer {token}"}
            )
            self._clients[token] = client
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.session.close()
        self._clients.clear()

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
        validate_key(name)
        options: dict[str, Any] = {
            "content-type": content_type,
            "cache-control": cache_control,
            "upsert": "true" if upsert else "false",
        }
        # storage3 takes bytes or a path: spool other sources to a file so memory stays flat.
        client = self._client(caller).from_(bucket)
        with tempfile.TemporaryDirectory() as spool_dir:
            source: bytes | Path
            if isinstance(data, bytes):
                source, size = data, len(data)
            else:
                source = Path(spool_dir) / "upload"
                size = 0
                with open(source, "wb") as spool:
                    for chunk in iter_source(data):
                        spool.write(chunk)
                        size += len(chunk)
            try:
                client.upload(name, source, cast(Any, options))
            except StorageApiError as exc:
                raise _error(exc) from None
        return UploadResult(bucket, name, size, content_type, "")

    def download(self, bucket: str, name: str, *, caller: Caller = SERVICE) -> Iterator[bytes]:
        validate_key(name)
        client = self._client(caller)
        url = self.base_url + "object/" + urllib.parse.quote(f"{bucket}/{name}")
        request = client.session.build_request("GET", url, headers=dict(client._headers))
        response = client.session.send(request, stream=True)
        if response.status_code >= 400:
            body = response.read()
            response.close()
            raise _http_error(response.status_code, body)
        return _chunks(response)

    def list(
        self, bucket: str, prefix: str = "", *, caller: Caller = SERVICE, limit: int = 100, offset: int = 0
    ) -> list[ObjectInfo]:
        try:
            rows = self._client(caller).from_(bucket).list(prefix, {"limit": limit, "offset": offset})
        except StorageApiError as exc:
            raise _error(exc) from None
        return [
            ObjectInfo(
                r["name"], r.get("id"), r.get("metadata") or {}, r.get("updated_at"), r.get("created_at")
            )
            for r in rows
        ]

    def remove(
        self, bucket: str, names: builtins.list[str], *, caller: Caller = SERVICE
    ) -> builtins.list[str]:
        if not names:
            return []
        for name in names:
            validate_key(name)
        try:
            rows = self._client(caller).from_(bucket).remove(names)
        except StorageApiError as exc:
            raise _error(exc) from None
        return [str(r["name"]) for r in rows]

    def signed_url(self, bucket: str, name: str, expires_in: int, *, caller: Caller = SERVICE) -> str:
        validate_key(name)
        try:
            signed = self._client(caller).from_(bucket).create_signed_url(name, expires_in)
        except StorageApiError as exc:
            raise _error(exc) from None
        url = signed.get("signedURL") or signed.get("signedUrl")
        if not url:
            raise StorageError(404, "not_found", "Object not found")
        return str(url)


def _chunks(response: Any) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes(CHUNK_SIZE)
    finally:
        response.close()


def _error(exc: StorageApiError) -> StorageError:
    try:
        status = int(exc.status)
    except (TypeError, ValueError):
        status = 500
    return StorageError(status, str(exc.code), str(exc.message))


def _http_error(status: int, body: bytes) -> StorageError:
    try:
        data = json.loads(body)
        return StorageError(int(data.get("statusCode", status)), str(data["error"]), str(data["message"]))
    except (ValueError, KeyError, TypeError):
        return StorageError(status, "InternalError", body.decode("utf-8", "replace")[:200] or "error")


__all__ = ["SupabaseStorage"]
