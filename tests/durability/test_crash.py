"""Nothing confirmed is ever lost: SIGKILL the database mid-stream, start it, count.

Against a PostgreSQL server the test starts itself (tests/durability/conftest.py), writers
run continuously, each on its own connection, and record a write only once its COMMIT was
acknowledged: documents through the SQL API as their owner (act_as, exactly like PostgREST),
job enqueues, AI admissions (budget reservations) and settlements; a real `backline workers
run` process completes the jobs. The postmaster is SIGKILLed three times mid-stream and
started again (crash recovery). Afterwards every acknowledged write must be there, every job
the worker reported as succeeded must be `succeeded` and never have run again, and the AI
budget must include every acknowledged reservation and settlement.

Before issue #18 the embedded server ran with `synchronous_commit = off` (and the AI ledger
forced it off per transaction): a crash then dropped acknowledged writes and this test fails.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.durability.conftest import OwnServer
from tests.helpers import act_as, create_user
from tests.jobs.jobtools import start_cli
from tests.library.bodies import loop_body

KILLS = 3
WRITE_SECONDS = 1.5  # of writes between two kills
ENQUEUE_EVERY = 0.02


class Writers:
    """Writer threads that reconnect after every failure and record acknowledged writes only."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.docs: list[str] = []
        self.enqueued: list[str] = []
        self.admitted: dict[str, Decimal] = {}  # usage id -> reservation
        self.settled: dict[str, Decimal] = {}  # usage id -> cost
        self.failures = 0
        self.threads: list[threading.Thread] = []

    def start(self, users: list[uuid.UUID]) -> None:
        targets: list[Callable[[psycopg.Connection[Any]], None]] = [
            lambda conn, u=users[0]: self.document(conn, u),  # type: ignore[misc]
            lambda conn, u=users[1]: self.document(conn, u),  # type: ignore[misc]
            self.enqueue,
            lambda conn, u=users[2]: self.ai_call(conn, u),  # type: ignore[misc]
        ]
        for target in targets:
            thread = threading.Thread(target=self._loop, args=(target,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _loop(self, step: Callable[[psycopg.Connection[Any]], None]) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    while not self.stop.is_set():
                        step(conn)
            except psycopg.Error:
                with self.lock:
                    self.failures += 1
                self.stop.wait(0.05)

    def document(self, conn: psycopg.Connection[Any], user: uuid.UUID) -> None:
        with act_as(conn, user, rollback=False) as cur:  # commits like a PostgREST request
            row = cur.execute(
                "insert into public.documents (kind, title, body) values ('loop', 'crash', %s) returning id",
                (Jsonb(loop_body()),),
            ).fetchone()
        assert row is not None
        with self.lock:  # reached only once the COMMIT returned
            self.docs.append(str(row[0]))

    def enqueue(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            row = conn.execute("select private.job_enqueue('echo', %s)", (Jsonb({"w": "crash"}),)).fetchone()
        assert row is not None
        with self.lock:
            self.enqueued.append(str(row[0]))
        self.stop.wait(ENQUEUE_EVERY)  # the load: one enqueue every 10-20 ms

    def ai_call(self, conn: psycopg.Connection[Any], user: uuid.UUID) -> None:
        with act_as(conn, user, rollback=False) as cur:
            usage_id, ticket = cur.execute(
                "select usage_id, ticket from private.ai_begin('openai', 'gpt-4o', 500, 200)"
            ).fetchone() or (None, None)
            reserved = cur.execute("select reserved_usd from public.ai_usage where id = %s", (usage_id,))
            reservation = (reserved.fetchone() or (None,))[0]
        with self.lock:
            self.admitted[str(usage_id)] = reservation
        with act_as(conn, user, rollback=False) as cur:
            cost = cur.execute(
                "select private.ai_finish(%s, 'ok', 400, 150, 0, 3, null, %s)", (usage_id, ticket)
            ).fetchone()
        assert cost is not None
        with self.lock:
            self.settled[str(usage_id)] = cost[0]


def _prepare(url: str) -> list[uuid.UUID]:
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("show synchronous_commit").fetchone() == ("on",)  # the embedded default
        conn.execute(
            "update public.plans set documents_per_kind = 1000000, ai_requests_per_window = 1000000,"
            " ai_monthly_budget_usd = 1000000"
        )
        conn.execute("update public.document_kind_limits set max_documents = 1000000")
        conn.execute("update private.cron_schedules set enabled = false")
        with conn.transaction():
            return [create_user(conn) for _ in range(3)]


def _events(stderr: str) -> list[dict[str, Any]]:
    events = []
    for line in stderr.splitlines():
        events.append(json.loads(line))  # --log-format json: every line is one JSON object
    return events


def test_no_acknowledged_write_is_lost_and_no_succeeded_job_runs_again(own_server: OwnServer) -> None:
    url = own_server.url
    users = _prepare(url)
    worker = start_cli(
        url,
        "workers", "run", "echo", "--no-cron", "--log-format", "json", "-c", "8",
        BACKLINE_JOBS_LEASE_SECONDS="3",
    )  # fmt: skip
    lines: list[str] = []
    assert worker.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(worker.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    # Kill only once the worker is up: a worker that cannot open its pool at start exits (by
    # design), and on a loaded machine its start can outlast the first write period.
    started = time.monotonic()
    while not any('"worker.started"' in line for line in list(lines)) and time.monotonic() - started < 60:
        assert worker.poll() is None, "".join(lines)[-3000:]
        time.sleep(0.05)
    writers = Writers(url)
    writers.start(users)
    try:
        for _ in range(KILLS):
            time.sleep(WRITE_SECONDS)
            own_server.kill()
            time.sleep(0.3)
            own_server.start()
        time.sleep(WRITE_SECONDS)
    finally:
        writers.join()
    try:
        # Let the worker work off the queue for a while (jobs whose completion was lost re-run
        # after their lease); how far it gets depends on the machine, so it is not asserted.
        deadline = time.monotonic() + 15
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                left = conn.execute("select count(*) from public.jobs where status in ('queued', 'running')")
                back = sum('"db.available"' in line for line in list(lines))
                down = sum('"db.unavailable"' in line for line in list(lines))
                if (left.fetchone() or (1,))[0] == 0 and back == down:
                    break
                time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        reader.join(10)
    stderr = "".join(lines)
    assert worker.returncode == 0, stderr[-3000:]
    assert own_server.kills == KILLS
    assert writers.docs and writers.enqueued and writers.settled, "the writers never got a write through"

    with psycopg.connect(url) as conn:
        present_docs = {str(r[0]) for r in conn.execute("select id from public.documents")}
        jobs = {str(r[0]): r[1] for r in conn.execute("select id, status from public.jobs")}
        usage = {
            str(r[0]): (r[1], r[2], r[3])
            for r in conn.execute("select id, status, reserved_usd, cost_usd from public.ai_usage")
        }
        budget = conn.execute(
            "select spent_usd, reserved_usd from private.ai_budget_months where user_id = %s", (users[2],)
        ).fetchone()
    assert budget is not None

    lost_docs = [d for d in writers.docs if d not in present_docs]
    lost_jobs = [j for j in writers.enqueued if j not in jobs]
    lost_admissions = [u for u in writers.admitted if u not in usage]
    lost_settlements = [u for u, cost in writers.settled.items() if usage.get(u) != ("ok", 0, cost)]
    assert (lost_docs, lost_jobs, lost_admissions, lost_settlements) == ([], [], [], []), (
        f"acknowledged and lost: {len(lost_docs)} of {len(writers.docs)} documents, {len(lost_jobs)} of"
        f" {len(writers.enqueued)} enqueues, {len(lost_admissions)} of {len(writers.admitted)} AI"
        f" admissions, {len(lost_settlements)} of {len(writers.settled)} settlements"
    )
    # The budget still counts every call that was served: settled ones as spent, the others
    # (admitted, settlement not acknowledged) as reserved; and the month row agrees with the rows.
    spent, reserved = budget
    assert spent >= sum(writers.settled.values())
    assert spent == sum(cost for status, _, cost in usage.values() if status == "ok")
    assert reserved == sum(r for status, r, _ in usage.values() if status == "pending")
    assert spent + reserved >= sum(writers.settled.values()) + sum(
        r for u, r in writers.admitted.items() if u not in writers.settled
    )

    # Jobs: every succeeded report is durable, and a succeeded job never ran again.
    events = _events(stderr)
    succeeded_at: dict[str, int] = {}
    reruns = []
    for position, event in enumerate(events):
        if event["event"] == "job.succeeded":
            succeeded_at[event["job_id"]] = position
        elif event["event"] == "job.claimed" and event["job_id"] in succeeded_at:
            reruns.append(event["job_id"])
    assert succeeded_at, "the worker completed nothing"
    assert [j for j in succeeded_at if jobs.get(j) != "succeeded"] == []
    assert reruns == []
    assert {s for s in jobs.values()} <= {"succeeded", "queued", "running"}  # none dead or failed
    # The outages were logged as outages: one event when the database went away and one when
    # it was back, never a line per retry (kills closer together than the worker's reconnect
    # may merge into one outage). On a loaded machine a connection opened before a kill and
    # first used after the recovery (the LISTEN session, a worker thread's connection) can
    # report its loss after `db.available`: at most one such late pair per kill.
    outages = [e for e in events if e["event"] in ("db.unavailable", "db.available")]
    pairs = len(outages) // 2
    assert 1 <= pairs <= 2 * KILLS, [(e["event"], e.get("source"), e["ts"]) for e in outages]
    assert [e["event"] for e in outages] == ["db.unavailable", "db.available"] * pairs
    assert sum(e["failures"] for e in outages if e["event"] == "db.available") > pairs  # retries folded
    assert not [e for e in events if e["event"].endswith(".error")], "connection errors logged one by one"
