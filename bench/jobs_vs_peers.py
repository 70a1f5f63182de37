"""Benchmark: Backline's job queue vs pg-boss (Node) vs procrastinate (Python), same server.

Drain: --jobs no-op jobs enqueued up front into a fresh database per run, drained by
--processes worker processes of each contender, --concurrency jobs at a time per process;
jobs/s from the moment all processes are told to start until the database shows every job
finished. The contenders are interleaved over --rounds rounds (the order rotates each round) so
that load from others on a shared machine hits all of them alike; the median per contender is
compared. Latency: one producer per contender enqueues one job at a time at a steady --rate
jobs/s for --latency-seconds (job payload = the enqueue wall-clock time), the same worker
processes run them, and each handler records start - enqueue; p50/p99 over all jobs.

Peers are installed by this script into a scratch folder (--scratch, default
/tmp/backline-bench-peers), never as project dependencies: pg-boss (current release from the
npm registry, with Node 22 from the npm `node` package when the machine's node is older than
pg-boss needs) and procrastinate (PyPI, in its own venv). The server is a scratch embedded
PostgreSQL in that folder unless --database-url (or BENCH_DATABASE_URL) names one.

    PYTHONPATH=. .venv/bin/python bench/jobs_vs_peers.py [--jobs 20000] [--processes 4]
        [--concurrency 8] [--rounds 3] [--rate 200] [--latency-seconds 10] [--only backline,pgboss]

Settings of each contender (printed too):
- backline: `workers.jobs.worker.Worker` over SqlQueue (the real runtime), kinds ['echo'],
  concurrency 8 (claims sized to free capacity, at most 8), batched reports (flush when no
  handler runs, 100 waiting, or 5 ms), JSON event log to /dev/null, cron off, poll 0.5 s;
  LISTEN wake-up in the latency run.
- pg-boss: `work()` with batchSize 8 and localConcurrency 1 per process (one batch handler,
  completed with one statement), burstWhenBatchFull (fetch again at once after a full batch),
  pollingIntervalSeconds 0.5 (its minimum), schedule off, supervise default; the queue created
  with notify and useListenNotify on in the latency run.
- procrastinate: `run_worker_async(concurrency=8)`, an async no-op task, fetch polling 0.5 s,
  listen_notify in the latency run only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PGBOSS_NODE_MAJOR = 22  # pg-boss 12 needs node >= 22.12
QUEUE = "bench"

# -- peer programs (written into the scratch folder) ------------------------------------------

PGBOSS_JS = r"""
import { PgBoss } from 'pg-boss';
import readline from 'node:readline';

const [cmd, url, a1, a2, a3] = process.argv.slice(2);
const QUEUE = 'bench';
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

if (cmd === 'prepare') {
  const boss = new PgBoss({ connectionString: url, schedule: false, supervise: false });
  boss.on('error', (e) => console.error(e));
  await boss.start();
  await boss.createQueue(QUEUE, { notify: true });
  const jobs = Number(a1);
  for (let i = 0; i < jobs; i += 1000) {
    const chunk = [];
    for (let n = i; n < Math.min(jobs, i + 1000); n++) chunk.push({ data: { n } });
    await boss.insert(QUEUE, chunk);
  }
  await boss.stop({ graceful: false, close: true });
  process.exit(0);
} else if (cmd === 'worker') {
  const latency = a1 === 'latency';
  const batchSize = Number(a2);
  const boss = new PgBoss({ connectionString: url, schedule: false, useListenNotify: latency });
  boss.on('error', (e) => console.error(e));
  await boss.start();
  const lat = [];
  console.log('ready');
  await nextLine();
  await boss.work(QUEUE, {
    batchSize, localConcurrency: 1, burstWhenBatchFull: true,
    pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5,
  }, async (jobs) => {
    const now = Date.now() / 1000;
    if (latency) for (const j of jobs) lat.push(now - j.data.t);
  });
  await nextLine();
  await boss.stop({ graceful: true, close: true, timeout: 10000 });
  console.log(JSON.stringify({ latencies: lat }));
  process.exit(0);
} else if (cmd === 'produce') {
  const rate = Number(a1), seconds = Number(a2);
  const boss = new PgBoss({ connectionString: url, schedule: false, supervise: false });
  await boss.start();
  const total = Math.round(rate * seconds);
  const t0 = Date.now() / 1000;
  const sends = [];  // on schedule, not one after the other: a slow send does not hold the rate back
  for (let i = 0; i < total; i++) {
    const wait = t0 + i / rate - Date.now() / 1000;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
    sends.push(boss.send(QUEUE, { t: Date.now() / 1000 }));
  }
  await Promise.all(sends);
  const took = Date.now() / 1000 - t0;
  await boss.stop({ graceful: false, close: true });
  console.log(JSON.stringify({ sent: total, seconds: took }));
  process.exit(0);
}
"""

PROCRASTINATE_PY = r"""
import asyncio, json, sys, time
from procrastinate import App, PsycopgConnector

