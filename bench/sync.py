"""Benchmark: library sync, import and the hot read paths, with RLS versus without.

Seeds a fresh migrated database, then times:
  - sync_pull of 10,000 changes (one page),
  - sync_push of 1,000 changes (updates with base versions),
  - import_local of 10,000 local documents,
  (median of --repeat runs), and
  - "my 50 newest documents" and an explore page, on a table of 1,000,000
    documents from 10,000 users (median [p25-p75] of --requests requests),
each as a signed-in user through RLS (`act_as`, exactly like PostgREST) and the
same SQL without RLS: service_role for the queries and explore; for the RPCs
that need a user (pull, push, import) the table owner with the same JWT claims
(service_role is not granted those RPCs). Prints times and ratios
(targets: RLS overhead <= 1.5x, pull 10k < 1 s, import 10k < 3 s).

The big-table requests run the way PostgREST runs them, for the RLS path and
the baseline alike: one transaction per request (role, claims and search_path
set with set_config, then the query, then COMMIT: db-tx-end = commit) with the
filter values as parameters ($1) in a statement that is prepared once per
connection and re-executed (db-prepared-statements = true, PostgREST's
default; "prepared"). Two connections serve both roles, half of each side's
requests on each; each role has its own prepared statement (the query after a
comment naming the role), as a plan made under RLS is re-made when the role
changes. Because
PostgreSQL may keep planning a prepared statement per execution (custom plans)
or reuse one generic plan, decided per statement by cost estimates, the same
requests are also timed with plan_cache_mode forced to each side ("custom",
"generic") and without prepared statements ("unprepared", as with
db-prepared-statements = false behind a transaction pooler). RLS and baseline
requests alternate, so both see the same machine load; only the query is timed.

    PYTHONPATH=$PWD python bench/sync.py [--database-url ADMIN_URL] [--repeat 50] [--documents 1000000]
        [--requests 2000] [--no-audit] [--writes-only]

--no-audit disables the audit-trail triggers (audit_changes_after_*, issue #14) on
every table, so running with and without it measures their write overhead;
--writes-only stops after import, pull and push (no big-table seed);
--audit-overhead only times sync_push of 1,000 changes as the signed-in user,
alternating audit triggers on and off in the same database (--repeat runs each,
interleaved, so both see the same machine load) and prints the two medians.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from workers.db.embedded import EmbeddedServer
from workers.db.impersonate import act_as, claims_for
from workers.gen.contract import scratch_database
from workers.settings import PROJECT_ROOT

USERS = 10_000
LOOP = {"name": "Loop", "bars": 4, "color": "#FFAA00", "chords": ["C", "G", "Am", "F"], "icons": ["drum"]}
MY_NEWEST = (
    "select id, kind, title, version, created_at from public.documents"
    " where owner_id = %(me)s order by created_at desc, id desc limit 50"
)
EXPLORE = "select public.explore('loop', %(sort)s, null, null, 20)"


@contextmanager
def without_rls(
    conn: psycopg.Connection[Any], user: uuid.UUID, commit: bool
) -> Iterator[psycopg.Cursor[Any]]:
    """The table owner (RLS bypassed) with the user's claims, so auth.uid() still works."""
    with conn.transaction(force_rollback=not commit), conn.cursor() as cur:
        cur.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims_for(user)),))
        cur.execute("select set_config('search_path', 'public, extensions', true)")
        yield cur


def new_user(conn: psycopg.Connection[Any]) -> uuid.UUID:
    uid = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, aud, role, email, created_at, updated_at)"
        " values (%s, 'authenticated', 'authenticated', %s, now(), now())",
        (uid, f"{uid.hex}@bench.test"),
    )
    conn.execute("update public.profiles set plan = 'pro' where id = %s", (uid,))
    conn.commit()
    return uid


def library(prefix: str, n: int) -> str:
    return json.dumps(
        {"loop": [{"local_id": f"{prefix}-{i}", "title": f"Loop {i}", "body": LOOP} for i in range(n)]}
    )


