"""Benchmark: latency the AI proxy adds over calling the same fake provider directly,
next to LiteLLM's proxy on the same fake provider.

Run: PYTHONPATH=$PWD python bench/ai_proxy.py [--requests 1600] [--rounds 8] [--workers 1]
     [--clients 1,64] [--rate 200] [--routes generate,chat,messages,gemini] [--no-litellm] [--floor]

Starts the fake provider (tests/ai/fake_provider.py, which speaks OpenAI's wire
format), Backline's proxy (uvicorn, --workers processes) and LiteLLM's proxy
server (PyPI `litellm[proxy]` + httptools, installed by this script into its own
venv under --litellm-dir, never a project dependency; no database, logging off,
the same number of workers) in subprocesses, creates a throwaway migrated database with
64 users (one stored key each), then makes the same chat completion directly on
the fake, through each Backline route (/v1/generate, OpenAI /v1/chat/completions,
Anthropic /v1/messages, Gemini :generateContent; all translated to the fake's
OpenAI endpoint with the user's stored key) and through LiteLLM. Rows: 1 client
back to back, 64 clients back to back (CPU saturation on a small machine), 64
clients paced to --rate requests/s in total, streaming time to first token (1
client). Every contender takes its turn in every round of a row (order rotated
per round), so a change in the machine's load hits all alike. Overhead =
contender percentile - direct percentile; `vs_litellm_*` = a Backline route's
overhead / LiteLLM's overhead in the same row. Also the server CPU time per
request (/proc) and RSS. Never run by the test suite.

--floor adds bench/ai_floor_server.py to the back-to-back rows: a bare ASGI app
that does the database work of a chat completion with Backline's own ledger
functions and nothing else, so its overhead is what the admission and the
settlement cost on this machine.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
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
FLOOR_SERVER = """
import os, sys, uvicorn
sys.path[:0] = [{root!r}, {bench!r}]
os.environ["DATABASE_URL"] = {db!r}
from ai_floor_server import app
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""
FLOOR = "floor: ledger only (bench/ai_floor_server.py)"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
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