cmd, url = sys.argv[1], sys.argv[2]
app = App(connector=PsycopgConnector(conninfo=url))
lat = []

@app.task(name="noop", queue="bench")
async def noop(n=None, t=None):
    if t is not None:
        lat.append(time.time() - t)

def prepare(jobs):
    with app.open():
        app.schema_manager.apply_schema()
        for i in range(0, jobs, 1000):
            noop.batch_defer(*({"n": n} for n in range(i, min(jobs, i + 1000))))

async def worker(mode, concurrency):
    latency = mode == "latency"
    async with app.open_async():
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        task = asyncio.create_task(app.run_worker_async(
            queues=["bench"], concurrency=concurrency, wait=True, listen_notify=latency,
            fetch_job_polling_interval=0.5, install_signal_handlers=False))
        await loop.run_in_executor(None, sys.stdin.readline)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    print(json.dumps({"latencies": lat}), flush=True)

async def produce(rate, seconds):
    async with app.open_async():
        total = round(rate * seconds)
        t0 = time.time()
        sends = []  # on schedule, not one after the other
        for i in range(total):
            wait = t0 + i / rate - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            sends.append(asyncio.create_task(noop.defer_async(t=time.time())))
        await asyncio.gather(*sends)
        print(json.dumps({"sent": total, "seconds": time.time() - t0}), flush=True)

if cmd == "prepare":
    prepare(int(sys.argv[3]))
elif cmd == "worker":
    asyncio.run(worker(sys.argv[3], int(sys.argv[4])))
elif cmd == "produce":
    asyncio.run(produce(float(sys.argv[3]), float(sys.argv[4])))
