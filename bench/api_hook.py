"""Benchmark: what the API rate-limit hook adds to one Data API request.

Each request is what PostgREST sends for one call: BEGIN (READ ONLY for a
read), SET LOCAL ROLE authenticated, the request settings (claims, method,
path), the pre-request hook, a one-row query, COMMIT. Times (median of
--repeat requests, one client):
  - the request without the hook (the baseline),
  - with the meter disabled: a write (hook counts in the request's
    transaction) and a read (hook only checks the window),
  - with the meter enabled: a write and a read (hook counts both in the meter
    session, committed on its own, so a failing request stays counted).
Within each meter mode the three kinds run interleaved (baseline, write,
read, baseline, ...), so a load swing on a shared machine hits all of them
alike; each hook's added time is against the baseline of its own mode. Each
kind of request has its own window, so by the end it holds --repeat counted
requests per meter mode (1,000 is the free plan's hourly read budget). A
take reads the key's counter, so its cost does not grow with that count; the
read-only check (meter off) still counts the window.

    PYTHONPATH=$PWD python bench/api_hook.py [--database-url ADMIN_URL] [--repeat 1000]

Without --database-url (or DATABASE_URL) it uses the embedded server in
.backline-bench. The benchmark database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from workers.db import read_meter
from workers.db.embedded import EmbeddedServer
from workers.gen.contract import scratch_database
from workers.settings import PROJECT_ROOT


def one_request_s(conn: psycopg.Connection[Any], claims: str, method: str, hook: bool) -> float:
    mode = "read only" if method == "GET" else "read write"
    start = time.perf_counter()
    conn.execute(f"begin isolation level read committed {mode}")
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
        " set_config('request.path', '/documents', true)",
        (claims, method),
    )
    if hook:
        conn.execute("select private.api_pre_request()")
    conn.execute("select id from public.profiles limit 1").fetchall()
    conn.execute("commit")
    return time.perf_counter() - start


KINDS = (("baseline", "GET", False), ("write", "POST", True), ("read", "GET", True))


def interleaved_ms(conn: psycopg.Connection[Any], claims: str, repeat: int) -> dict[str, float]:
    """Median ms of each kind, the kinds run round-robin."""
    samples: dict[str, list[float]] = {name: [] for name, _, _ in KINDS}
    for _ in range(repeat):
        for name, method, hook in KINDS:
            samples[name].append(one_request_s(conn, claims, method, hook))
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=1000)
    args = parser.parse_args()
    embedded = EmbeddedServer(Path(PROJECT_ROOT / ".backline-bench"))
    admin = args.database_url or embedded.ensure_running().tcp_url()
    with scratch_database(admin) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("update public.plans set api_reads_per_hour = 10e8, api_writes_per_hour = 10e8")
            user = uuid.uuid4()
            conn.execute(
                "insert into auth.users (id, aud, role, email)"
                " values (%s, 'authenticated', 'authenticated', %s)",
                (user, f"{user.hex}@bench.test"),
            )
            claims = json.dumps({"sub": str(user), "role": "authenticated", "aud": "authenticated"})
            results: dict[str, dict[str, float]] = {}
            for meter in ("off", "on"):
                if meter == "on":
                    read_meter.enable(conn)
                else:
                    read_meter.disable(conn)
                # each mode starts from an empty window (the counters go with the events)
                conn.execute("delete from private.rate_limit_events")
                conn.execute("delete from private.rate_limit_counts")
                interleaved_ms(conn, claims, 200)  # warm up plans, caches and the meter session
                results[meter] = interleaved_ms(conn, claims, args.repeat)
        print(f"{'request (one client)':<34} {'median':>9} {'hook adds':>10}")
        for meter, label in (("off", "meter off"), ("on", "meter on")):
            base = results[meter]["baseline"]
            print(f"{'without the hook, ' + label:<34} {base:>7.3f} ms")
            for kind, what in (("write", "write"), ("read", "read")):
                ms = results[meter][kind]
                print(f"{what + ', ' + label:<34} {ms:>7.3f} ms {ms - base:>+8.3f} ms")


if __name__ == "__main__":
    main()
