"""Benchmark: job claim+complete throughput with 1, 2 and 4 worker processes.

Runs on the embedded server (its own data directory, .backline-bench) unless
--database-url is given. For each process count it fills a fresh migrated
database with --jobs `echo` jobs, starts that many worker processes (the real
runtime: workers.jobs.worker.Worker over SqlQueue, --concurrency threads each,
claims sized to free capacity, finished jobs recorded in batches together with the
next claim), and reports jobs/s from the first claim to the last completion.
Against pg-boss and procrastinate on the same server: bench/jobs_vs_peers.py.

    PYTHONPATH=. python bench/jobs.py [--jobs 20000] [--processes 1,2,4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

from workers.db import migrations
from workers.db.embedded import EmbeddedServer
from workers.jobs.context import JobContext
from workers.jobs.logs import JobLog
from workers.jobs.queue_sql import SqlQueue
from workers.jobs.worker import Worker
from workers.settings import PROJECT_ROOT, Settings


def noop(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    return None


def child(url: str, concurrency: int, start: Any, out: Any) -> None:
    settings = Settings(_env_file=None, BACKLINE_JOBS_POLL_SECONDS=0.05)  # type: ignore[call-arg]
    queue = SqlQueue(url, pool_size=concurrency + 2)
    worker = Worker(
        queue,
        {"echo": noop},
        settings=settings,
        kinds=["echo"],
        concurrency=concurrency,
        cron=False,
        log=JobLog(stream=io.StringIO()),
    )
    start.wait()
    began = time.time()
    stats = worker.run(once=True)
    out.put((began, time.time(), stats.succeeded))
    queue.close()


def fresh_database(server_url: str) -> str:
    name = f"bl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = conninfo.make_conninfo(server_url, dbname=name)
    migrations.migrate(url, PROJECT_ROOT / "migrations")
    return url


def drop_database(server_url: str, url: str) -> None:
    name = conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(str(name))))


def run_once(server_url: str, jobs: int, processes: int, concurrency: int) -> tuple[float, float, int]:
    url = fresh_database(server_url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "select private.job_enqueue('echo', jsonb_build_object('n', n))"
                " from generate_series(1, %s) n",
                (jobs,),
            )
            conn.execute("vacuum analyze public.jobs")
        ctx = mp.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=child, args=(url, concurrency, start, out)) for _ in range(processes)]
        for p in procs:
            p.start()
        time.sleep(1.0)  # let every child import and connect
        start.set()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        with psycopg.connect(url) as conn:
            done = conn.execute("select count(*) from public.jobs where status = 'succeeded'").fetchone()[0]  # type: ignore[index]
        began = min(r[0] for r in results)
        ended = max(r[1] for r in results)
        return ended - began, jobs / (ended - began), int(done)
    finally:
        drop_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=8, help="threads (and claim batch) per process")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    server_url = (
        args.database_url or EmbeddedServer(PROJECT_ROOT / ".backline-bench").ensure_running().tcp_url()
    )
    with psycopg.connect(server_url) as conn:
        version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
    print(
        f"PostgreSQL {version}, {os.cpu_count()} CPUs, {args.jobs} jobs,"
        f" concurrency {args.concurrency}/process"
    )
    print(f"{'processes':>9} {'seconds':>8} {'jobs/s':>8} {'done':>7}")
    for processes in (int(p) for p in args.processes.split(",")):
        seconds, rate, done = run_once(server_url, args.jobs, processes, args.concurrency)
        print(f"{processes:>9} {seconds:>8.2f} {rate:>8.0f} {done:>7}", flush=True)


if __name__ == "__main__":
    Path(PROJECT_ROOT / ".backline-bench").mkdir(exist_ok=True)
    main()