def load_client(conc: int) -> aiohttp.ClientSession:
    """The load generator's HTTP client: aiohttp, one keep-alive connection per concurrent client.

    Not httpx: httpcore's pool scans every connection on each request start and finish
    (has_expired/is_idle checks with socket calls), so at 64 connections the client spent
    1.2 ms of CPU per request against the fake and 2.4-5 ms against slower servers, on the
    same two cores as the servers it measured."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=conc), timeout=aiohttp.ClientTimeout(total=60)
    )


async def post(client: aiohttp.ClientSession, url: str, headers: dict[str, str], body: Any) -> None:
    async with client.post(url, headers=headers, json=body) as r:
        text = await r.text()
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status} {text[:200]}")


async def run_load(
    url: str, users: list[tuple[dict[str, str], dict[str, Any]]], n: int, conc: int
) -> list[float]:
    """n requests from conc concurrent clients; client i acts as users[i % len(users)]."""
    lat: list[float] = []
    errors: list[str] = []
    async with load_client(conc) as client:
        queue = list(range(n))

        async def worker(i: int) -> None:
            headers, body = users[i % len(users)]
            while queue:
                queue.pop()
                t0 = time.perf_counter()
                try:
                    await post(client, url, headers, body)
                except aiohttp.ClientConnectionError:  # an overloaded box resets a connection now and then
                    errors.append(url)
                    continue
                lat.append((time.perf_counter() - t0) * 1000)

        for i in range(min(conc, 8)):  # warm-up connections
            await post(client, url, *users[i % len(users)])
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
    async with load_client(conc) as client:
        for i in range(min(conc, 8)):  # warm-up connections
            await post(client, url, *users[i % len(users)])
        per_client = n // conc
        start = time.perf_counter()

        async def worker(i: int) -> None:
            headers, body = users[i % len(users)]
            at = start + rng.expovariate(rate / conc)
            for _ in range(per_client):
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                t0 = time.perf_counter()
                await post(client, url, headers, body)
                lat.append((time.perf_counter() - t0) * 1000)
                at += rng.expovariate(rate / conc)

        await asyncio.gather(*(worker(i) for i in range(conc)))
    return lat


def first_content(line: str) -> bool:
    """Does this SSE/JSON line carry the first generated text, in any of the four wire formats?

    OpenAI chunks (direct, LiteLLM, /v1/chat/completions): choices[0].delta.content; Backline's
    /v1/generate: {"type": "delta", "text"}; Anthropic: content_block_delta's delta.text;
    Gemini: candidates[0].content.parts[0].text. Role-only and empty chunks do not count."""
    if not line.startswith("data:"):
        return False
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return False
    data = json.loads(payload)
    if "choices" in data:
        return bool(data["choices"] and (data["choices"][0].get("delta") or {}).get("content"))
    if data.get("type") == "delta":
        return bool(data.get("text"))
    if data.get("type") == "content_block_delta":
        return bool((data.get("delta") or {}).get("text"))
    if "candidates" in data:
        parts = ((data["candidates"] or [{}])[0].get("content") or {}).get("parts") or [{}]
        return bool(parts[0].get("text"))
    return False


async def first_token(url: str, headers: dict[str, str], body: dict[str, Any], n: int) -> list[float]:
    out: list[float] = []
    async with load_client(1) as client:
        await post(client, url, headers, body)  # warm-up
        for _ in range(n):
            t0 = time.perf_counter()
            seen = False
            async with client.post(url, headers=headers, json=body) as resp:
                async for raw in resp.content:
                    if not seen and first_content(raw.decode().rstrip("\r\n")):
                        out.append((time.perf_counter() - t0) * 1000)
                        seen = True
            if not seen:
                raise RuntimeError(f"{url}: no content in the stream")
    return out


def proxy_pids(pid: int) -> list[int]:
    """The process and all its descendants (uvicorn --workers, LiteLLM's server process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        children = Path(f"/proc/{p}/task/{p}/children")
        if children.exists():
            todo += [int(x) for x in children.read_text().split()]
    return out


def rss_kb(pid: int) -> int:
    total = 0
    for p in proxy_pids(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in proxy_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


Users = list[tuple[dict[str, str], dict[str, Any]]]


@dataclass
class Contender:
    """One way of making the same chat call: the direct call, a Backline route, LiteLLM."""

    name: str
    url: str
    users: Users  # (headers, body) per concurrent client
    stream_url: str
    stream_body: dict[str, Any]  # user 0's streaming request
    pid: int | None = None  # server process (CPU time per request)


@dataclass
class Measured:
    latencies: list[float]  # ms
    server_cpu: float | None  # ms of the server process(es) per request
    client_cpu: float  # ms of this load generator per request


def measure_row(
    contenders: list[Contender], rounds: int, run: Callable[[Contender], list[float]]
) -> dict[str, Measured]:
    """Rounds in which every contender takes its turn (the order rotates each round, so no one
    always runs right after another): latencies, and the server's and the load generator's CPU
    per request (the generator shares the cores: what it spends, the servers cannot)."""
    lat: dict[str, list[float]] = {c.name: [] for c in contenders}
    cpu: dict[str, float] = {c.name: 0.0 for c in contenders}
    client: dict[str, float] = {c.name: 0.0 for c in contenders}
    for r in range(rounds):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            before, client_before = cpu_seconds(c.pid) if c.pid else 0.0, time.process_time()
            lat[c.name] += run(c)
            client[c.name] += time.process_time() - client_before
            if c.pid:
                cpu[c.name] += cpu_seconds(c.pid) - before
    per_request = {c.name: 1000 / max(len(lat[c.name]), 1) for c in contenders}
    return {
        c.name: Measured(
            lat[c.name],
            cpu[c.name] * per_request[c.name] if c.pid else None,
            client[c.name] * per_request[c.name],
        )
        for c in contenders
    }


def summarize(measured: dict[str, Measured], p99: bool = True) -> dict[str, Any]:
    """Percentiles per contender; overhead = contender percentile - direct percentile; and each
    Backline route's overhead as a fraction of LiteLLM's (the target: <= 0.2)."""
    direct = measured["direct"].latencies
    d50, d99 = statistics.median(direct), pct(direct, 99)
    row: dict[str, Any] = {}
    for name, m in measured.items():
        lat = m.latencies
        entry: dict[str, Any] = {"p50_ms": round(statistics.median(lat), 3)}
        if p99:
            entry["p99_ms"] = round(pct(lat, 99), 3)
        if name != "direct":
            entry["overhead_p50_ms"] = round(statistics.median(lat) - d50, 3)
            if p99:
                entry["overhead_p99_ms"] = round(pct(lat, 99) - d99, 3)
        if m.server_cpu is not None:
            entry["server_cpu_ms_per_request"] = round(m.server_cpu, 3)
        entry["client_cpu_ms_per_request"] = round(m.client_cpu, 3)
        row[name] = entry
    lite = row.get("litellm")
    if lite:
        for name, entry in row.items():
            if name.startswith("backline"):
                for q in ("p50", "p99") if p99 else ("p50",):
                    base = lite[f"overhead_{q}_ms"]
                    entry[f"vs_litellm_{q}"] = (
                        round(entry[f"overhead_{q}_ms"] / base, 3) if base > 0 else None
                    )
    return row


# The newest whose [proxy] extra resolves from the package index this machine reaches (later ones
# pin litellm-proxy / litellm-proxy-extras builds it lacks); 1.107.0 was a compromised release.
LITELLM_VERSION = "1.106.12"
LITELLM_CONFIG = """\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {api_base}
      api_key: sk-bench-1234
litellm_settings:
  set_verbose: false
  json_logs: false
  drop_params: true
  turn_off_message_logging: true
  telemetry: false
general_settings:
  master_key: {master_key}
  disable_spend_logs: true
  disable_error_logs: true
  background_health_checks: false
"""
LITELLM_MASTER = "sk-litellm-bench-master"


def litellm_venv(folder: Path) -> Path:
    """LiteLLM's proxy in its own venv under `folder` (installed on first use; never a dependency
    of the project). Returns the `litellm` CLI."""
    cli = folder / "venv" / "bin" / "litellm"
    marker = folder / f"installed-{LITELLM_VERSION}-httptools"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"installing litellm[proxy]=={LITELLM_VERSION} into {folder} ...", file=sys.stderr)
        # httptools: the HTTP parser Backline's uvicorn uses (litellm[proxy] alone runs uvicorn
        # on the pure-Python h11), so both servers parse HTTP alike.
        subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
        subprocess.run(
            [
                str(folder / "venv" / "bin" / "pip"),
                "install",
                "-q",
                f"litellm[proxy]=={LITELLM_VERSION}",
                "httptools",
            ],
            check=True,
        )
        marker.touch()
    return cli


def start_litellm(folder: Path, fake_url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """LiteLLM's proxy server on the fake provider: one model, the master key as the only
    accepted key, no database (so no virtual keys, budgets, rate limits or spend rows), spend
    and error logs off, verbose logging off, `workers` uvicorn workers."""
    cli = litellm_venv(folder)
    config = folder / "config.yaml"
    config.write_text(LITELLM_CONFIG.format(api_base=fake_url + "/v1", master_key=LITELLM_MASTER))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL")}
    env.update(
        {"LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION", "NO_DOCS": "True",
         "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no network fetch at startup
    )  # fmt: skip
    return subprocess.Popen(
        [str(cli), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", str(workers)],
        env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "wb"),
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1600, help="per contender and row")
    ap.add_argument("--workers", type=int, default=1, help="server processes, Backline and LiteLLM alike")
    ap.add_argument("--rounds", type=int, default=8, help="rounds per row; every contender runs once a round")
    ap.add_argument(
        "--rate", type=float, default=200, help="paced 64-client row: requests/s in total (0 = skip)"
    )
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument(
        "--clients", default="1,64", help="back-to-back concurrency levels, comma separated (e.g. 1)"
    )
    ap.add_argument("--no-stream", action="store_true", help="skip the streaming first-token row")
    ap.add_argument(
        "--routes",
        default="generate,chat,messages,gemini",
        help="Backline routes to measure: generate, chat (OpenAI), messages (Anthropic), gemini",
    )
    ap.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    ap.add_argument("--litellm-dir", default="/tmp/backline-bench-litellm", help="LiteLLM's scratch folder")
    ap.add_argument("--json", action="store_true", help="JSON only (no summary table)")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also measure bench/ai_floor_server.py in the back-to-back rows (the database work "
        "of a chat completion and nothing else)",
    )
    ap.add_argument(
        "--async-commit",
        action="store_true",
        help="measurement only: the bench database commits without waiting for the WAL flush "
        "(shows what the durable admission's flush costs; never how Backline runs)",
    )
    args = ap.parse_args()

    admin = args.database_url or EmbeddedServer(ROOT / ".backline-bench").ensure_running().tcp_url()
    name = f"bl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    db = conninfo.make_conninfo(admin, dbname=name)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrations.migrate(db, ROOT / "migrations")
        if args.async_commit:
            # Sessions default to asynchronous commit; the ledger functions' own
            # `set synchronous_commit = on` ends with the call, so their COMMIT does not flush.
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("alter database {} set synchronous_commit = off").format(sql.Identifier(name))
                )
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
        fake_port, proxy_port, litellm_port, floor_port = free_port(), free_port(), free_port(), free_port()
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
        litellm_url = f"http://127.0.0.1:{litellm_port}"
        if not args.no_litellm:
            procs.append(start_litellm(Path(args.litellm_dir), fake_url, litellm_port, args.workers))
        floor_url = f"http://127.0.0.1:{floor_port}"
        if args.floor:
            floor = FLOOR_SERVER.format(root=str(ROOT), bench=str(ROOT / "bench"), db=db, port=floor_port)
            procs.append(subprocess.Popen([sys.executable, "-c", floor], env=env))
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        wait_up(fake_url + "/auth/v1/.well-known/jwks.json")
        wait_up(proxy_url + "/healthz")
        if not args.no_litellm:
            wait_up(litellm_url + "/health/liveliness", timeout=180)
        if args.floor:
            wait_up(floor_url)
        msgs = [{"role": "user", "content": "Say hello"}]
        direct_body = {"model": "gpt-4o-mini", "messages": msgs, "max_tokens": 16}
        direct_auth = {"authorization": "Bearer sk-bench-1234"}
        contenders = [
            Contender(
                "direct",
                fake_url + "/v1/chat/completions",
                [(direct_auth, direct_body)],
                fake_url + "/v1/chat/completions",
                {**direct_body, "stream": True},
            )
        ]
        key_ids: list[str] = []
        with httpx.Client() as client:
            for token in tokens:
                key = client.post(
                    proxy_url + "/v1/keys",
                    headers={"authorization": f"Bearer {token}"},
                    json={"provider": "openai", "key": "sk-bench-1234"},
                )
                key_ids.append(key.json()["id"])
        users = list(zip(tokens, key_ids, strict=True))
        pid = procs[1].pid
        # Every Backline route calls the same OpenAI chat completion on the fake (the stored
        # key, model "gpt-4o-mini"): the Anthropic and Gemini routes translate to it.
        routes = set(args.routes.split(","))
        if "generate" in routes:
            gen = [
                (
                    {"authorization": f"Bearer {t}"},
                    {"provider": "openai", "model": "gpt-4o-mini", "key_id": k, "messages": msgs,
                     "max_tokens": 16},
                )
                for t, k in users
            ]  # fmt: skip
            contenders.append(
                Contender("backline /v1/generate", proxy_url + "/v1/generate", gen,
                          proxy_url + "/v1/generate", {**gen[0][1], "stream": True}, pid)
            )  # fmt: skip
        chat = [({"authorization": f"Bearer {t}", "x-backline-key-id": k}, direct_body) for t, k in users]
        if "chat" in routes:
            contenders.append(
                Contender("backline /v1/chat/completions", proxy_url + "/v1/chat/completions", chat,
                          proxy_url + "/v1/chat/completions", {**direct_body, "stream": True}, pid)
            )  # fmt: skip
        if "messages" in routes:
            body = {"model": "openai/gpt-4o-mini", "messages": msgs, "max_tokens": 16}
            anth = [
                ({"x-api-key": t, "anthropic-version": "2023-06-01", "x-backline-key-id": k}, body)
                for t, k in users
            ]
            contenders.append(
                Contender("backline /v1/messages", proxy_url + "/v1/messages", anth,
                          proxy_url + "/v1/messages", {**body, "stream": True}, pid)
            )  # fmt: skip
        if "gemini" in routes:
            body = {
                "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
                "generationConfig": {"maxOutputTokens": 16},
            }
            gem = [({"x-goog-api-key": t, "x-backline-key-id": k}, body) for t, k in users]
            base = proxy_url + "/v1beta/models/openai/gpt-4o-mini"
            contenders.append(
                Contender("backline gemini :generateContent", base + ":generateContent", gem,
                          base + ":streamGenerateContent?alt=sse", body, pid)
            )  # fmt: skip
        if args.floor:  # the same requests as the OpenAI route's
            contenders.append(Contender(FLOOR, floor_url, chat, "", {}, procs[-1].pid))
        if not args.no_litellm:
            lite = [({"authorization": f"Bearer {LITELLM_MASTER}"}, direct_body)]
            contenders.append(
                Contender("litellm", litellm_url + "/v1/chat/completions", lite,
                          litellm_url + "/v1/chat/completions", {**direct_body, "stream": True},
                          procs[2].pid)
            )  # fmt: skip
        results: dict[str, Any] = {
            "requests_per_contender_and_row": args.requests,
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "litellm": None if args.no_litellm else LITELLM_VERSION,
            "durable_commits": not args.async_commit,
            "load_average_before": os.getloadavg(),
        }
        per_round = max(1, args.requests // args.rounds)
        servers = [c for c in contenders if c.name != FLOOR]  # the floor: back-to-back rows only
        for conc in (int(c) for c in args.clients.split(",")):
            results[f"c{conc}"] = summarize(
                measure_row(
                    contenders,
                    args.rounds,
                    lambda c, conc=conc: asyncio.run(run_load(c.url, c.users, per_round, conc)),  # type: ignore[misc]
                )
            )
        if args.rate > 0:
            results[f"c64_paced_{int(args.rate)}rps"] = summarize(
                measure_row(
                    servers,
                    args.rounds,
                    lambda c: asyncio.run(run_paced(c.url, c.users, max(64, per_round), 64, args.rate)),
                )
            )
        if not args.no_stream:
            n_stream = max(1, max(50, args.requests // 8) // args.rounds)
            results["stream_first_token"] = summarize(
                measure_row(
                    servers,
                    args.rounds,
                    lambda c: asyncio.run(first_token(c.stream_url, c.users[0][0], c.stream_body, n_stream)),
                )
            )
        results["backline_rss_mb"] = round(rss_kb(procs[1].pid) / 1024, 1)
        if not args.no_litellm:
            results["litellm_rss_mb"] = round(rss_kb(procs[2].pid) / 1024, 1)
        results["load_average_after"] = os.getloadavg()
        print(json.dumps(results, indent=2))
        if not args.json:
            print_table(results)
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def print_table(results: dict[str, Any]) -> None:
    """The rows as a markdown table: overhead p50 / p99 in ms (vs LiteLLM's overhead)."""
    rows = [k for k in results if k.startswith("c") and isinstance(results[k], dict) and k != "cpus"]
    rows += ["stream_first_token"] if "stream_first_token" in results else []
    names = [n for n in results[rows[0]] if n != "direct"] if rows else []
    print("\n| row | direct p50 / p99 | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for row in rows:
        d = results[row]["direct"]
        cells = [f"{d['p50_ms']:.2f} / {d.get('p99_ms', float('nan')):.2f}"]
        for n in names:
            e = results[row].get(n)
            if e is None:
                cells.append("-")
                continue
            cell = f"{e['overhead_p50_ms']:.2f} / {e.get('overhead_p99_ms', float('nan')):.2f}"
            if "vs_litellm_p50" in e:
                cell += f" ({e['vs_litellm_p50']}x / {e.get('vs_litellm_p99')}x)"
            cells.append(cell)
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