"""


# -- Backline's own child processes ------------------------------------------------------------


def backline_worker(url: str, mode: str, concurrency: int) -> None:
    from workers.jobs.context import JobContext
    from workers.jobs.logs import JobLog
    from workers.jobs.queue_sql import SqlQueue
    from workers.jobs.worker import Worker
    from workers.settings import Settings

    latencies: list[float] = []

    def noop(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None:
        if "t" in payload:
            latencies.append(time.time() - payload["t"])
        return None

    settings = Settings(_env_file=None, BACKLINE_JOBS_POLL_SECONDS=0.5)  # type: ignore[call-arg]
    queue = SqlQueue(url, pool_size=concurrency + 2)
    with open(os.devnull, "w") as devnull:
        worker = Worker(
            queue,
            {"echo": noop},
            settings=settings,
            kinds=["echo"],
            concurrency=concurrency,
            cron=False,
            log=JobLog("json", devnull),
            listen_url=url if mode == "latency" else None,
        )
        print("ready", flush=True)
        sys.stdin.readline()
        thread = threading.Thread(target=worker.run)
        thread.start()
        sys.stdin.readline()
        worker.request_stop()
        thread.join(60)
    queue.close()
    print(json.dumps({"latencies": latencies}), flush=True)


def backline_produce(url: str, rate: float, seconds: float) -> None:
    from psycopg.types.json import Jsonb

    total = round(rate * seconds)
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.time()
        for i in range(total):
            wait = t0 + i / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            conn.execute("select private.job_enqueue('echo', %s)", (Jsonb({"t": time.time()}),))
        print(json.dumps({"sent": total, "seconds": time.time() - t0}), flush=True)


# -- contenders ---------------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    version: str
    prepare: Callable[[str, int], None]  # (fresh database url, jobs) -> schema installed, jobs enqueued
    worker_cmd: Callable[[str, str, int], list[str]]  # (url, mode, concurrency)
    producer_cmd: Callable[[str, float, float], list[str]]
    done_sql: str  # count of finished jobs
    env: dict[str, str] = field(default_factory=dict)


def run(cmd: list[str], **kw: Any) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def _quiet(_output: str) -> None:
    return None


def setup_pgboss(scratch: Path) -> tuple[str, Path, str]:
    """npm-install pg-boss (and node 22 when needed) into scratch/pgboss; returns node, script, version."""
    folder = scratch / "pgboss"
    folder.mkdir(parents=True, exist_ok=True)
    system_node = shutil.which("node")
    major = 0
    if system_node:
        major = int(run([system_node, "--version"]).strip().lstrip("v").split(".")[0])
    packages = ["pg-boss@latest"] + ([] if major > PGBOSS_NODE_MAJOR else [f"node@{PGBOSS_NODE_MAJOR}"])
    if not (folder / "node_modules" / "pg-boss").exists() or (
        major <= PGBOSS_NODE_MAJOR and not (folder / "node_modules" / ".bin" / "node").exists()
    ):
        (folder / "package.json").write_text('{"private": true, "type": "module"}\n')
        run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), *packages])
    node = str(folder / "node_modules" / ".bin" / "node") if major <= PGBOSS_NODE_MAJOR else str(system_node)
    script = folder / "bench.mjs"
    script.write_text(PGBOSS_JS)
    version = json.loads((folder / "node_modules" / "pg-boss" / "package.json").read_text())["version"]
    return node, script, f"pg-boss {version}, node {run([node, '--version']).strip()}"


def setup_procrastinate(scratch: Path) -> tuple[str, Path, str]:
    venv = scratch / "procrastinate-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)])
    if subprocess.run([str(python), "-c", "import procrastinate"], capture_output=True).returncode != 0:
        run([str(python), "-m", "pip", "install", "-q", "procrastinate", "psycopg[binary]"])
    script = scratch / "procrastinate_bench.py"
    script.write_text(PROCRASTINATE_PY)
    version = run([str(python), "-c", "import importlib.metadata as m; print(m.version('procrastinate'))"])
    return str(python), script, f"procrastinate {version.strip()}"


def backline_contender(template_url: str) -> Contender:
    me = [sys.executable, str(Path(__file__).resolve())]

    def prepare(url: str, jobs: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "select private.job_enqueue('echo', jsonb_build_object('n', n))"
                " from generate_series(1, %s) n",
                (jobs,),
            )

    return Contender(
        "backline",
        "this tree",
        prepare,
        lambda url, mode, c: [*me, "--child", "backline-worker", url, mode, str(c)],
        lambda url, rate, s: [*me, "--child", "backline-produce", url, str(rate), str(s)],
        "select count(*) from public.jobs where status = 'succeeded'",
        env={"PYTHONPATH": str(ROOT)},
    )


def pgboss_contender(scratch: Path) -> Contender:
    node, script, version = setup_pgboss(scratch)
    return Contender(
        "pgboss",
        version,
        lambda url, jobs: _quiet(run([node, str(script), "prepare", url, str(jobs)])),
        lambda url, mode, c: [node, str(script), "worker", url, mode, str(c)],
        lambda url, rate, s: [node, str(script), "produce", url, str(rate), str(s)],
        f"select count(*) from pgboss.job where name = '{QUEUE}' and state = 'completed'",
    )


def procrastinate_contender(scratch: Path) -> Contender:
    python, script, version = setup_procrastinate(scratch)
    return Contender(
        "procrastinate",
        version,
        lambda url, jobs: _quiet(run([python, str(script), "prepare", url, str(jobs)])),
        lambda url, mode, c: [python, str(script), "worker", url, mode, str(c)],
        lambda url, rate, s: [python, str(script), "produce", url, str(rate), str(s)],
        "select count(*) from procrastinate_jobs where status = 'succeeded'",
    )


# -- databases ----------------------------------------------------------------------------------


def as_url(dsn: str) -> str:
    """postgresql://user:password@host:port/dbname (what node-postgres understands)."""
    from urllib.parse import quote

    d = conninfo.conninfo_to_dict(dsn)
    auth = quote(str(d.get("user", "postgres")), safe="")
    if d.get("password"):
        auth += ":" + quote(str(d["password"]), safe="")
    host, port, dbname = d.get("host", "localhost"), d.get("port", 5432), d.get("dbname", "postgres")
    return f"postgresql://{auth}@{host}:{port}/{dbname}"


