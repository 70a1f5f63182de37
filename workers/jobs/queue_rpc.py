"""The queue over PostgREST RPC: only SUPABASE_URL and the service key, no database URL.

Calls the public service-role wrappers (/rest/v1/rpc/job_claim, ...) with the
official `postgrest` client; they forward to the same private.job_* functions
as SqlQueue, with the same argument names.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

from workers.errors import DatabaseUnavailable
from workers.jobs.errors import LeaseLost, QueueError
from workers.jobs.models import Job, Schedule


def _interval(seconds: float) -> str:
    return f"{seconds:g} seconds"


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class RpcQueue:
    transport = "rpc"

    def __init__(self, supabase_url: str, service_key: str, *, timeout: float = 30.0) -> None:
        self.database_url: str | None = None
        self.base_url = supabase_url.rstrip("/") + "/rest/v1"
        self._http = httpx.Client(timeout=timeout)
        self._client = SyncPostgrestClient(
            self.base_url,
            headers={"apikey": service_key, "Authorization": f"Bearer {service_key}"},
            http_client=self._http,
        )

    def _call(self, fn: str, params: dict[str, Any]) -> Any:
        try:
            return self._client.rpc(fn, params).execute().data
        except APIError as exc:
            message = exc.message or str(exc)
            if exc.code in ("PT409", "55000"):  # lease lost (55000: before migration 20261206090100)
                raise LeaseLost(message) from None
            raise QueueError(f"{fn}: {message}") from None
        except httpx.HTTPError as exc:
            raise DatabaseUnavailable(f"cannot reach {self.base_url}: {exc}") from None

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        owner: uuid.UUID | None = None,
        run_after: datetime | None = None,
        priority: int = 0,
    ) -> uuid.UUID:
        params: dict[str, Any] = {
            "p_kind": kind,
            "p_payload": payload,
            "p_owner": str(owner) if owner else None,
            "p_priority": priority,
        }
        if run_after is not None:
            params["p_run_after"] = run_after.isoformat()
        return uuid.UUID(str(self._call("job_enqueue", params)))

    def claim(self, worker: str, kinds: list[str] | None, limit: int, lease_seconds: float) -> list[Job]:
        data = self._call(
            "job_claim",
            {"p_worker": worker, "p_kinds": kinds, "p_limit": limit, "p_lease": _interval(lease_seconds)},
        )
        return [Job.from_row(r) for r in data or []]

    def claim_id(self, job_id: uuid.UUID, worker: str, lease_seconds: float) -> Job | None:
        data = self._call(
            "job_claim_id", {"p_id": str(job_id), "p_worker": worker, "p_lease": _interval(lease_seconds)}
        )
        return Job.from_row(data[0]) if data else None

    def complete(self, job_id: uuid.UUID, worker: str, result: dict[str, Any] | None) -> None:
        self._call("job_complete", {"p_id": str(job_id), "p_worker": worker, "p_result": result})

    def fail(self, job_id: uuid.UUID, worker: str, error: str, retry: bool = True) -> str:
        return str(
            self._call(
                "job_fail", {"p_id": str(job_id), "p_worker": worker, "p_error": error, "p_retry": retry}
            )
        )

    def complete_many(
        self, worker: str, results: Sequence[tuple[uuid.UUID, dict[str, Any] | None]]
    ) -> set[uuid.UUID]:
        if not results:
            return set()
        data = self._call(
            "job_complete_many",
            {
                "p_worker": worker,
                "p_ids": [str(job_id) for job_id, _ in results],
                "p_results": [result for _, result in results],
            },
        )
        return {uuid.UUID(str(v)) for v in data or []}

    def fail_many(self, worker: str, failures: Sequence[tuple[uuid.UUID, str, bool]]) -> dict[uuid.UUID, str]:
        if not failures:
            return {}
        data = self._call(
            "job_fail_many",
            {
                "p_worker": worker,
                "p_ids": [str(f[0]) for f in failures],
                "p_errors": [f[1] for f in failures],
                "p_retry": [f[2] for f in failures],
            },
        )
        return {uuid.UUID(str(r["id"])): str(r["status"]) for r in data or []}

    def report_and_claim(
        self,
        worker: str,
        results: Sequence[tuple[uuid.UUID, dict[str, Any] | None]],
        failures: Sequence[tuple[uuid.UUID, str, bool]],
        kinds: list[str] | None,
        limit: int,
        lease_seconds: float,
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, str], list[Job]]:
        recorded = self.complete_many(worker, results)
        statuses = self.fail_many(worker, failures)
        claimed = self.claim(worker, kinds, limit, lease_seconds) if limit > 0 else []
        return recorded, statuses, claimed

    def heartbeat(self, job_id: uuid.UUID, worker: str, lease_seconds: float) -> None:
        self._call(
            "job_heartbeat", {"p_id": str(job_id), "p_worker": worker, "p_lease": _interval(lease_seconds)}
        )

    def release(self, job_id: uuid.UUID, worker: str) -> None:
        self._call("job_release", {"p_id": str(job_id), "p_worker": worker})

    def retry(self, job_id: uuid.UUID) -> None:
        self._call("job_retry", {"p_id": str(job_id)})

    def get(self, job_id: uuid.UUID) -> Job | None:
        try:
            data = self._client.from_("jobs").select("*").eq("id", str(job_id)).execute().data
        except APIError as exc:
            raise QueueError(exc.message or str(exc)) from None
        return Job.from_row(data[0]) if data else None  # type: ignore[arg-type]

    def list_jobs(self, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[Job]:
        query = self._client.from_("jobs").select("*")
        if status:
            query = query.eq("status", status)
        if kind:
            query = query.eq("kind", kind)
        try:
            data = query.order("created_at", desc=True).limit(limit).execute().data
        except APIError as exc:
            raise QueueError(exc.message or str(exc)) from None
        return [Job.from_row(r) for r in data]  # type: ignore[arg-type]

    def cron_list(self) -> list[Schedule]:
        return [Schedule.from_row(r) for r in self._call("cron_list", {}) or []]

    def cron_fire(self, name: str, due: datetime, next_run: datetime) -> uuid.UUID | None:
        value = self._call("cron_fire", {"p_name": name, "p_due": _ts(due), "p_next": _ts(next_run)})
        return uuid.UUID(str(value)) if value else None

    def cron_set_next(self, name: str, expected: datetime | None, next_run: datetime) -> bool:
        return bool(
            self._call(
                "cron_set_next", {"p_name": name, "p_expected": _ts(expected), "p_next": _ts(next_run)}
            )
        )

    def cron_run_now(self, name: str) -> uuid.UUID:
        return uuid.UUID(str(self._call("cron_run_now", {"p_name": name})))

    def cron_set(self, name: str, schedule: str | None, enabled: bool | None = None) -> Schedule:
        data = self._call("cron_set_schedule", {"p_name": name, "p_schedule": schedule, "p_enabled": enabled})
        return Schedule.from_row((data or [{}])[0])

    def list_cleanups(self) -> dict[str, str]:
        return {r["task"]: r["description"] for r in self._call("list_cleanups", {}) or []}

    def run_cleanup(self, task: str, batch_size: int, dry_run: bool) -> list[str]:
        data = self._call("run_cleanup", {"p_task": task, "p_batch_size": batch_size, "p_dry_run": dry_run})
        return [str(r["item"]) for r in data or []]

    def close(self) -> None:
        self._http.close()
