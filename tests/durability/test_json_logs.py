"""With --log-format json every line a worker writes is one JSON object, also during an outage,
and an outage is two events (gone, back), not a line per retry."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
import time
import warnings

from tests.durability.conftest import OwnServer
from tests.jobs.jobtools import enqueue, job_row, start_cli, wait_for
from workers.jobs.logs import JobLog, Outage, configure_process_logging


def test_a_worker_logs_only_json_through_a_database_outage(own_server: OwnServer) -> None:
    url = own_server.url
    worker = start_cli(
        url, "workers", "run", "echo", "--log-format", "json", BACKLINE_CRON_TICK_SECONDS="0.5"
    )
    lines: list[str] = []
    assert worker.stderr is not None
    stream = worker.stderr
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any('"worker.started"' in line for line in lines), timeout=20, what="start")
        own_server.kill()
        time.sleep(3)  # the pool, LISTEN, heartbeats and cron all retry meanwhile
        own_server.start()
        wait_for(lambda: any('"db.available"' in line for line in lines), timeout=30, what="recovery")
        job_id = enqueue(url, "echo", {"after": "outage"})
        wait_for(lambda: job_row(url, job_id)["status"] == "succeeded", timeout=20, what="a job after it")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        reader.join(10)
    assert worker.returncode == 0, "".join(lines)[-3000:]
    events = [json.loads(line) for line in lines]  # every line parses: nothing plain, nothing multi-line
    assert all(isinstance(e, dict) and "ts" in e and "event" in e for e in events)
    outage = [e for e in events if e["event"] in ("db.unavailable", "db.available")]
    assert [e["event"] for e in outage] == ["db.unavailable", "db.available"], outage
    assert outage[1]["failures"] >= 1 and outage[1]["down_seconds"] >= 2.5
    assert not [e for e in events if e["event"].endswith(".error")]  # no line per failed try


def test_library_logs_warnings_and_thread_crashes_become_json_lines() -> None:
    stream = io.StringIO()
    log = JobLog("json", stream=stream)
    outage = Outage(log, worker="w")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.lastResort, threading.excepthook)
    try:
        configure_process_logging(log, outage)
        logging.getLogger("some.library").warning("two\nlines")
        pool = logging.getLogger("psycopg.pool")
        for _ in range(5):  # what psycopg_pool logs on each failed reconnect
            pool.warning("error connecting in %r: %s", "pool-1", "connection refused\nIs the server running?")
        pool.warning("discarding closed connection: <conn>")  # while down: counted, not printed
        outage.ok()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("careful", UserWarning, stacklevel=1)
        thread = threading.Thread(target=lambda: 1 / 0, name="boom")
        thread.start()
        thread.join()
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.lastResort = saved[2]
        threading.excepthook = saved[3]
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["log", "db.unavailable", "db.available", "log", "crash"]
    assert events[0]["message"] == "two\nlines" and events[0]["logger"] == "some.library"
    assert events[1]["source"] == "pool" and "connection refused" in events[1]["error"]
    assert events[2]["failures"] == 6
    assert events[3]["logger"] == "py.warnings" and "careful" in events[3]["message"]
    assert events[4]["thread"] == "boom" and "ZeroDivisionError" in events[4]["exception"]