def create_db(server_url: str, template: str | None = None) -> str:
    name = f"bl_peers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(query)
    return as_url(conninfo.make_conninfo(server_url, dbname=name))


def drop_db(server_url: str, url: str) -> None:
    name = str(conninfo.conninfo_to_dict(url)["dbname"])
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def fresh_db(server_url: str, contender: Contender, template: str) -> str:
    return create_db(server_url, template if contender.name == "backline" else None)


# -- runs ---------------------------------------------------------------------------------------


class Workers:
    def __init__(self, contender: Contender, url: str, mode: str, processes: int, concurrency: int) -> None:
        env = {**os.environ, **contender.env}
        self.procs = [
            subprocess.Popen(
                contender.worker_cmd(url, mode, concurrency),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(processes)
        ]
        self.errors: list[str] = [""] * processes
        self.readers = [
            threading.Thread(target=self._drain_stderr, args=(i, p), daemon=True)
            for i, p in enumerate(self.procs)
        ]
        for reader in self.readers:
            reader.start()
        for i, proc in enumerate(self.procs):
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                proc.wait(10)
                raise SystemExit(f"{contender.name} worker did not start: {line!r} {self.errors[i][-2000:]}")

    def _drain_stderr(self, i: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.errors[i] = (self.errors[i] + line)[-4000:]

    def tell(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def stop(self) -> list[float]:
        self.tell()
        latencies: list[float] = []
        for i, proc in enumerate(self.procs):
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.wait(60)
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if not lines:
                raise SystemExit(f"worker {i} ended without results: {out[-1000:]} {self.errors[i][-2000:]}")
            latencies += json.loads(lines[-1])["latencies"]
        return latencies


def wait_done(url: str, done_sql: str, target: int, timeout: float = 900) -> float:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            done = (conn.execute(done_sql).fetchone() or (0,))[0]
            if done >= target:
                return time.time()
            time.sleep(0.05)
    raise SystemExit(f"only {done} of {target} jobs finished in {timeout} s")


def drain(server_url: str, template: str, c: Contender, jobs: int, processes: int, concurrency: int) -> float:
    url = fresh_db(server_url, c, template)
    try:
        c.prepare(url, jobs)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze")
        workers = Workers(c, url, "drain", processes, concurrency)
        began = time.time()
        workers.tell()
        ended = wait_done(url, c.done_sql, jobs)
        workers.stop()
        return jobs / (ended - began)
    finally:
        drop_db(server_url, url)


def latency(
    server_url: str,
    template: str,
    c: Contender,
    rate: float,
    seconds: float,
    processes: int,
    concurrency: int,
) -> tuple[float, float, float, int]:
    url = fresh_db(server_url, c, template)
    try:
        c.prepare(url, 0)
        workers = Workers(c, url, "latency", processes, concurrency)
        workers.tell()
        time.sleep(1.0)  # workers idle and listening
        produced = json.loads(
            run(c.producer_cmd(url, rate, seconds), env={**os.environ, **c.env}).splitlines()[-1]
        )
        wait_done(url, c.done_sql, produced["sent"], timeout=120)
        lat = sorted(workers.stop())
        achieved = produced["sent"] / produced["seconds"]
        return achieved, quantile(lat, 0.5) * 1000, quantile(lat, 0.99) * 1000, len(lat)
    finally:
        drop_db(server_url, url)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at a time (and batch) per process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--only", default="backline,pgboss,procrastinate")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/backline-bench-peers"))
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()

    from workers.db import migrations
    from workers.db.embedded import EmbeddedServer

    args.scratch.mkdir(parents=True, exist_ok=True)
    if args.database_url:
        server_url = args.database_url
    else:
        pg = args.scratch / "pg"
        pg.mkdir(exist_ok=True)
        pg.chmod(0o755)
        args.scratch.chmod(0o755)
        server_url = EmbeddedServer(pg / "data").ensure_running().tcp_url()
    names = args.only.split(",")
    template_url = create_db(server_url)
    template = str(conninfo.conninfo_to_dict(template_url)["dbname"])
    try:
        migrations.migrate(template_url, ROOT / "migrations")
        with psycopg.connect(template_url, autocommit=True) as conn:
            conn.execute("update private.cron_schedules set enabled = false")
        makers: dict[str, Callable[[], Contender]] = {
            "backline": lambda: backline_contender(template_url),
            "pgboss": lambda: pgboss_contender(args.scratch),
            "procrastinate": lambda: procrastinate_contender(args.scratch),
        }
        contenders = [makers[n]() for n in names]
        with psycopg.connect(server_url) as conn:
            version = (conn.execute("show server_version").fetchone() or ("?",))[0]
            sync = (conn.execute("show synchronous_commit").fetchone() or ("?",))[0]
        print(
            f"PostgreSQL {version} (synchronous_commit {sync}), {os.cpu_count()} CPUs, load {load()};"
            f" {args.jobs} jobs, {args.processes} processes x {args.concurrency}, {args.rounds} rounds"
        )
        for c in contenders:
            print(f"  {c.name}: {c.version}")
        rates: dict[str, list[float]] = {c.name: [] for c in contenders}
        print(f"{'round':>5} {'contender':>14} {'jobs/s':>8}  load")
        for r in range(args.rounds):
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for c in order:
                rate = drain(server_url, template, c, args.jobs, args.processes, args.concurrency)
                rates[c.name].append(rate)
                print(f"{r + 1:>5} {c.name:>14} {rate:>8.0f}  {load()}", flush=True)
        medians = {n: statistics.median(v) for n, v in rates.items()}
        best = max(medians.values())
        print("median jobs/s: " + ", ".join(f"{n} {m:.0f}" for n, m in medians.items()))
        if "backline" in medians:
            others = {n: m for n, m in medians.items() if n != "backline"}
            ratios = ", ".join(f"{medians['backline'] / m:.2f}x {n}" for n, m in others.items())
            print(f"backline / best: {medians['backline'] / best:.2f}" + (f" ({ratios})" if ratios else ""))
        if not args.skip_latency:
            print(f"enqueue->start at {args.rate:g} jobs/s for {args.latency_seconds:g} s:")
            print(f"{'contender':>14} {'achieved/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'jobs':>6}  load")
            for c in contenders:
                achieved, p50, p99, n = latency(
                    server_url, template, c, args.rate, args.latency_seconds, args.processes, args.concurrency
                )
                print(f"{c.name:>14} {achieved:>10.1f} {p50:>8.1f} {p99:>8.1f} {n:>6}  {load()}", flush=True)
    finally:
        drop_db(server_url, template_url)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "backline-worker":
            backline_worker(rest[0], rest[1], int(rest[2]))
        elif kind == "backline-produce":
            backline_produce(rest[0], float(rest[1]), float(rest[2]))
        sys.exit(0)
    main()
