"""Structured process logs: one line per event on stderr, JSON (`--log-format json`) or text.

`JobLog` writes the runtime's own events. `configure_process_logging` routes everything
else the process may write through it too (stdlib logging of any library - psycopg_pool,
uvicorn, httpx -, `warnings`, uncaught exceptions in any thread), so with JSON every line
on stderr is one JSON object. `Outage` turns a database outage into two events
(`db.unavailable` when it goes away, `db.available` when it is back) instead of a line per
retry from every component that notices.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

import psycopg

from workers.errors import DatabaseUnavailable

LOG_FORMATS = ("text", "json")
# Built once: json.dumps(obj, **options) builds a new encoder on every call.
_JSON = json.JSONEncoder(default=str, separators=(",", ":"))
_POOL_OUTAGE_MESSAGES = ("error connecting", "reconnection attempt", "task run")


class JobLog:
    """Thread-safe event logger. Events: job.claimed, job.succeeded, job.failed, job.retrying,
    job.dead, job.released, job.lease_lost, cron.fired, worker.started, worker.stopping,
    db.unavailable, db.available, log (a library's logging record), ...

    `context`: fields written on every line, after ts and event (e.g. the process id when
    several processes share one stderr, as `ai serve --workers N` does)."""

    def __init__(
        self, fmt: str = "text", stream: TextIO | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        if fmt not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {LOG_FORMATS}, got {fmt!r}")
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self.context = dict(context or {})
        self._lock = threading.Lock()

    def event(self, event: str, **fields: Any) -> None:
        self._write(self._line(datetime.now(UTC).isoformat(timespec="milliseconds"), event, fields))

    def events(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Several events at once, in order: one write to the stream instead of one per line.

        The worker logs a claimed batch and a recorded batch this way. Per job a write (and the
        flush after it) costs more than the job itself: each one lets another thread take the
        interpreter, so a no-op job paid about a context switch per event."""
        if not items:
            return
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._write("".join(self._line(ts, event, fields) for event, fields in items))

    def _line(self, ts: str, event: str, fields: Mapping[str, Any]) -> str:
        if self.context:
            fields = {**self.context, **fields}
        if self.fmt == "json":
            return _JSON.encode({"ts": ts, "event": event, **fields}) + "\n"
        rest = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        # A text line stays one line too (a library's message may span several).
        return f"{ts} {event} {rest}".rstrip().replace("\n", " | ") + "\n"

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (ValueError, OSError):  # stream closed under a late helper thread: nothing to report to
                pass


def is_connection_error(exc: BaseException) -> bool:
    """True for "the database is not reachable" (connect/read failures, shutdown, pool timeout)."""
    return isinstance(exc, psycopg.OperationalError | DatabaseUnavailable)


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else ""


class Outage:
    """One event when the database goes away, one when it is back; the retries in between are
    counted, not logged. Thread-safe; `ok()` is cheap while nothing is wrong."""

    def __init__(self, log: JobLog, **fields: Any) -> None:
        self.log = log
        self.fields = fields
        self._lock = threading.Lock()
        self._since: float | None = None
        self._started_at = ""
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, source: str, error: BaseException | str) -> None:
        message = _first_line(str(error)) or type(error).__name__
        with self._lock:
            self._failures += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
            self._started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.log.event("db.unavailable", **self.fields, source=source, error=message)

    def suppressed(self) -> None:
        with self._lock:
            self._failures += 1

    def ok(self, started: float | None = None) -> None:
        """A database call succeeded. `started` (time.monotonic() when it began): a call begun
        before the outage was noticed proves nothing about the database now and is ignored."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None or (started is not None and started < self._since):
                return
            seconds = round(time.monotonic() - self._since, 3)
            failures, since = self._failures, self._started_at
            self._since, self._failures = None, 0
        self.log.event("db.available", **self.fields, down_seconds=seconds, since=since, failures=failures)


class _ToJobLog(logging.Handler):
    """A logging handler that writes each record as one JobLog event `log`."""

    def __init__(self, log: JobLog) -> None:
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info and record.exc_info[0] is not None:
                fields["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self.log.event("log", **fields)
        except Exception:  # never let logging break the worker
            self.handleError(record)


class _PoolOutageFilter(logging.Filter):
    """psycopg_pool logs a warning per failed reconnect attempt: feed them to the Outage."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        message = record.getMessage()
        if message.startswith(_POOL_OUTAGE_MESSAGES):
            self.outage.failed("pool", message)
            return False
        if self.outage.down:  # e.g. "discarding broken connection" while the server is gone
            self.outage.suppressed()
            return False
        return True


def configure_process_logging(log: JobLog, outage: Outage | None = None) -> None:
    """Send every log record, warning and uncaught exception of this process through `log`."""
    handler = _ToJobLog(log)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.lastResort = None  # never the plain-text fallback handler
    for noisy in ("httpx", "httpcore", "hpack", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    pool = logging.getLogger("psycopg.pool")
    pool.setLevel(logging.WARNING)
    for old_filter in list(pool.filters):
        if isinstance(old_filter, _PoolOutageFilter):
            pool.removeFilter(old_filter)
    if outage is not None:
        pool.addFilter(_PoolOutageFilter(outage))
    # Off first: captureWarnings(True) is a no-op while logging believes it already captures,
    # even when something (a test harness's catch_warnings) has put the original back since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.event(
            "crash",
            error=_first_line(str(exc)) or exc_type.__name__,
            exception="".join(traceback.format_exception(exc_type, exc, tb)).rstrip(),
        )

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        log.event(
            "crash",
            thread=args.thread.name if args.thread else None,
            error=_first_line(str(args.exc_value)) or args.exc_type.__name__,
            exception="".join(
                traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
            ).rstrip(),
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
