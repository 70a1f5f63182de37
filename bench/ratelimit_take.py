"""Benchmark: what one private.rate_limit_take costs on the server, by window fill.

Measured inside the server (a DO block that takes and commits N times, timing
each take with clock_timestamp()), so the client round trip is not in it;
each take is its own transaction, as in production. Scenarios:
  - empty: a key whose previous event has always expired (window 1 us), so
    each take deletes one event and inserts one,
  - 1000 allowed: a key already holding --fill events in a one-hour window,
    each take admitted (the window grows by --takes during the run),
  - 1000 refused: the same fill at a limit of --fill, each take refused,
  - 1000 check: private.rate_limit_check (the hook's read-only path) on the
    filled key at a limit above the fill, each check passing,
  - hot key: in a database of its own where one key holds nearly every
    event (one busy user, as the planner's statistics see it after
    ANALYZE), a key whose --fill events were just deleted by a take and
    whose every take deletes the one before (window 1 ms): the deleted
    events stay in the table and its index until vacuum.
The scenarios run round-robin for --rounds rounds (a load swing on a shared
machine hits them alike); printed: the median over rounds of each round's
mean microseconds per take.

    PYTHONPATH=$PWD python bench/ratelimit_take.py [--database-url ADMIN_URL]

Without --database-url (or DATABASE_URL) it uses the embedded server in
.backline-bench. The benchmark database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from workers.db.embedded import EmbeddedServer
from workers.gen.contract import scratch_database
from workers.settings import PROJECT_ROOT

LOOP = """
do $bench$
declare
  v_start timestamptz;
  v_total interval := interval '0';
begin
  for i in 1..{takes} loop
    v_start := clock_timestamp();
    perform {call};
    v_total := v_total + (clock_timestamp() - v_start);
    commit;
  end loop;
  perform set_config('bench.us_per_take', (extract(epoch from v_total) * 1e6 / {takes})::text, false);
end
$bench$
"""


def fill(conn: psycopg.Connection[Any], key: str, events: int) -> None:
    """Give `key` `events` counted requests in the current hour, through the limiter itself."""
    conn.execute(
        "select count(*) from generate_series(1, %s) g,"
        " lateral private.rate_limit_take(%s, 1000000000, '1 hour', 1 + 0 * g) t where t.allowed",
        (events, key),
    )


def us_per_take(
    conn: psycopg.Connection[Any],
    key: str,
    limit: int,
    window: str,
    takes: int,
    function: str = "rate_limit_take",
) -> float:
    call = sql.SQL("private.{}({}, {}, {}::interval)").format(
        sql.Identifier(function), sql.Literal(key), sql.Literal(limit), sql.Literal(window)
    )
    conn.execute(sql.SQL(LOOP).format(takes=sql.Literal(takes), call=call))
    row = conn.execute("select current_setting('bench.us_per_take')::float8").fetchone()
    assert row is not None
    return float(row[0])


def hot_key_us_per_take(conn: psycopg.Connection[Any], round_no: int, events: int, takes: int) -> float:
    """The hot-key scenario on `conn`, a database only it uses (see the module docstring)."""
    key = f"bench:hot:{round_no}"
    fill(conn, key, events)
    conn.execute("analyze private.rate_limit_events")  # what autovacuum does as the key grows
    us_per_take(conn, key, 1000000000, "1 millisecond", 1)  # deletes the fill
    return us_per_take(conn, key, 1000000000, "1 millisecond", takes)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--takes", type=int, default=200)
    parser.add_argument("--fill", type=int, default=1000)
    args = parser.parse_args()
    embedded = EmbeddedServer(Path(PROJECT_ROOT / ".backline-bench"))
    admin = args.database_url or embedded.ensure_running().tcp_url()
    with scratch_database(admin) as url, scratch_database(admin) as hot_url:
        with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(hot_url, autocommit=True) as hot:
            for c in (conn, hot):
                c.execute("set synchronous_commit = off")  # time the limiter, not the WAL flush
            full_label, refused_label = f"{args.fill} allowed", f"{args.fill} refused"
            check_label = f"{args.fill} check"
            samples: dict[str, list[float]] = {
                name: [] for name in ("empty", full_label, refused_label, check_label, "hot key")
            }
            for round_no in range(args.rounds + 1):  # round 0 warms up plans and caches
                full, at_limit = f"bench:full:{round_no}", f"bench:limit:{round_no}"
                fill(conn, full, args.fill)
                fill(conn, at_limit, args.fill)
                results = {
                    "empty": us_per_take(conn, f"bench:empty:{round_no}", 1000, "1 microsecond", args.takes),
                    full_label: us_per_take(conn, full, 1000000000, "1 hour", args.takes),
                    refused_label: us_per_take(conn, at_limit, args.fill, "1 hour", args.takes),
                    check_label: us_per_take(
                        conn, at_limit, args.fill + 1, "1 hour", args.takes, "rate_limit_check"
                    ),
                    "hot key": hot_key_us_per_take(hot, round_no, args.fill, args.takes),
                }
                if round_no:
                    for scenario, value in results.items():
                        samples[scenario].append(value)
        print(f"{'limiter call (server side)':<32} {'us/call':>8}  (median of {args.rounds} rounds)")
        for scenario, values in samples.items():
            print(f"{scenario:<32} {statistics.median(values):>8.1f}")


if __name__ == "__main__":
    main()
