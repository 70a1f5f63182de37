"""Benchmark: what the API rate-limit hook adds to one Data API request.

Each request is what PostgREST sends for one call: BEGIN (READ ONLY for a
read), SET LOCAL ROLE authenticated, the request settings (claims, method,
path), the pre-request hook, a one-row query, COMMIT. Times (median of
--repeat requests, one client):
  - the request without the hook (the baseline, measured in the same run),
  - a write (hook counts in the request's transaction),
  - a read with the read meter disabled (hook only checks the window),
  - a read with the read meter enabled (hook counts in the meter session).
Prints each time and its ratio to the baseline. Each kind of request has its
own window, so by the end it holds --repeat counted requests (1,000 is the
free plan's hourly read budget): the limiter's cost grows with that count.

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
from psycopg import conninfo, sql

from workers.db import migrations, read_meter
from workers.db.embedded import EmbeddedServer
from workers.settings import PROJECT_ROOT


def request_ms(conn: psycopg.Connection[Any], claims: str, method: str, hook: bool, repeat: int) -> float:
    mode = "read only" if method == "GET" else "read write"
    samples = []
    for _ in range(repeat):
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
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=1000)
    args = parser.parse_args()
    embedded = EmbeddedServer(Path(PROJECT_ROOT / ".backline-bench"))
    admin = args.database_url or embedded.ensure_running().tcp_url()
    name = f"bl_bench_hook_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = conninfo.make_conninfo(admin, dbname=name)
    try:
        migrations.migrate(url, PROJECT_ROOT / "migrations")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("update public.plans set api_reads_per_hour = 10e8, api_writes_per_hour = 10e8")
            user = uuid.uuid4()
            conn.execute(
                "insert into auth.users (id, aud, role, email)"
                " values (%s, 'authenticated', 'authenticated', %s)",
                (user, f"{user.hex}@bench.test"),
            )
            claims = json.dumps({"sub": str(user), "role": "authenticated", "aud": "authenticated"})
            for method in ("GET", "POST"):  # warm up plans and caches
                request_ms(conn, claims, method, True, 200)
            base = request_ms(conn, claims, "GET", False, args.repeat)
            rows = [("request without the hook", base)]
            write = request_ms(conn, claims, "POST", True, args.repeat)
            rows.append(("write (counted in the request)", write))
            read_meter.disable(conn)
            rows.append(("read, meter off (check only)", request_ms(conn, claims, "GET", True, args.repeat)))
            read_meter.enable(conn)
            request_ms(conn, claims, "GET", True, 200)
            rows.append(("read, meter on (counted)", request_ms(conn, claims, "GET", True, args.repeat)))
        print(f"{'request (one client)':<34} {'median':>9} {'vs no hook':>11}")
        for label, ms in rows:
            print(f"{label:<34} {ms:>7.3f} ms {ms / base:>10.2f}x  (+{ms - base:.3f} ms)")
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
