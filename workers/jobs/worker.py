"""The worker runtime behind `backline workers run`.

One process claims due jobs with a lease, runs up to `concurrency` of them in
a pool of threads, renews their leases from a heartbeat thread, records what
finished in batches (one job_complete_many / job_fail_many statement for
many jobs, flushed when `report_batch` are waiting, when no handler is running
any more, or `report_wait_seconds` after the first finished; always before the
next claim and before exit), wakes on NOTIFY
backline_jobs (a LISTEN on a direct connection) and polls as a fallback, and
fires due cron schedules. Without LISTEN (RPC transport, transaction pooler) a
Supabase Realtime subscription wakes it instead (workers.jobs.wakeup).
On stop (SIGTERM) it claims nothing more, lets running jobs finish for
`drain_seconds` and records them, then asks the rest to stop (ctx.should_stop())
and releases the leases of those still running, so another worker takes them at
once. A worker killed outright loses nothing either: its leases expire, and a
job whose handler had finished but whose success was not yet recorded runs
again (docs/jobs.md, "What is promised").
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.db.connect import first_line
from workers.jobs import wakeup
from workers.jobs.context import Handler, JobContext
from workers.jobs.errors import JobInterrupted, LeaseLost, PermanentJobError
from workers.jobs.logs import JobLog, Outage, is_connection_error
from workers.jobs.models import Job
from workers.jobs.queue import Queue
from workers.jobs.runners import Runners
from workers.settings import Settings

STOP_GRACE_SECONDS = 2.0
HELPER_JOIN_SECONDS = 3.0
REPORT_BATCH = 100
REPORT_WAIT_SECONDS = 0.005


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RealtimeConfig:
    """Where the Realtime wake-up subscribes: project URL and service key (`url` overrides the endpoint)."""

    supabase_url: str
    key: str
    url: str | None = None


@dataclass
class _Running:
    job: Job
    fields: dict[str, Any]  # what every log line about this job carries
    started: float = field(default_factory=time.monotonic)
    lost: bool = False  # set by the heartbeat when another worker has the job now
    last_beat: float = field(default_factory=time.monotonic)
    done: bool = False  # the handler returned; its outcome waits in the report batch


@dataclass
class _Outcome:
    """A finished handler's outcome, waiting to be recorded with the next batch."""

    running: _Running
    result: dict[str, Any] | None = None
    error: str | None = None  # None: succeeded
    retry: bool = True
    at: float = field(default_factory=time.monotonic)


