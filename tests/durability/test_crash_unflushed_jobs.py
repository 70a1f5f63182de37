"""SIGKILL a worker after its handlers finished but before their batched completion was flushed.

The worker records finished jobs in batches (issue #16). What docs/jobs.md promises for a crash
in that window: nothing is lost and no success is recorded twice. The finished-but-unrecorded
jobs are still `running` under the dead worker's lease; when the lease expires another worker
claims them and runs the handler again (at-least-once for handlers), and each job's success is
recorded exactly once (exactly-once for the recorded result). A job the first worker had logged
as `job.succeeded` would never run again; here it logged none.

The worker under test is the real runtime (workers.jobs.worker.Worker over SqlQueue) in its own
process, with a long report wait so that the window is wide and the kill lands in it for sure:
eight quick jobs finish while a ninth (slow) job keeps a handler running, so the quick jobs'
outcomes wait to be flushed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.jobs.jobtools import wait_for
from workers.settings import PROJECT_ROOT

QUICK = 8
LEASE_SECONDS = 2.0

CHILD = r"""
import json, sys, time
from workers.jobs.logs import JobLog
from workers.jobs.queue_sql import SqlQueue
from workers.jobs.worker import Worker
from workers.settings import Settings

url, marker, report_wait, lease, concurrency = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:6])

def handler(ctx, payload):
    if payload.get("slow") and ctx.attempt == 1:
        while not ctx.should_stop():
            time.sleep(0.05)
    with open(marker, "a") as fh:
        fh.write(json.dumps({"job": str(ctx.job_id), "attempt": ctx.attempt}) + "\n")
    return {"attempt": ctx.attempt}

settings = Settings(_env_file=None, BACKLINE_JOBS_LEASE_SECONDS=lease,
                    BACKLINE_JOBS_POLL_SECONDS=0.2, BACKLINE_JOBS_DRAIN_SECONDS=0.5)
queue = SqlQueue(url, pool_size=4)
worker = Worker(queue, {"echo": handler}, settings=settings, kinds=["echo"], concurrency=int(concurrency),
                cron=False, log=JobLog("json"), report_wait_seconds=report_wait, report_batch=1000)
import signal
signal.signal(signal.SIGTERM, lambda *a: worker.request_stop())
worker.run()
queue.close()
"""


def start_worker(url: str, marker: Path, report_wait: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(marker), str(report_wait), str(LEASE_SECONDS), str(QUICK + 1)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def runs(marker: Path) -> list[dict[str, Any]]:
    if not marker.exists():
        return []
    return [json.loads(line) for line in marker.read_text().splitlines() if line.strip()]


def statuses(url: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None, int, Any]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select id, status, locked_by, attempts, result from public.jobs where id = any(%s)", (ids,)
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def test_sigkill_between_handler_and_batched_flush_reruns_and_records_once(
    clone_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "runs.jsonl"
    with psycopg.connect(clone_url, autocommit=True) as conn:
        slow = conn.execute(
            "select private.job_enqueue('echo', %s, null, now(), 1)", (Jsonb({"slow": True}),)
        ).fetchone()
        quick = [
            conn.execute("select private.job_enqueue('echo', %s)", (Jsonb({"n": n}),)).fetchone()
            for n in range(QUICK)
        ]
    assert slow is not None and all(quick)
    slow_id = slow[0]
    quick_ids = [q[0] for q in quick if q]

    first = start_worker(clone_url, marker, report_wait=600.0)
    try:
        wait_for(lambda: len(runs(marker)) == QUICK, timeout=30, what="the quick handlers to finish")
        time.sleep(0.3)  # well inside the 600 s report wait: nothing may have been flushed
        before_kill = statuses(clone_url, quick_ids)
        first.kill()  # SIGKILL
        _, first_err = first.communicate(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    first_worker = before_kill[quick_ids[0]][1]
    # The handlers finished, their success was not recorded: still running under the dead worker.
    assert {s[:3] for s in before_kill.values()} == {("running", first_worker, 1)}
    first_events = [json.loads(line) for line in first_err.splitlines() if line.startswith("{")]
    assert [e for e in first_events if e["event"] == "job.succeeded"] == []  # nothing acknowledged

    second = start_worker(clone_url, marker, report_wait=0.005)
    try:
        wait_for(
            lambda: {s[0] for s in statuses(clone_url, [*quick_ids, slow_id]).values()} == {"succeeded"},
            timeout=60,
            what="another worker to take the expired leases over and finish every job",
        )
    finally:
        second.terminate()
        _, second_err = second.communicate(timeout=30)
    assert second.returncode == 0, second_err[-3000:]

    final = statuses(clone_url, [*quick_ids, slow_id])
    # Never lost, and recorded once: each ran again as attempt 2 and that run's result is the one kept.
    assert {job_id: (s[0], s[2], s[3]) for job_id, s in final.items()} == {
        job_id: ("succeeded", 2, {"attempt": 2}) for job_id in [*quick_ids, slow_id]
    }
    # At-least-once for handlers: each quick job's handler ran exactly twice (once per lease).
    per_job = Counter(r["job"] for r in runs(marker))
    assert {uuid.UUID(j): n for j, n in per_job.items() if uuid.UUID(j) in quick_ids} == dict.fromkeys(
        quick_ids, 2
    )
    second_events = [json.loads(line) for line in second_err.splitlines() if line.startswith("{")]
    succeeded = Counter(e["job_id"] for e in second_events if e["event"] == "job.succeeded")
    assert succeeded == Counter({str(j): 1 for j in [*quick_ids, slow_id]})
