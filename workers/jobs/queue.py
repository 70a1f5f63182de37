"""The queue's client interface and how a process picks its transport.

Two transports, one contract (DESIGN principle 4): SqlQueue calls the
private.* functions over a database connection; RpcQueue calls their public
service-role wrappers over PostgREST (/rest/v1/rpc/<name>) with only
SUPABASE_URL and the service key. Both take and return the same types.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from workers.db.connect import resolve_url
from workers.errors import BacklineError
from workers.jobs.models import Job, Schedule
from workers.settings import Settings


class Queue(Protocol):
    """Calls of the SQL queue. Every call is its own short transaction."""

    transport: str
    database_url: str | None

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        owner: uuid.UUID | None = None,
        run_after: datetime | None = None,
        priority: int = 0,
    ) -> uuid.UUID: ...

    def claim(self, worker: str, kinds: list[str] | None, limit: int, lease_seconds: float) -> list[Job]: ...

    def claim_id(self, job_id: uuid.UUID, worker: str, lease_seconds: float) -> Job | None: ...

    def complete(self, job_id: uuid.UUID, worker: str, result: dict[str, Any] | None) -> None: ...

    def fail(self, job_id: uuid.UUID, worker: str, error: str, retry: bool = True) -> str: ...

    def complete_many(
        self, worker: str, results: Sequence[tuple[uuid.UUID, dict[str, Any] | None]]
    ) -> set[uuid.UUID]:
        """Record many successes in one statement; returns the ids recorded. An id missing from
        the answer had lost its lease (unchanged); the rest of the batch is recorded anyway."""
        ...

    def fail_many(self, worker: str, failures: Sequence[tuple[uuid.UUID, str, bool]]) -> dict[uuid.UUID, str]:
        """Record many failed attempts (id, error, retry?) in one statement; returns the new
        status (queued, dead, failed) per id recorded. A missing id had lost its lease."""
        ...

    def report_and_claim(
        self,
        worker: str,
        results: Sequence[tuple[uuid.UUID, dict[str, Any] | None]],
        failures: Sequence[tuple[uuid.UUID, str, bool]],
        kinds: list[str] | None,
        limit: int,
        lease_seconds: float,
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, str], list[Job]]:
        """complete_many, fail_many, then claim up to `limit` (0: none). SqlQueue does it in one
        transaction and round trip; RpcQueue in one call each."""
        ...

    def heartbeat(self, job_id: uuid.UUID, worker: str, lease_seconds: float) -> None: ...

    def release(self, job_id: uuid.UUID, worker: str) -> None: ...

    def retry(self, job_id: uuid.UUID) -> None: ...

    def get(self, job_id: uuid.UUID) -> Job | None: ...

    def list_jobs(
        self, status: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Job]: ...

    def cron_list(self) -> list[Schedule]: ...

    def cron_fire(self, name: str, due: datetime, next_run: datetime) -> uuid.UUID | None: ...

    def cron_set_next(self, name: str, expected: datetime | None, next_run: datetime) -> bool: ...

    def cron_run_now(self, name: str) -> uuid.UUID: ...

    def cron_set(self, name: str, schedule: str | None, enabled: bool | None = None) -> Schedule: ...

    def list_cleanups(self) -> dict[str, str]: ...

    def run_cleanup(self, task: str, batch_size: int, dry_run: bool) -> list[str]: ...

    def close(self) -> None: ...


def uses_rpc(settings: Settings, database_url: str | None) -> bool:
    """True when there is no database URL but a Supabase project URL and service key."""
    return not (database_url or settings.database_url) and bool(
        settings.supabase_url and settings.supabase_service_role_key
    )


def open_queue(settings: Settings, database_url: str | None = None, *, pool_size: int = 4) -> Queue:
    """The queue client for this configuration.

    A database URL (option or DATABASE_URL) wins; otherwise SUPABASE_URL + the
    service key select the RPC transport; otherwise the embedded server.
    """
    if uses_rpc(settings, database_url):
        from workers.jobs.queue_rpc import RpcQueue

        assert settings.supabase_url and settings.supabase_service_role_key
        return RpcQueue(settings.supabase_url, settings.supabase_service_role_key)
    from workers.jobs.queue_sql import SqlQueue

    url = resolve_url(settings, database_url)
    return SqlQueue(url, pool_size=pool_size)


def require_kind_handlers(kinds: list[str], known: set[str]) -> None:
    unknown = sorted(set(kinds) - known)
    if unknown:
        raise BacklineError(
            f"no handler registered for job kind(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
