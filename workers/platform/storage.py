"""The storage contract workers use, whatever moves the bytes (local directory or Supabase Storage).

Callers say who they act for (`Caller`): the local transport applies RLS for
that role and claims exactly as the Storage API does; the Supabase transport
sends that caller's token. Errors carry the Storage API's HTTP status, error
code and message (`StorageError`).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from workers.errors import BacklineError

CHUNK_SIZE = 64 * 1024


@dataclass(frozen=True)
class Caller:
    """Who a storage call acts for: a user (role authenticated/anon) or the service role.

    `access_token` is the user's JWT; the Supabase transport needs it for user
    callers (the local transport builds the claims itself).
    """

    user_id: uuid.UUID | None = None
    role: str = "authenticated"
    access_token: str | None = None

    @classmethod
    def service(cls) -> Caller:
        return cls(None, "service_role")

    @classmethod
    def user(cls, user_id: uuid.UUID | str, access_token: str | None = None) -> Caller:
        return cls(uuid.UUID(str(user_id)), "authenticated", access_token)


SERVICE = Caller.service()


class StorageError(BacklineError):
    """A Storage API error: HTTP status (413, 415, 403, 404, 409, ...), error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"storage: {message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ObjectInfo:
    """One entry of a listing; `is_folder` entries have no id or metadata (as in the Storage API)."""

    name: str
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    updated_at: str | None = None
    created_at: str | None = None

    @property
    def is_folder(self) -> bool:
        return self.id is None

    @property
    def size(self) -> int:
        return int(self.metadata.get("size") or 0)


@dataclass(frozen=True)
class UploadResult:
    bucket: str
    name: str
    size: int
    mimetype: str
    etag: str


Source = bytes | IO[bytes] | Iterable[bytes]


class StorageAdapter(Protocol):
    """Upload, download (streamed), list, remove and sign objects of a bucket."""

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
    ) -> UploadResult: ...

    def download(self, bucket: str, name: str, *, caller: Caller = SERVICE) -> Iterator[bytes]: ...

    def list(
        self, bucket: str, prefix: str = "", *, caller: Caller = SERVICE, limit: int = 100, offset: int = 0
    ) -> list[ObjectInfo]: ...

    def remove(
        self, bucket: str, names: builtins.list[str], *, caller: Caller = SERVICE
    ) -> builtins.list[str]: ...

    def signed_url(self, bucket: str, name: str, expires_in: int, *, caller: Caller = SERVICE) -> str: ...

    def close(self) -> None: ...


def iter_source(data: Source) -> Iterator[bytes]:
    """Chunks of an upload source without reading a file-like source into memory."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
        return
    read = getattr(data, "read", None)
    if read is not None:
        while chunk := read(CHUNK_SIZE):
            yield chunk
        return
    yield from data


def validate_key(name: str) -> None:
    """Reject object names the Storage API rejects (InvalidKey) or that could escape a directory."""
    parts = name.split("/")
    if (
        not name
        or len(name) > 1024
        or name.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in name
        or any(ord(c) < 32 for c in name)
    ):
        raise StorageError(400, "InvalidKey", f"Invalid key: {name}")


def mime_allowed(mimetype: str, allowed: list[str] | None) -> bool:
    """The Storage API's check: exact type or a `type/*` wildcard; no list allows everything."""
    if not allowed:
        return True
    base = mimetype.split(";")[0].strip().lower()
    for pattern in allowed:
        pattern = pattern.strip().lower()
        if pattern == base or (pattern.endswith("/*") and base.startswith(pattern[:-1])):
            return True
    return False
