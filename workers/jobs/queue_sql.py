"""The queue over a database connection: calls the private.job_* functions."""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from workers.db.connect import CONNECT_TIMEOUT_SECONDS, first_line, redact
from workers.errors import DatabaseUnavailable
from workers.jobs.errors import LeaseLost, QueueError
from workers.jobs.models import Job, Schedule
from workers.jobs.wakeup import listen_works

JOB_COLUMNS = (
    "id, kind, payload, owner_id, priority, run_after, attempts, max_attempts, status, locked_by,"
    " locked_until, last_error, result, created_at, updated_at, finished_at"
)


RECONNECT_SECONDS = 2.0
CONNECTION_WAIT_SECONDS = 5.0
# A pooled connection idle longer than this is tested (an empty query) before it is handed out.
CHECK_IDLE_SECONDS = 1.0


class SqlQueue:
    """Thread-safe: a small pool of autocommit connections, one short transaction per call."""

    transport = "sql"

    def __init__(self, database_url: str, *, pool_size: int = 4) -> None:
        self.database_url: str | None = database_url
        # When each pooled connection last answered a query.
        self._answered: weakref.WeakKeyDictionary[psycopg.Connection[dict[str, Any]], float] = (
            weakref.WeakKeyDictionary()
        )
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            database_url,
            min_size=1,
            max_size=max(pool_size, 1),
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "application_name": "backline-worker",
                # Server-side prepared statements from the first call of each query (the queue
                # repeats a handful of them); none through a transaction pooler (port 6543), which
                # cannot keep a statement prepared on one backend for the next transaction.
                "prepare_threshold": 0 if listen_works(database_url) else None,
            },
            connection_class=psycopg.Connection[dict[str, Any]],
            # After a database restart the pooled connections are dead: test one that has been
            # idle for a while when it is handed out (an empty query) instead of failing the call
            # that gets it. One that answered within CHECK_IDLE_SECONDS is handed out as it is:
            # testing it too cost a round trip per queue call (half the calls of a busy worker).
            check=self._check,
            # After an outage the pool reconnects in the background with exponential backoff
            # and a waiting call is not woken when it gives up. So: stop a reconnect attempt
            # after a few seconds and let a waiting call fail after a few seconds more; the
            # next call starts a fresh attempt. The worker is back within seconds of the database.
            reconnect_timeout=RECONNECT_SECONDS,
            timeout=CONNECTION_WAIT_SECONDS,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS + 5)
        except psycopg_pool_timeout() as exc:
            self._pool.close()
            raise DatabaseUnavailable(f"cannot reach {redact(database_url)}: {first_line(exc)}") from None

    def _check(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        if time.monotonic() - self._answered.get(conn, 0.0) >= CHECK_IDLE_SECONDS:
            ConnectionPool.check_connection(conn)
            self._answered[conn] = time.monotonic()

    def _rows(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        try:
            with self._pool.connection() as conn:
                rows = conn.execute(query, params).fetchall()
                self._answered[conn] = time.monotonic()
                return rows
        except psycopg.DatabaseError as exc:
            # PT409: the lease was lost (or the job is not retryable), PT404: no such job,
            # schedule or task. 55000 and P0002 are what databases migrated before
            # 20261206090100 (security_http_statuses) raise for the same.
            if exc.sqlstate in ("PT409", "55000"):
                raise LeaseLost(first_line(exc)) from None
            if exc.sqlstate in ("PT404", "P0002", "P0001", "22023"):
                raise QueueError(first_line(exc)) from None
            raise

    def _value(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self._rows(query, params)
        return next(iter(rows[0].values())) if rows else None

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        owner: uuid.UUID | None = None,
        run_after: datetime | None = None,
        priority: int = 0,
    ) -> uuid.UUID:
        value = self._value(
            "select private.job_enqueue(%s, %s, %s, coalesce(%s, now()), %s)",
            (kind, Jsonb(payload), owner, run_after, priority),
        )
        return uuid.UUID(str(value))

    def claim(self, worker: str, kinds: list[str] | None, limit: int, lease_seconds: float) -> list[Job]:
        return [Job.from_row(r) for r in self._rows(*_claim(worker, kinds, limit, lease_seconds))]

    def claim_id(self, job_id: uuid.UUID, worker: str, lease_seconds: float) -> Job | None:
        rows = self._rows(
            "select * from private.job_claim_id(%s, %s, %s)",
            (job_id, worker, timedelta(seconds=lease_seconds)),
        )
        return Job.from_row(rows[0]) if rows else None

    def complete(self, job_id: uuid.UUID, worker: str, result: dict[str, Any] | None) -> None:
        self._rows(
            "select private.job_complete(%s, %s, %s)",
            (job_id, worker, Jsonb(result) if result is not None else None),
        )

    def fail(self, job_id: uuid.UUID, worker: str, error: str, retry: bool = True) -> str:
        return str(self._value("select private.job_fail(%s, %s, %s, %s)", (job_id, worker, error, retry)))

    def complete_many(
        self, worker: str, results: Sequence[tuple[uuid.UUID, dict[str, Any] | None]]
    ) -> set[uuid.UUID]:
        if not results:
            return set()
        return {r["id"] for r in self._rows(*_complete_many(worker, results))}

    def fail_many(self, worker: str, failures: Sequence[tuple[uuid.UUID, str, bool]]) -> dict[uuid.UUID, str]:
        if not failures:
            return {}
        return {r["id"]: str(r["status"]) for r in self._rows(*_fail_many(worker, failures))}

    def report_and_claim(
        self,
        worker: str,
        results: Sequence[tuple[uuid.UUID, dict[str, Any] | None]],
        failures: Sequence[tuple[uuid.UUID, str, bool]],
        kinds: list[str] | None,
        limit: int,
        lease_seconds: float,
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, str], list[Job]]:
        """complete_many + fail_many + claim as one statement (one round trip, one transaction,
        one commit): a busy worker commits once per batch instead of twice. All or nothing:
        when it fails, nothing was recorded and nothing claimed."""
        if not results and not failures:
            return set(), {}, self.claim(worker, kinds, limit, lease_seconds) if limit > 0 else []
        # One row per claimed job (or one row without a job), each carrying what was recorded.
        # The reports must run before the claim: the claim's limit is computed from them (plus
        # zero times their row counts), which makes Postgres run them first. In the other order
        # two workers deadlock: a claim's FOR UPDATE SKIP LOCKED can keep a lock on a row it
        # looked at and then skipped (one another worker claimed meanwhile: the latest version
        # is locked before it is re-checked), and that worker's report of that very row then
        # waits for this transaction while this transaction's report waits for the other one.
        done, failed = (
            "select null::uuid as id where false",
            "select null::uuid as id, null::text as status where false",
        )
        params: tuple[Any, ...] = ()
        if results:
            done = "select d.id from private.job_complete_many(%s, %s::uuid[], %s::jsonb[]) d(id)"
            params += _complete_many(worker, results)[1]
        if failures:
            failed = (
                "select f.id, f.status"
                " from private.job_fail_many(%s, %s::uuid[], %s::text[], %s::boolean[]) f"
            )
            params += _fail_many(worker, failures)[1]
        query = (
            f"with done as ({done}), failed as ({failed})"
            " select r.recorded, r.failed, c.* from ("
            "   select array(select id from done) as recorded,"
            "          (select coalesce(jsonb_object_agg(f.id, f.status), '{}') from failed f) as failed"
            " ) r"
        )
        if limit > 0:
            query += (
                " left join lateral private.job_claim(%s, %s,"
                "   (%s + 0 * (select count(*) from done) + 0 * (select count(*) from failed))::integer,"
                "   %s) c on true"
            )
            params += _claim(worker, kinds, limit, lease_seconds)[1]
        else:
            query += ", lateral (select null::uuid as id) c"
        rows = self._rows(query, params)
        recorded = set(rows[0]["recorded"])
        statuses = {uuid.UUID(k): str(v) for k, v in rows[0]["failed"].items()}
        claimed = [Job.from_row(r) for r in rows if r["id"] is not None]
        return recorded, statuses, claimed

    def heartbeat(self, job_id: uuid.UUID, worker: str, lease_seconds: float) -> None:
        self._rows(
            "select private.job_heartbeat(%s, %s, %s)", (job_id, worker, timedelta(seconds=lease_seconds))
        )

    def release(self, job_id: uuid.UUID, worker: str) -> None:
        self._rows("select private.job_release(%s, %s)", (job_id, worker))

    def retry(self, job_id: uuid.UUID) -> None:
        self._rows("select private.job_retry(%s)", (job_id,))

    def get(self, job_id: uuid.UUID) -> Job | None:
        rows = self._rows(f"select {JOB_COLUMNS} from public.jobs where id = %s", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def list_jobs(self, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[Job]:
        rows = self._rows(
            f"select {JOB_COLUMNS} from public.jobs"
            " where (%s::text is null or status = %s) and (%s::text is null or kind = %s)"
            " order by created_at desc, id limit %s",
            (status, status, kind, kind, limit),
        )
        return [Job.from_row(r) for r in rows]

    def cron_list(self) -> list[Schedule]:
        return [Schedule.from_row(r) for r in self._rows("select * from private.cron_list()")]

    def cron_fire(self, name: str, due: datetime, next_run: datetime) -> uuid.UUID | None:
        value = self._value("select private.cron_fire(%s, %s, %s)", (name, due, next_run))
        return uuid.UUID(str(value)) if value is not None else None

    def cron_set_next(self, name: str, expected: datetime | None, next_run: datetime) -> bool:
        return bool(self._value("select private.cron_set_next(%s, %s, %s)", (name, expected, next_run)))

    def cron_run_now(self, name: str) -> uuid.UUID:
        return uuid.UUID(str(self._value("select private.cron_run_now(%s)", (name,))))

    def cron_set(self, name: str, schedule: str | None, enabled: bool | None = None) -> Schedule:
        """Change a schedule's expression and/or enabled flag; its next_run_at follows at once."""
        rows = self._rows("select * from private.cron_set_schedule(%s, %s, %s)", (name, schedule, enabled))
        return Schedule.from_row(rows[0])

    def list_cleanups(self) -> dict[str, str]:
        return {r["task"]: r["description"] for r in self._rows("select * from private.list_cleanups()")}

    def run_cleanup(self, task: str, batch_size: int, dry_run: bool) -> list[str]:
        rows = self._rows("select item from private.run_cleanup(%s, %s, %s)", (task, batch_size, dry_run))
        return [str(r["item"]) for r in rows]

    def close(self) -> None:
        self._pool.close()


def _claim(
    worker: str, kinds: list[str] | None, limit: int, lease_seconds: float
) -> tuple[str, tuple[Any, ...]]:
    return (
        "select * from private.job_claim(%s, %s, %s, %s)",
        (worker, kinds, limit, timedelta(seconds=lease_seconds)),
    )


def _complete_many(
    worker: str, results: Sequence[tuple[uuid.UUID, dict[str, Any] | None]]
) -> tuple[str, tuple[Any, ...]]:
    return (
        "select id from private.job_complete_many(%s, %s::uuid[], %s::jsonb[]) id",
        (
            worker,
            [job_id for job_id, _ in results],
            [Jsonb(result) if result is not None else None for _, result in results],
        ),
    )


def _fail_many(worker: str, failures: Sequence[tuple[uuid.UUID, str, bool]]) -> tuple[str, tuple[Any, ...]]:
    return (
        "select id, status from private.job_fail_many(%s, %s::uuid[], %s::text[], %s::boolean[])",
        (worker, [f[0] for f in failures], [f[1] for f in failures], [f[2] for f in failures]),
    )


def psycopg_pool_timeout() -> type[Exception]:
    from psycopg_pool import PoolTimeout

    return PoolTimeout