def seed_big(conn: psycopg.Connection[Any], documents: int) -> uuid.UUID:
    """USERS users and `documents` documents (30% public), bulk-inserted with triggers off."""
    conn.execute(
        """insert into auth.users (id, aud, role, email, created_at, updated_at)
           select gen_random_uuid(), 'authenticated', 'authenticated', 'u' || g || '@bench.test', now(), now()
             from generate_series(1, %s) g""",
        (USERS,),
    )
    conn.execute(
        "create temp table bench_users as select id, row_number() over (order by id) n from auth.users"
    )
    conn.execute("drop index public.documents_search_idx")
    conn.execute("set session_replication_role = replica")
    conn.execute(
        """insert into public.documents
             (owner_id, kind, title, body, visibility, view_count, fork_count, created_at)
           select u.id, 'loop', 'Loop ' || g,
                  jsonb_build_object('name', 'Loop ' || g, 'bars', 4, 'color', '#FFAA00',
                                     'chords', jsonb_build_array('C', 'G'), 'icons', '[]'::jsonb),
                  case when g %% 10 < 3 then 'public' else 'private' end, g %% 997, g %% 89,
                  now() - make_interval(secs => g)
             from generate_series(1, %s) g join bench_users u on u.n = 1 + (g %% %s)""",
        (documents, USERS),
    )
    conn.execute("set session_replication_role = origin")
    conn.execute("create index documents_search_idx on public.documents using gin (search)")
    me = conn.execute("select id from bench_users where n = 1").fetchone()[0]  # type: ignore[index]
    conn.commit()
    return uuid.UUID(str(me))


def disable_audit_triggers(conn: psycopg.Connection[Any], enable: bool = False) -> None:
    """Turn the audit-trail triggers off (or back on) on every table: the overhead's baseline."""
    rows = conn.execute(
        "select tgrelid::regclass::text, tgname from pg_trigger"
        " where tgname in ('audit_changes_after_insert', 'audit_changes_after_update',"
        " 'audit_changes_after_delete')"
    ).fetchall()
    for table, trigger in rows:
        statement = sql.SQL(
            "alter table {} enable trigger {}" if enable else "alter table {} disable trigger {}"
        )
        conn.execute(statement.format(sql.SQL(table), sql.Identifier(trigger)))


def push_changes(conn: psycopg.Connection[Any], ids: list[Any], label: str) -> str:
    versions: dict[Any, int] = dict(
        conn.execute("select id, version from public.documents where id = any(%s)", (ids,)).fetchall()
    )
    conn.commit()
    return json.dumps(
        [
            {
                "change_id": f"{label}-{i}",
                "id": str(d),
                "base_version": versions[d],
                "body": {**LOOP, "name": label},
            }
            for i, d in enumerate(ids)
        ]
    )


def backend_cpu_seconds(conn: psycopg.Connection[Any]) -> float | None:
    """CPU time (user + system) the connection's server process has used, when the server runs
    on this machine (/proc); unlike wall time it barely moves with other processes' load."""
    row = conn.execute("select pg_backend_pid()").fetchone()
    conn.commit()
    try:
        fields = Path(f"/proc/{row[0] if row else 0}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def audit_overhead(conn: psycopg.Connection[Any], repeat: int) -> None:
    """sync_push of 1,000 changes through RLS, audit triggers on vs off, interleaved.

    Prints the median wall time of each side and, when the server runs on this machine,
    the server process's CPU time per push (the steadier figure on a loaded machine)."""
    user = new_user(conn)
    with act_as(conn, user, rollback=False) as cur:
        cur.execute("select public.import_local(%s)", (library("a", 1000),))
    ids = [r[0] for r in conn.execute("select id from public.documents where owner_id = %s", (user,))]
    conn.commit()
    times: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, float] = {True: 0.0, False: 0.0}
    for run in range(repeat):
        for audited in (True, False) if run % 2 == 0 else (False, True):
            disable_audit_triggers(conn, enable=audited)
            conn.commit()
            changes = push_changes(conn, ids, f"{'a' if audited else 'n'}{run}")
            cpu_before = backend_cpu_seconds(conn)
            with act_as(conn, user, rollback=False) as cur:
                t = time.perf_counter()
                res = cur.execute("select public.sync_push(%s)", (changes,)).fetchone()
                times[audited].append(time.perf_counter() - t)
            cpu_after = backend_cpu_seconds(conn)
            if cpu_before is not None and cpu_after is not None:
                cpu[audited] += cpu_after - cpu_before
            assert res is not None and all(x["status"] == "applied" for x in res[0]["results"])
    on, off = statistics.median(times[True]) * 1000, statistics.median(times[False]) * 1000
    audited_rows = conn.execute(
        "select count(*) from public.audit_changes where user_id = %s", (user,)
    ).fetchone()
    print(f"sync_push 1,000 changes (RLS), {repeat} runs each, interleaved")
    print(f"  audit triggers on   {on:9.2f} ms (median)")
    print(f"  audit triggers off  {off:9.2f} ms (median)")
    print(f"  overhead            {(on / off - 1) * 100:8.1f} %   (target < 15 %)")
    if cpu[False]:
        cpu_on, cpu_off = cpu[True] / repeat * 1000, cpu[False] / repeat * 1000
        print(
            f"  server CPU per push: on {cpu_on:.1f} ms, off {cpu_off:.1f} ms,"
            f" overhead {(cpu_on / cpu_off - 1) * 100:.1f} %"
        )
    print(f"  (audit rows written for the user: {audited_rows[0] if audited_rows else 0})")


