"""What a job handler receives: the JobContext and the Handler type."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.settings import Settings


@dataclass(frozen=True)
class JobContext:
    """Everything a handler may use besides its payload.

    heartbeat() renews the lease now (the runtime also renews it in the
    background); should_stop() turns true when the worker is shutting down past
    its drain time or lost the lease: a long handler checks it between steps and
    raises JobInterrupted (workers.jobs.errors) to hand the job back.
    database_url is None when the worker talks to Supabase over RPC only.
    """

    job_id: uuid.UUID
    kind: str
    owner_id: uuid.UUID | None
    attempt: int
    settings: Settings
    database_url: str | None
    heartbeat: Callable[[], None]
    should_stop: Callable[[], bool]


Handler = Callable[[JobContext, dict[str, Any]], dict[str, Any] | None]
