"""Benchmark: latency the AI proxy adds over calling the same fake provider directly.

Run: PYTHONPATH=$PWD python bench/ai_proxy.py [--requests 2000] [--workers 1] [--database-url URL]

Starts the fake OpenAI-compatible provider and the proxy (uvicorn, --workers
processes) in subprocesses, creates a throwaway migrated database with 64
users (one stored key each), then measures with httpx at 1 and 64 concurrent
clients (back to back: on a small machine this saturates the CPU) and at 64
clients paced to --rate requests/s in total: non-streaming p50/p99 direct vs
through the proxy, streaming time to first token, the proxy's CPU time per
request and its RSS. Direct and proxied
requests are measured in alternating rounds of the same run (`--rounds`), so a
change in the machine's load affects both sides alike. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from psycopg import conninfo, sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.db import migrations  # noqa: E402
from workers.db.embedded import EmbeddedServer  # noqa: E402

SECRET = "bench-secret-with-at-least-32-characters-long"
MASTER = "bench:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
FAKE_SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from tests.ai.fake_provider import FakeProvider
fake = FakeProvider()
fake.cookie = None  # the bench's direct client must not carry a cookie the proxy's client drops
fake.requests = type("Sink", (), {{"append": lambda self, x: None}})()
uvicorn.run(fake.app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""
PROXY_SERVER = """
import os, sys, uvicorn
sys.path.insert(0, {root!r})
os.environ["DATABASE_URL"] = {db!r}
import workers.ai.app as proxy_app
if {workers} == 1 or not hasattr(proxy_app, "app_from_env"):  # older code: one process
    from workers.settings import Settings
    app = proxy_app.create_app(Settings(), {db!r})
    uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
else:
    uvicorn.run("workers.ai.app:app_from_env", factory=True, host="127.0.0.1", port={port},
                log_level="warning", access_log=False, workers={workers})
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def run_load(
    url: str, users: list[tuple[dict[str, str], dict[str, Any]]], n: int, conc: int
) -> list[float]:
    """n requests from conc concurrent clients; client i acts as users[i % len(users)]."""
    lat: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        queue = list(range(n))

        async def worker(i: int) -> None:
            headers, body = users[i % len(users)]
            while queue:
                queue.pop()
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, headers=headers, json=body)
                except httpx.TransportError:  # an overloaded box resets a connection now and then
                    errors.append(url)
                    continue
                lat.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

        for i in range(min(conc, 8)):  # warm-up connections
            await client.post(url, headers=users[i % len(users)][0], json=users[i % len(users)][1])
        await asyncio.gather(*(worker(i) for i in range(conc)))
    if errors:
        print(f"{len(errors)} transport errors on {url}", file=sys.stderr)
    return lat


async def run_paced(
    url: str, users: list[tuple[dict[str, str], dict[str, Any]]], n: int, conc: int, rate: float
) -> list[float]:
    """n requests from conc clients that together start `rate` requests per second on average
    (Poisson arrivals per client; a client whose previous answer is late sends at once)."""
    lat: list[float] = []
    rng = random.Random(7)
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for i in range(min(conc, 8)):  # warm-up connections
            await client.post(url, headers=users[i % len(users)][0], json=users[i % len(users)][1])
        per_client = n // conc
        start = time.perf_counter()

        async def worker(i: int) -> None:
            headers, body = users[i % len(users)]
            at = start + rng.expovariate(rate / conc)
            for _ in range(per_client):
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                t0 = time.perf_counter()
                r = await client.post(url, headers=headers, json=body)
                lat.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
                at += rng.expovariate(rate / conc)

        await asyncio.gather(*(worker(i) for i in range(conc)))
    return lat