def report(name: str, rls_ms: float, base_ms: float, target: str = "") -> None:
    print(f"{name:<34} {rls_ms:10.2f} ms  {base_ms:10.2f} ms  {rls_ms / base_ms:6.2f}x  {target}")


Caller = tuple[uuid.UUID | None, str]  # (user, role)
BLOCKS = 5


def tagged(query: str, role: str) -> str:
    """The query with a leading comment naming the role: the same SQL, but its own prepared
    statement (psycopg prepares per query text), so a plan made under RLS is never re-made
    because the other role used the statement on the same connection."""
    return f"/* {role} */ {query}"


def timed_request(
    conn: psycopg.Connection[Any], caller: Caller, query: str, params: dict[str, Any], prepare: bool
) -> tuple[float, list[Any]]:
    """One request the way PostgREST runs it: a transaction with role + claims, the query, COMMIT.

    prepare=True is PostgREST's default (db-prepared-statements = true: every statement is
    parametrized and prepared once per connection, then re-executed); prepare=False is
    db-prepared-statements = false (parametrized but parsed and planned on every request,
    as behind a transaction-mode pooler). Only the query is timed, not the role switch.
    """
    user, role = caller
    with act_as(conn, user, role, rollback=False) as cur:  # db-tx-end = commit (the default)
        start = time.perf_counter()
        rows = cur.execute(tagged(query, role), params, prepare=prepare).fetchall()
        elapsed = time.perf_counter() - start
    return elapsed, rows


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples, n=4)
    return q[0] * 1000, statistics.median(samples) * 1000, q[2] * 1000


def plans_used(conns: tuple[psycopg.Connection[Any], ...], query: str, role: str) -> tuple[int, int]:
    """Generic and custom plans run by the role's prepared statement of `query`, all connections."""
    generic = custom = 0
    text = tagged(query, role).replace("%(me)s", "$1").replace("%(sort)s", "$1")
    for conn in conns:
        row = conn.execute(
            "select generic_plans, custom_plans from pg_prepared_statements where statement = %s", (text,)
        ).fetchone()
        conn.commit()
        if row:
            generic, custom = generic + int(row[0]), custom + int(row[1])
    return generic, custom


MODES = (
    # label, prepared, plan_cache_mode (set alike on both connections)
    ("prepared", True, "auto"),
    ("custom", True, "force_custom_plan"),
    ("generic", True, "force_generic_plan"),
    ("unprepared", False, "auto"),
)


