"""A job handed back (SIGTERM after the drain time) keeps its place: claimed before newer jobs."""

from __future__ import annotations

import signal
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.jobs.jobtools import enqueue, job_row, start_cli, wait_for

LEASE = timedelta(seconds=30)


def _enqueue(db: psycopg.Connection[Any], run_after: str = "now()") -> uuid.UUID:
    row = db.execute(f"select private.job_enqueue('echo', %s, null, {run_after}, 0)", (Jsonb({}),)).fetchone()
    assert row
    return uuid.UUID(str(row[0]))


def _claim(db: psycopg.Connection[Any], worker: str, limit: int = 1) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from private.job_claim(%s, array['echo'], %s, %s)", (worker, limit, LEASE)
        ).fetchall()


def test_release_keeps_run_after_and_the_job_is_claimed_first(db: psycopg.Connection[Any]) -> None:
    db.execute("delete from public.jobs")
    old = _enqueue(db, "now() - interval '10 minutes'")
    (claimed,) = _claim(db, "w1")
    assert claimed["id"] == old
    newer = [_enqueue(db, "now() - interval '1 minute'"), _enqueue(db)]
    db.execute("select private.job_release(%s, 'w1')", (old,))
    row = db.execute("select status, attempts, run_after from public.jobs where id = %s", (old,)).fetchone()
    assert row is not None
    assert row[0] == "queued" and row[1] == 0 and row[2] == claimed["run_after"]  # place kept
    assert [r["id"] for r in _claim(db, "w2")] == [old]
    assert [r["id"] for r in _claim(db, "w2", 5)] == newer  # then the newer ones, in order


def test_release_by_a_stranger_changes_nothing(db: psycopg.Connection[Any]) -> None:
    job_id = _enqueue(db)
    _claim(db, "w1", 100)
    before = db.execute("select * from public.jobs where id = %s", (job_id,)).fetchone()
    # (job_lease_lost's SQLSTATE is being changed elsewhere: match the message, not the class)
    with pytest.raises(psycopg.Error, match="not running under worker w2"), db.transaction():
        db.execute("select private.job_release(%s, 'w2')", (job_id,))
    assert db.execute("select * from public.jobs where id = %s", (job_id,)).fetchone() == before


def test_a_job_handed_back_on_sigterm_runs_before_newer_jobs(clone_url: str) -> None:
    first = enqueue(clone_url, "echo", {"sleep": 60})
    proc = start_cli(
        clone_url, "workers", "run", "echo", "--no-cron", "-c", "1", BACKLINE_JOBS_DRAIN_SECONDS="0.3"
    )
    try:
        wait_for(lambda: job_row(clone_url, first)["status"] == "running", what="claim")
        run_after = job_row(clone_url, first)["run_after"]
        newer = [enqueue(clone_url, "echo", {}) for _ in range(3)]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    row = job_row(clone_url, first)
    assert row["status"] == "queued" and row["run_after"] == run_after
    with psycopg.connect(clone_url, autocommit=True, row_factory=dict_row) as conn:
        claim = "select id from private.job_claim('next', array['echo'], %s, interval '30 seconds')"
        assert [r["id"] for r in conn.execute(claim, (1,)).fetchall()] == [first]  # its place kept
        assert [r["id"] for r in conn.execute(claim, (10,)).fetchall()] == newer