async def first_token(url: str, headers: dict[str, str], body: dict[str, Any], n: int) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        async with client.stream("POST", url, headers=headers, json=body) as resp:  # warm-up
            await resp.aread()
        for _ in range(n):
            t0 = time.perf_counter()
            seen = False
            async with client.stream("POST", url, headers=headers, json=body) as resp:
                async for line in resp.aiter_lines():
                    if seen or not ('"content"' in line or '"delta"' in line) or '"content": ""' in line:
                        continue
                    out.append((time.perf_counter() - t0) * 1000)
                    seen = True
    return out


def proxy_pids(pid: int) -> list[int]:
    """The proxy process and, with --workers > 1, its worker processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(x) for x in children.read_text().split()] if children.exists() else []
    return [pid, *kids]


def rss_kb(pid: int) -> int:
    total = 0
    for p in proxy_pids(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the proxy processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in proxy_pids(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def interleaved(
    direct: tuple[str, list[tuple[dict[str, str], dict[str, Any]]]],
    proxy: tuple[str, list[tuple[dict[str, str], dict[str, Any]]]],
    n: int,
    conc: int,
    rounds: int,
    proxy_pid: int,
) -> tuple[list[float], list[float], float]:
    """Alternating rounds of direct and proxied load; (direct ms, proxy ms, proxy CPU ms per request)."""
    d: list[float] = []
    p: list[float] = []
    cpu = 0.0
    for _ in range(rounds):
        d += asyncio.run(run_load(direct[0], direct[1], n // rounds, conc))
        before = cpu_seconds(proxy_pid)
        got = asyncio.run(run_load(proxy[0], proxy[1], n // rounds, conc))
        cpu += cpu_seconds(proxy_pid) - before
        p += got
    return d, p, cpu * 1000 / max(len(p), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes for the proxy")
    ap.add_argument("--rounds", type=int, default=8, help="alternating direct/proxy rounds per load")
    ap.add_argument(
        "--rate", type=float, default=200, help="paced 64-client run: requests/s in total (0 = skip)"
    )
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument(
        "--clients", default="1,64", help="back-to-back concurrency levels, comma separated (e.g. 1)"
    )
    ap.add_argument("--no-stream", action="store_true", help="skip the streaming first-token row")
    args = ap.parse_args()

    admin = args.database_url or EmbeddedServer(ROOT / ".backline-bench").ensure_running().tcp_url()
    name = f"bl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    db = conninfo.make_conninfo(admin, dbname=name)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrations.migrate(db, ROOT / "migrations")
        # One user per concurrent client (one user's calls serialize on their rate-limit lock by
        # design); a 1-second window keeps the limiter's event rows few, as real limits do.
        with psycopg.connect(db) as conn:
            conn.execute(
                "update public.plans set ai_requests_per_window = 100000000, ai_window_seconds = 1,"
                " ai_monthly_budget_usd = 1000000"
            )
            uids = [
                r[0]
                for r in conn.execute(
                    "insert into auth.users (id, aud, role, created_at, updated_at)"
                    " select gen_random_uuid(), 'authenticated', 'authenticated', now(), now()"
                    " from generate_series(1, 64) returning id"
                ).fetchall()
            ]
        exp = int(time.time()) + 7200
        tokens = [
            jwt.encode(
                {"sub": str(u), "role": "authenticated", "aud": "authenticated", "exp": exp},
                SECRET,
                algorithm="HS256",
            )
            for u in uids
        ]
        fake_port, proxy_port = free_port(), free_port()
        fake_url = f"http://127.0.0.1:{fake_port}"
        env = {
            **os.environ,
            "SUPABASE_JWT_SECRET": SECRET,
            "BACKLINE_AI_MASTER_KEYS": MASTER,
            "BACKLINE_AI_OPENAI_BASE_URL": fake_url + "/v1",
            "BACKLINE_AI_POOL_MIN": "8",
            "BACKLINE_AI_POOL_MAX": "16",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", FAKE_SERVER.format(root=str(ROOT), port=fake_port)], env=env
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    PROXY_SERVER.format(root=str(ROOT), db=db, port=proxy_port, workers=args.workers),
                ],
                env=env,
            )
        )
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        wait_up(fake_url + "/auth/v1/.well-known/jwks.json")
        wait_up(proxy_url + "/healthz")
        msgs = [{"role": "user", "content": "Say hello"}]
        direct_body = {"model": "gpt-4o-mini", "messages": msgs, "max_tokens": 16}
        direct_users = [({"authorization": "Bearer sk-bench-1234"}, direct_body)]
        proxy_users: list[tuple[dict[str, str], dict[str, Any]]] = []
        with httpx.Client() as client:
            for token in tokens:
                auth = {"authorization": f"Bearer {token}"}
                key = client.post(
                    proxy_url + "/v1/keys", headers=auth, json={"provider": "openai", "key": "sk-bench-1234"}
                )
                body = {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "key_id": key.json()["id"],
                    "messages": msgs,
                    "max_tokens": 16,
                }
                proxy_users.append((auth, body))
        results: dict[str, Any] = {
            "requests": args.requests,
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "load_average_before": os.getloadavg()[0],
        }
        for conc in (int(c) for c in args.clients.split(",")):
            d, p, cpu_ms = interleaved(
                (fake_url + "/v1/chat/completions", direct_users),
                (proxy_url + "/v1/generate", proxy_users),
                args.requests,
                conc,
                args.rounds,
                procs[1].pid,
            )
            results[f"c{conc}"] = {
                "proxy_cpu_ms_per_request": round(cpu_ms, 3),
                "direct_p50_ms": round(statistics.median(d), 3),
                "direct_p99_ms": round(pct(d, 99), 3),
                "proxy_p50_ms": round(statistics.median(p), 3),
                "proxy_p99_ms": round(pct(p, 99), 3),
                "overhead_p50_ms": round(statistics.median(p) - statistics.median(d), 3),
                "overhead_p99_ms": round(pct(p, 99) - pct(d, 99), 3),
            }
        if args.rate > 0:
            d, p = [], []
            for _ in range(args.rounds):
                n = max(64, args.requests // args.rounds)
                d += asyncio.run(run_paced(fake_url + "/v1/chat/completions", direct_users, n, 64, args.rate))
                p += asyncio.run(run_paced(proxy_url + "/v1/generate", proxy_users, n, 64, args.rate))
            results[f"c64_paced_{int(args.rate)}rps"] = {
                "direct_p50_ms": round(statistics.median(d), 3),
                "direct_p99_ms": round(pct(d, 99), 3),
                "proxy_p50_ms": round(statistics.median(p), 3),
                "proxy_p99_ms": round(pct(p, 99), 3),
                "overhead_p50_ms": round(statistics.median(p) - statistics.median(d), 3),
                "overhead_p99_ms": round(pct(p, 99) - pct(d, 99), 3),
            }
        n_stream = max(50, args.requests // 20)
        d_ft: list[float] = []
        p_ft: list[float] = []
        for _ in range(0 if args.no_stream else args.rounds):
            d_ft += asyncio.run(
                first_token(
                    fake_url + "/v1/chat/completions",
                    direct_users[0][0],
                    {**direct_body, "stream": True},
                    n_stream // args.rounds,
                )
            )
            p_ft += asyncio.run(
                first_token(
                    proxy_url + "/v1/generate",
                    proxy_users[0][0],
                    {**proxy_users[0][1], "stream": True},
                    n_stream // args.rounds,
                )
            )
        if d_ft:
            results["stream_first_token"] = {
                "direct_p50_ms": round(statistics.median(d_ft), 3),
                "proxy_p50_ms": round(statistics.median(p_ft), 3),
                "overhead_p50_ms": round(statistics.median(p_ft) - statistics.median(d_ft), 3),
            }
        results["proxy_rss_mb"] = round(rss_kb(procs[1].pid) / 1024, 1)
        results["load_average_after"] = os.getloadavg()[0]
        print(json.dumps(results, indent=2))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