@dataclass
class WorkerStats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    released: int = 0
    lease_lost: int = 0
    cron_fired: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Worker:
    def __init__(
        self,
        queue: Queue,
        handlers: Mapping[str, Handler],
        *,
        settings: Settings,
        kinds: list[str] | None = None,
        concurrency: int | None = None,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        drain_seconds: float | None = None,
        log: JobLog | None = None,
        listen_url: str | None = None,
        realtime: RealtimeConfig | None = None,
        cron: bool = True,
        worker_id: str | None = None,
        outage: Outage | None = None,
        report_batch: int = REPORT_BATCH,
        report_wait_seconds: float = REPORT_WAIT_SECONDS,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.settings = settings
        self.kinds = sorted(kinds) if kinds else sorted(self.handlers)
        self.concurrency = concurrency or settings.jobs_concurrency
        self.lease_seconds = lease_seconds or settings.jobs_lease_seconds
        self.poll_seconds = poll_seconds or settings.jobs_poll_seconds
        self.drain_seconds = settings.jobs_drain_seconds if drain_seconds is None else drain_seconds
        self.log = log or JobLog()
        self.listen_url = listen_url
        self.realtime = realtime
        self.cron = cron
        self.id = worker_id or new_worker_id()
        # One event when the database goes away and one when it is back, not a line per retry.
        self.outage = outage or Outage(self.log, worker=self.id)
        self.stats = WorkerStats()
        self.report_batch = max(1, min(report_batch, 1000))
        self.report_wait_seconds = max(0.0, report_wait_seconds)
        # Leased jobs: handlers running, and finished ones whose outcome is not recorded yet.
        self._inflight: dict[uuid.UUID, _Running] = {}
        self._outcomes: list[_Outcome] = []
        self._report_lock = threading.Lock()  # one flush at a time
        self._runners: Runners[_Running] | None = None  # handler threads, made by the first job of a run
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._force = threading.Event()
        self._threads_stop = threading.Event()

    # -- control ----------------------------------------------------------
    def request_stop(self) -> None:
        """Stop claiming and drain (SIGTERM). A second call skips the rest of the drain time."""
        if self._stopping.is_set():
            self._force.set()
        self._stopping.set()
        self._wake.set()

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    @property
    def inflight(self) -> int:
        """Jobs this worker holds the lease of (running, or finished and not yet recorded)."""
        with self._lock:
            return len(self._inflight)

    @property
    def busy(self) -> int:
        """Handlers running now: what the next claim's size is measured against."""
        with self._lock:
            return len(self._inflight) - len(self._outcomes)

    # -- main loop --------------------------------------------------------
    def run(self, *, once: bool = False) -> WorkerStats:
        """Run until request_stop() (or, with once=True, until no job is due and none is running)."""
        self.log.event(
            "worker.started",
            worker=self.id,
            kinds=",".join(self.kinds),
            concurrency=self.concurrency,
            transport=self.queue.transport,
            wakeup="listen" if self.listen_url else "realtime" if self.realtime else "poll",
            once=once,
        )
        # A fresh stop event per run: helpers of an earlier run() of this object never linger.
        stop = self._threads_stop = threading.Event()
        helpers = [threading.Thread(target=self._heartbeat_loop, args=(stop,), name="heartbeat", daemon=True)]
        if self.listen_url:
            helpers.append(threading.Thread(target=self._wake_loop, args=("listen", stop), daemon=True))
        elif self.realtime:
            helpers.append(threading.Thread(target=self._wake_loop, args=("realtime", stop), daemon=True))
        for thread in helpers:
            thread.start()
        next_cron = 0.0
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                if self.cron and time.monotonic() >= next_cron:
                    self._tick_cron()
                    next_cron = time.monotonic() + self.settings.cron_tick_seconds
                # Finished jobs are recorded in one statement, then the freed capacity is claimed
                # in one: waiting a few ms for more handlers to finish saves round trips both ways.
                wait = self._report_wait()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                free = self.concurrency - self.busy
                claimed: list[Job] = []
                started = time.monotonic()
                try:
                    claimed = self._flush(claim=max(free, 0))
                except Exception as exc:
                    self._error("queue.error", exc)
                    self._stopping.wait(self.poll_seconds)
                    continue
                if free > 0:
                    self.outage.ok(started)
                self._start(claimed)
                if once and not claimed and self.inflight == 0:
                    break
                if claimed and len(claimed) == free:
                    continue
                timeout = self.poll_seconds
                if self.cron:
                    timeout = max(0.0, min(timeout, next_cron - time.monotonic()))
                self._wake.wait(timeout)
        finally:
            self._drain()
            stop.set()
            for thread in helpers:
                thread.join(HELPER_JOIN_SECONDS)
            self._stop_pool()
        self.log.event("worker.stopped", worker=self.id, **self.stats.as_dict())
        return self.stats

    def run_one(self, job_id: uuid.UUID) -> Job | None:
        """Claim one given queued job and run it in this thread (`backline cron run`).

        Returns the job's final row, or None when it was not queued (another worker has it).
        """
        job = self.queue.claim_id(job_id, self.id, self.lease_seconds)
        if job is None:
            return None
        stop = self._threads_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat_loop, args=(stop,), name="heartbeat", daemon=True)
        running = self._running(job)
        with self._lock:
            self._inflight[job.id] = running
        self._count("claimed")
        self.log.event("job.claimed", **running.fields)
        beat.start()
        try:
            self._execute(running)
            self._flush()
        finally:
            stop.set()
        return self.queue.get(job_id)

    def _running(self, job: Job) -> _Running:
        fields: dict[str, Any] = {
            "worker": self.id,
            "job_id": str(job.id),
            "kind": job.kind,
            "attempt": job.attempts,
            "max_attempts": job.max_attempts,
        }
        return _Running(job, fields)

    def _start(self, jobs: list[Job]) -> None:
        """Hand claimed jobs to the runners, logged as claimed first (one write for the batch)."""
        if not jobs:
            return
        started = [self._running(job) for job in jobs]
        with self._lock:
            for running in started:
                self._inflight[running.job.id] = running
        self._count("claimed", len(started))
        self.log.events([("job.claimed", running.fields) for running in started])
        if self._runners is None:
            self._runners = Runners(self.concurrency, self._execute)
        for running in started:
            self._runners.put(running)

    def _stop_pool(self) -> None:
        # A runner stuck in a handler exits when it returns; the next run() makes fresh runners.
        if self._runners is not None:
            self._runners.stop()
            self._runners = None

    def _drain(self) -> None:
        if self.inflight:
            self.log.event(
                "worker.draining", worker=self.id, running=self.inflight, seconds=self.drain_seconds
            )
        deadline = time.monotonic() + self.drain_seconds
        while self.inflight and time.monotonic() < deadline and not self._force.is_set():
            self._flush()
            self._wake.wait(0.1)
            self._wake.clear()
        self._flush()
        if not self.inflight:
            return
        self._force.set()  # handlers see should_stop() and may hand their job back themselves
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self.inflight and time.monotonic() < deadline:
            self._flush()
            self._wake.wait(0.1)
            self._wake.clear()
        self._flush()
        with self._lock:
            left = list(self._inflight.values())
            self._inflight.clear()
        for running in left:
            self._release(running.job)

    # -- one job ----------------------------------------------------------
    def _execute(self, running: _Running) -> None:
        job = running.job
        ctx = JobContext(
            job_id=job.id,
            kind=job.kind,
            owner_id=job.owner_id,
            attempt=job.attempts,
            settings=self.settings,
            database_url=self.queue.database_url,
            heartbeat=lambda: self._beat(running, throttle=1.0),
            should_stop=lambda: self._force.is_set() or running.lost,
        )
        outcome: _Outcome | None = None
        try:
            outcome = self._run_handler(ctx, job, running)
        finally:
            wake = True
            with self._lock:
                if outcome is None:
                    self._inflight.pop(job.id, None)
                elif self._inflight.get(job.id) is running:  # not released by a forced stop meanwhile
                    running.done = True
                    self._outcomes.append(outcome)
                    # Wake the main loop when this outcome starts the report wait or makes the
                    # batch due, not for every handler in between (it is waiting anyway).
                    waiting = len(self._outcomes)
                    wake = waiting == 1 or waiting >= self.report_batch or waiting == len(self._inflight)
            if wake:
                self._wake.set()

    def _run_handler(self, ctx: JobContext, job: Job, running: _Running) -> _Outcome | None:
        """Run the handler; its outcome is recorded by the next flush (None: handed back)."""
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r} in this worker")
            result = handler(ctx, dict(job.payload))
            if result is not None and not isinstance(result, dict):
                raise PermanentJobError(f"handler returned {type(result).__name__}, expected a dict or None")
            if result is not None:
                json.dumps(result)
        except JobInterrupted:
            self._release(job)
            return None
        except PermanentJobError as exc:
            return _Outcome(running, error=str(exc) or type(exc).__name__, retry=False)
        except Exception as exc:
            return _Outcome(running, error=str(exc) or type(exc).__name__, retry=True)
        return _Outcome(running, result=result)

    # -- recording outcomes in batches --------------------------------------
    def _report_wait(self) -> float:
        """Seconds to wait before the waiting outcomes are due to be recorded (0: now or none)."""
        with self._lock:
            if not self._outcomes:
                return 0.0
            if (
                len(self._outcomes) >= self.report_batch
                or len(self._outcomes) == len(self._inflight)  # no handler running any more
                or self._stopping.is_set()
            ):
                return 0.0
            return max(0.0, self._outcomes[0].at + self.report_wait_seconds - time.monotonic())

    def _flush(self, claim: int = 0) -> list[Job]:
        """Record every waiting outcome, then claim up to `claim` jobs (0: none); returns them.

        Successes and failures of a batch are recorded with one statement each, in the same
        transaction (and, over SQL, the same round trip) as the claim that follows. Each job is
        recorded only if this worker still holds its lease; one whose lease was lost is logged
        as such and the others are recorded anyway. When the database cannot be reached the
        outcomes are dropped: their leases expire and the jobs run again (at-least-once for
        handlers; a success is recorded once). A failed claim raises (after that logging)."""
        with self._report_lock:
            with self._lock:
                outcomes, self._outcomes = self._outcomes, []
            batches = [
                outcomes[i : i + self.report_batch] for i in range(0, len(outcomes), self.report_batch)
            ]
            for batch in batches[:-1]:
                self._record(batch, 0)
            return self._record(batches[-1] if batches else [], claim)

    def _record(self, outcomes: list[_Outcome], claim: int) -> list[Job]:
        if not outcomes:
            return self.queue.claim(self.id, self.kinds, claim, self.lease_seconds) if claim > 0 else []
        started = time.monotonic()
        statuses: dict[uuid.UUID, str] | None = None
        claimed: list[Job] = []
        try:
            recorded, statuses, claimed = self.queue.report_and_claim(
                self.id,
                [(o.running.job.id, o.result) for o in outcomes if o.error is None],
                [(o.running.job.id, o.error or "", o.retry) for o in outcomes if o.error is not None],
                self.kinds,
                claim,
                self.lease_seconds,
            )
            statuses.update(dict.fromkeys(recorded, "succeeded"))
        except Exception as exc:
            # The leases will expire and other attempts will run: nothing is lost.
            message = first_line(exc)
            self.log.events([("job.report_error", {**o.running.fields, "error": message}) for o in outcomes])
            if claim > 0:
                self._drop(outcomes)
                raise
        else:
            self.outage.ok(started)
        self._drop(outcomes)
        if statuses is None:
            return []
        now = time.monotonic()
        events: list[tuple[str, dict[str, Any]]] = []
        for o in outcomes:
            status = statuses.get(o.running.job.id)
            if status is None:
                error = f"job {o.running.job.id} is no longer leased by {self.id}"
                events.append(("job.lease_lost", {**o.running.fields, "error": error}))
                continue
            ms = round((now - o.running.started) * 1000, 1)
            if status == "succeeded":
                events.append(("job.succeeded", {**o.running.fields, "ms": ms}))
                continue
            event = {"queued": "job.retrying", "dead": "job.dead", "failed": "job.failed"}.get(
                status, "job.failed"
            )
            events.append((event, {**o.running.fields, "status": status, "error": o.error, "ms": ms}))
        with self._lock:
            for event, _ in events:
                if event == "job.succeeded":
                    self.stats.succeeded += 1
                elif event == "job.lease_lost":
                    self.stats.lease_lost += 1
                else:
                    self.stats.failed += 1
        self.log.events(events)
        return claimed

    def _drop(self, outcomes: list[_Outcome]) -> None:
        """Recorded (or given up on): no longer this worker's to heartbeat."""
        with self._lock:
            for o in outcomes:
                self._inflight.pop(o.running.job.id, None)
        self._wake.set()

    def _release(self, job: Job) -> None:
        try:
            self.queue.release(job.id, self.id)
        except LeaseLost:
            return
        except Exception as exc:
            self.log.event("job.report_error", worker=self.id, job_id=str(job.id), error=first_line(exc))
            return
        self._count("released")
        self.log.event("job.released", worker=self.id, job_id=str(job.id), kind=job.kind)

    def _error(self, event: str, exc: Exception, **fields: Any) -> None:
        """Log an error, except that the database being unreachable is one outage, not a line per try."""
        if is_connection_error(exc):
            self.outage.failed(event.split(".")[0], exc)
        else:
            self.log.event(event, worker=self.id, **fields, error=first_line(exc))

    # -- leases -----------------------------------------------------------
    def _beat(self, running: _Running, *, throttle: float = 0.0) -> None:
        if running.lost or time.monotonic() - running.last_beat < throttle:
            return
        started = time.monotonic()
        try:
            self.queue.heartbeat(running.job.id, self.id, self.lease_seconds)
            running.last_beat = time.monotonic()
            self.outage.ok(started)
        except LeaseLost as exc:
            running.lost = True
            self._count("lease_lost")
            self.log.event(
                "job.lease_lost", worker=self.id, job_id=str(running.job.id), error=first_line(exc)
            )
        except Exception as exc:
            self._error("heartbeat.error", exc, job_id=str(running.job.id))

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        interval = max(self.lease_seconds / 3, 0.2)
        while not stop.wait(interval / 4):
            with self._lock:
                running = list(self._inflight.values())
            for item in running:
                self._beat(item, throttle=interval)

    # -- wake-up and cron ---------------------------------------------------
    def _wake_loop(self, source: str, stop: threading.Event) -> None:
        def on_error(exc: Exception) -> None:
            self._error(f"{source}.error", exc)

        if source == "listen":
            assert self.listen_url
            wakeup.listen_loop(self.listen_url, self.kinds, self._wake.set, stop, on_error, self.poll_seconds)
        else:
            assert self.realtime
            wakeup.realtime_loop(
                self.realtime.supabase_url,
                self.realtime.key,
                self.kinds,
                self._wake.set,
                stop,
                on_error,
                self.poll_seconds,
                self.realtime.url,
            )

    def _tick_cron(self) -> None:
        from workers.cron.scheduler import tick

        try:
            fired = tick(self.queue, self.log, worker=self.id)
        except Exception as exc:
            self._error("cron.error", exc)
            return
        self._count("cron_fired", len(fired))