def compare_requests(
    name: str,
    query: str,
    params: dict[str, Any],
    conns: tuple[psycopg.Connection[Any], psycopg.Connection[Any]],
    rls: Caller,
    base: Caller,
    requests: int,
    check: Callable[[list[Any]], bool],
) -> None:
    """Median [p25-p75] of `requests` RLS and baseline requests in each statement mode of MODES.

    Fairness: RLS and baseline requests alternate (both see the same machine load), and each
    side runs half of its requests on each of the two connections, in both orders. Two
    backends running the very same query and role can differ by up to 1.8x for a while
    (which core the scheduler puts each next to the client on a 2-core machine), so a
    connection per side would measure the connections, not RLS. The ratio is of the
    medians; "blocks" is the lowest and highest ratio over BLOCKS consecutive slices.

    "prepared" is what PostgREST gets: PostgreSQL plans the first 5 executions of a prepared
    statement with the parameter values (custom plans), then keeps reusing one generic plan
    unless its estimated cost is higher than the custom plans' average. That choice can flip
    on a small estimate difference between the two roles, so "custom" (planned on every
    request) and "generic" (planned once) force each side of it, for both paths alike.
    """
    for mode, prepare, plan_cache_mode in MODES:
        for conn in conns:
            conn.execute(sql.SQL("set plan_cache_mode = {}").format(sql.Literal(plan_cache_mode)))
            conn.commit()
        for _ in range(20):  # warm-up; prepared: the 5 custom plans before PostgreSQL's choice
            for conn in conns:
                for caller in (rls, base):
                    _, rows = timed_request(conn, caller, query, params, prepare)
                    assert check(rows), (name, caller[1], rows[:1])
        times: dict[str, list[float]] = {"rls": [], "base": []}
        for i in range(requests):
            first, second = conns if (i // 2) % 2 == 0 else conns[::-1]
            order = ((first, "rls", rls), (second, "base", base))
            for conn, label, caller in order if i % 2 == 0 else order[::-1]:
                times[label].append(timed_request(conn, caller, query, params, prepare)[0])
        r25, r50, r75 = quartiles(times["rls"])
        b25, b50, b75 = quartiles(times["base"])
        size = requests // BLOCKS
        blocks = [
            statistics.median(times["rls"][k * size : (k + 1) * size])
            / statistics.median(times["base"][k * size : (k + 1) * size])
            for k in range(BLOCKS)
        ]
        print(
            f"{name:<30} {mode:<10} {r50:6.3f} ms [{r25:.3f}-{r75:.3f}]  {b50:6.3f} ms [{b25:.3f}-{b75:.3f}]"
            f"  {r50 / b50:5.2f}x (blocks {min(blocks):.2f}-{max(blocks):.2f})"
        )
        if plan_cache_mode == "auto" and prepare:
            chosen = [f"{role}: {plans_used(conns, query, role)}" for _, role in (rls, base)]
            print(f"{'':<30} {'':<10} plans so far (generic, custom): {'; '.join(chosen)}")
    for conn in conns:
        conn.execute("reset plan_cache_mode")
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument(
        "--requests", type=int, default=2000, help="timed requests per role and mode on the big table"
    )
    parser.add_argument("--no-audit", action="store_true", help="disable the audit-trail triggers")
    parser.add_argument("--writes-only", action="store_true", help="only import, pull and push")
    parser.add_argument(
        "--audit-overhead", action="store_true", help="only sync_push with audit triggers on vs off"
    )
    args = parser.parse_args()
    admin = (
        args.database_url or EmbeddedServer(Path(PROJECT_ROOT / ".backline-bench")).ensure_running().tcp_url()
    )
    with scratch_database(admin) as url:
        with psycopg.connect(url) as conn:
            conn.execute(
                "update public.plans set imports_per_hour = 100000, api_writes_per_hour = 100000"
                " where id = 'pro'"
            )
            conn.execute("update public.document_kind_limits set max_documents = 1000000 where plan = 'pro'")
            if args.no_audit:
                disable_audit_triggers(conn)
                print("(audit triggers disabled)")
            conn.commit()
            if args.audit_overhead:
                audit_overhead(conn, args.repeat)
                return
            print(f"{'operation':<34} {'RLS':>13}  {'no RLS':>13}  {'ratio':>7}")

            # import 10k: a fresh user per run, alternating with and without RLS
            imp_rls, imp_base = [], []
            for run in range(3):
                u1, u2 = new_user(conn), new_user(conn)
                with act_as(conn, u1, rollback=False) as cur:
                    t = time.perf_counter()
                    res = cur.execute(
                        "select public.import_local(%s)", (library(f"r{run}", 10_000),)
                    ).fetchone()
                    imp_rls.append(time.perf_counter() - t)
                assert res is not None and res[0]["created"] == 10_000, res
                with without_rls(conn, u2, commit=True) as cur:
                    t = time.perf_counter()
                    cur.execute("select public.import_local(%s)", (library(f"b{run}", 10_000),))
                    imp_base.append(time.perf_counter() - t)
            report(
                "import_local 10,000 documents",
                statistics.median(imp_rls) * 1000,
                statistics.median(imp_base) * 1000,
                "(target < 3000 ms)",
            )
            puller = u1

            # pull 10k: one page of every change of a user with 10,000 documents
            def pull(cur: psycopg.Cursor[Any]) -> None:
                page = cur.execute("select public.sync_pull(null, 10000)").fetchone()[0]  # type: ignore[index]
                assert len(page["changes"]) == 10_000 and not page["hasMore"], len(page["changes"])

            rls = []
            base = []
            for _ in range(max(3, args.repeat // 10)):
                with act_as(conn, puller) as cur:
                    t = time.perf_counter()
                    pull(cur)
                    rls.append(time.perf_counter() - t)
                with without_rls(conn, puller, commit=False) as cur:
                    t = time.perf_counter()
                    pull(cur)
                    base.append(time.perf_counter() - t)
            report(
                "sync_pull 10,000 changes",
                statistics.median(rls) * 1000,
                statistics.median(base) * 1000,
                "(target < 1000 ms)",
            )

            # push 1k: updates with correct base versions (new change ids each run)
            ids = [
                r[0]
                for r in conn.execute(
                    "select id from public.documents where owner_id = %s order by id limit 1000", (puller,)
                )
            ]
            conn.commit()
            rls, base = [], []
            for run in range(3):
                for label, bucket in (("r", rls), ("b", base)):
                    versions: dict[Any, int] = dict(
                        conn.execute(
                            "select id, version from public.documents where id = any(%s)", (ids,)
                        ).fetchall()
                    )
                    conn.commit()
                    changes = json.dumps(
                        [
                            {
                                "change_id": f"{label}{run}-{i}",
                                "id": str(d),
                                "base_version": versions[d],
                                "body": {**LOOP, "name": f"v{run}"},
                            }
                            for i, d in enumerate(ids)
                        ]
                    )
                    ctx = (
                        act_as(conn, puller, rollback=False)
                        if label == "r"
                        else without_rls(conn, puller, True)
                    )
                    with ctx as cur:
                        t = time.perf_counter()
                        res = cur.execute("select public.sync_push(%s)", (changes,)).fetchone()
                        bucket.append(time.perf_counter() - t)
                    assert res is not None and all(x["status"] == "applied" for x in res[0]["results"])
            report("sync_push 1,000 changes", statistics.median(rls) * 1000, statistics.median(base) * 1000)
            if args.writes_only:
                return

            # the big table
            t0 = time.perf_counter()
            me = seed_big(conn, args.documents)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("vacuum analyze public.documents")
        total = psycopg.connect(url).execute("select count(*) from public.documents").fetchone()[0]  # type: ignore[index]
        print(f"(seeded {total:,} documents from {USERS:,} users in {time.perf_counter() - t0:.1f}s)")
        # Two connections serving both roles, like a PostgREST pool (see compare_requests).
        print(f"{'request':<30} {'statements':<10} {'RLS median [p25-p75]':>26}  {'no RLS':>24}  ratio")
        with psycopg.connect(url) as conn1, psycopg.connect(url) as conn2:
            newest = min(50, args.documents // USERS)
            compare_requests(
                "my 50 newest (1M documents)",
                MY_NEWEST,
                {"me": me},
                (conn1, conn2),
                (me, "authenticated"),
                (None, "service_role"),
                args.requests,
                lambda rows: len(rows) == newest,
            )
            page_size = min(20, args.documents * 3 // 10)
            for sort in ("newest", "most_viewed"):
                compare_requests(
                    f"explore page, {sort} (1M docs)",
                    EXPLORE,
                    {"sort": sort},
                    (conn1, conn2),
                    (None, "anon"),
                    (None, "service_role"),
                    args.requests,
                    lambda rows: len(rows[0][0]["items"]) == page_size,
                )


if __name__ == "__main__":
    main()
