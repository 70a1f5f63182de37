"""What the export handlers need from the job runtime's JobContext (workers/jobs/context.py).

A structural type, so this package does not import the runtime: any object
with these attributes (the real JobContext, or one built in a test) works.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from workers.errors import BacklineError
from workers.jobs.errors import PermanentJobError
from workers.settings import Settings


class PermanentError(BacklineError, PermanentJobError):
    """Retrying cannot help (bad payload, unknown user, not allowed): the job fails at once."""


class InvalidPayload(PermanentError, ValueError):
    """The job payload is missing a field or malformed."""


class NotAllowed(PermanentError, PermissionError):
    """A user's job asked to act for someone else."""


class HandlerContext(Protocol):
    @property
    def job_id(self) -> uuid.UUID: ...

    @property
    def owner_id(self) -> uuid.UUID | None: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def database_url(self) -> str | None: ...

    @property
    def heartbeat(self) -> Callable[[], None]: ...


def payload_uuid(payload: dict[str, object], key: str, fallback: uuid.UUID | None = None) -> uuid.UUID:
    """A uuid from the job payload (or the job owner), with a readable error when missing or malformed."""
    value = payload.get(key, fallback)
    if value is None:
        raise InvalidPayload(f"payload needs {key!r} (a uuid)")
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidPayload(f"payload {key!r} must be a uuid, got {value!r}") from None


class CleanupContextLike(Protocol):
    """The runner's CleanupContext (workers/cleanup/tasks.py): settings and the database URL."""

    @property
    def settings(self) -> Settings: ...

    @property
    def database_url(self) -> str | None: ...


def require_database_url(settings: Settings, database_url: str | None) -> str:
    """The database to read the catalog from. The local transport may start the embedded server;
    a worker on hosted Supabase over RPC only (no DATABASE_URL) cannot export or erase."""
    from workers.db.connect import resolve_url, validate_url
    from workers.platform.factory import transport_for

    url = database_url or settings.database_url
    if url:
        validate_url(url)
        return url
    if transport_for(settings) == "supabase":
        raise PermanentError("this job needs a direct database connection: set DATABASE_URL")
    return resolve_url(settings, None)
