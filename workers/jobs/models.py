"""The job row as the queue returns it (from psycopg or from PostgREST JSON)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "dead")


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class Job:
    """One row of public.jobs."""

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    owner_id: uuid.UUID | None
    priority: int
    run_after: datetime | None
    attempts: int
    max_attempts: int
    status: str
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    result: Any
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        job_id = _uuid(row["id"])
        assert job_id is not None
        return cls(
            id=job_id,
            kind=str(row["kind"]),
            payload=dict(row.get("payload") or {}),
            owner_id=_uuid(row.get("owner_id")),
            priority=int(row.get("priority") or 0),
            run_after=_ts(row.get("run_after")),
            attempts=int(row.get("attempts") or 0),
            max_attempts=int(row.get("max_attempts") or 1),
            status=str(row["status"]),
            locked_by=row.get("locked_by"),
            locked_until=_ts(row.get("locked_until")),
            last_error=row.get("last_error"),
            result=row.get("result"),
            created_at=_ts(row.get("created_at")),
            updated_at=_ts(row.get("updated_at")),
            finished_at=_ts(row.get("finished_at")),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Schedule:
    """One row of private.cron_schedules."""

    name: str
    schedule: str
    job_kind: str
    payload: dict[str, Any]
    description: str
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: uuid.UUID | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Schedule:
        return cls(
            name=str(row["name"]),
            schedule=str(row["schedule"]),
            job_kind=str(row["job_kind"]),
            payload=dict(row.get("payload") or {}),
            description=str(row.get("description") or ""),
            enabled=bool(row.get("enabled", True)),
            next_run_at=_ts(row.get("next_run_at")),
            last_run_at=_ts(row.get("last_run_at")),
            last_job_id=_uuid(row.get("last_job_id")),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
