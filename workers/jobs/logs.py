"""Structured job logs: one line per event on stderr, JSON (`--log-format json`) or text."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")


class JobLog:
    """Thread-safe event logger. Events: job.claimed, job.succeeded, job.failed, job.retrying,
    job.dead, job.released, job.lease_lost, cron.fired, worker.started, worker.stopping, ..."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        if fmt not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {LOG_FORMATS}, got {fmt!r}")
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def event(self, event: str, **fields: Any) -> None:
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        if self.fmt == "json":
            line = json.dumps({"ts": ts, "event": event, **fields}, default=str, separators=(",", ":"))
        else:
            rest = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            line = f"{ts} {event} {rest}".rstrip()
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (ValueError, OSError):  # stream closed under a late helper thread: nothing to report to
                pass
