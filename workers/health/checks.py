"""The checks behind `backline health`: database, migrations, AI proxy, queue, cron, storage.

Each check returns a CheckResult (name, status ok|warn|fail, a one-line detail, a
JSON-able value). Checks never raise for what they observe: an unreachable
dependency is a `fail` result, so one broken part never hides the others.
Thresholds come from Settings (BACKLINE_HEALTH_*); docs/health.md explains each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg

from workers.db.connect import connect, first_line
from workers.errors import BacklineError
from workers.settings import Settings

Status = Literal["ok", "warn", "fail"]
CHECK_NAMES = ("database", "migrations", "ai", "queue", "cron", "storage")
AI_TIMEOUT_SECONDS = 5.0
Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "value": self.value}


def _worst(*statuses: Status) -> Status:
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "ok"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


# == database ==


def check_database(url: str | None, settings: Settings) -> tuple[CheckResult, Conn | None]:
    """Connect and run `select 1`; the latency is the whole round trip. Returns the open connection.

    url None: the embedded default is the target and it is not running.
    """
    if url is None:
        detail = f"the embedded database in {settings.data_dir} is not running (start it: `backline up`)"
        return CheckResult("database", "fail", detail, None), None
    started = time.perf_counter()
    try:
        conn = connect(url, autocommit=True)
        conn.execute("select 1").fetchone()
    except (BacklineError, psycopg.Error) as exc:
        return CheckResult("database", "fail", f"unreachable: {first_line(exc)}", None), None
    latency = round((time.perf_counter() - started) * 1000, 1)
    limit = settings.health_db_latency_warn_ms
    if latency > limit:
        return CheckResult(
            "database", "warn", f"slow: {latency} ms (warn above {limit:g} ms)", {"latency_ms": latency}
        ), conn
    return CheckResult("database", "ok", f"reachable in {latency} ms", {"latency_ms": latency}), conn


# == migrations ==


def check_migrations(conn: Conn, settings: Settings) -> CheckResult:
    """Every migration file applied, no applied version without a file, none edited after applying."""
    from workers.db.migrations import status

    try:
        states = status(conn, settings.migrations_dir)
    except BacklineError as exc:
        return CheckResult("migrations", "warn", f"cannot compare: {exc}", None)
    by_state: dict[str, list[str]] = {}
    for s in states:
        by_state.setdefault(s.state, []).append(f"{s.version}_{s.name}")
    pending, unknown = by_state.get("pending", []), by_state.get("missing-file", [])
    changed = by_state.get("changed", [])
    value = {
        "applied": len(by_state.get("applied", [])),
        "pending": pending,
        "unknown": unknown,
        "changed": changed,
    }
    problems: list[str] = []
    if pending:
        problems.append(f"{len(pending)} not applied (first {pending[0]}): run `backline db migrate`")
    if unknown:
        problems.append(f"{len(unknown)} applied but unknown to this checkout (first {unknown[0]})")
    if changed:
        problems.append(f"{len(changed)} edited after being applied (first {changed[0]})")
    if problems:
        return CheckResult("migrations", "fail" if pending or unknown else "warn", "; ".join(problems), value)
    return CheckResult("migrations", "ok", f"all {value['applied']} applied", value)


# == ai ==


def ai_base_url(settings: Settings) -> str | None:
    """The proxy's base URL (None: the check is off). A wildcard bind address is asked on loopback."""
    if settings.health_ai_url == "off":
        return None
    if settings.health_ai_url:
        return settings.health_ai_url
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(settings.ai_host, settings.ai_host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.ai_port}"


def check_ai(settings: Settings) -> CheckResult:
    """GET <proxy>/healthz: 200 with {"ok": true} (the proxy reached its database)."""
    import httpx

    base = ai_base_url(settings)
    if base is None:
        return CheckResult("ai", "ok", "not checked (BACKLINE_HEALTH_AI_URL=off)", None)
    url = f"{base}/healthz"
    started = time.perf_counter()
    try:
        response = httpx.get(url, timeout=AI_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return CheckResult("ai", "fail", f"no answer from {url}: {first_line(exc)}", {"url": url})
    latency = round((time.perf_counter() - started) * 1000, 1)
    value = {"url": url, "status_code": response.status_code, "latency_ms": latency}
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict) and body.get("ok") is True:
        return CheckResult("ai", "ok", f"{url} answered in {latency} ms", value)
    reason = ""
    if isinstance(body, dict) and body.get("database"):
        reason = f" (database {body['database']})"
    return CheckResult("ai", "fail", f"{url} answered HTTP {response.status_code}{reason}", value)


# == queue ==


def check_queue(conn: Conn, settings: Settings) -> CheckResult:
    """Due jobs waiting (backlog, the oldest one's wait) and jobs parked as dead recently."""
    backlog, oldest_wait = conn.execute(
        "select count(*), extract(epoch from now() - min(j.run_after))::float8 from public.jobs j"
        " where j.status = 'queued' and j.run_after <= now()"
    ).fetchone() or (0, None)
    window = timedelta(hours=settings.health_dead_jobs_window_hours)
    dead_rows = conn.execute(
        "select j.kind, count(*) from public.jobs j where j.status = 'dead' and j.finished_at > now() - %s"
        " group by j.kind order by count(*) desc, j.kind",
        (window,),
    ).fetchall()
    dead = sum(int(n) for _, n in dead_rows)
    dead_by_kind = {str(k): int(n) for k, n in dead_rows}
    value: dict[str, Any] = {
        "backlog": int(backlog),
        "oldest_wait_seconds": None if oldest_wait is None else round(float(oldest_wait), 1),
        "dead": dead,
        "dead_by_kind": dead_by_kind,
    }
    statuses: list[Status] = []
    problems: list[str] = []
    if dead >= settings.health_dead_jobs_fail:
        kinds = ", ".join(f"{k} {n}" for k, n in dead_by_kind.items())
        statuses.append("fail")
        problems.append(
            f"{dead} dead job(s) in the last {settings.health_dead_jobs_window_hours:g} h ({kinds})"
        )
    if oldest_wait is not None and oldest_wait > settings.health_queue_wait_warn_seconds:
        statuses.append("fail")
        problems.append(f"the oldest due job has waited {_ago(oldest_wait)}: are workers running?")
    if backlog >= settings.health_queue_backlog_warn:
        statuses.append("warn")
        problems.append(f"{backlog} due jobs waiting (warn at {settings.health_queue_backlog_warn})")
    if problems:
        return CheckResult("queue", _worst(*statuses), "; ".join(problems), value)
    wait = "" if oldest_wait is None else f", oldest waiting {_ago(oldest_wait)}"
    return CheckResult("queue", "ok", f"{backlog} due job(s) waiting{wait}, no dead jobs", value)


# == cron ==


def check_cron(conn: Conn, settings: Settings, now: datetime | None = None) -> CheckResult:
    """Every enabled schedule ran at its last due time (give or take the grace).

    A schedule is overdue when both the run after its last run (or its creation) and its
    recorded next run are more than the grace in the past. The first covers runs started by
    `backline cron run` (CI), which leave next_run_at alone; the second covers a schedule
    re-enabled or edited since its last run (next_run_at then starts from the edit).
    """
    from workers.cron.expr import CronError, CronExpr

    now = now or datetime.now(UTC)
    grace = timedelta(seconds=settings.health_cron_grace_seconds)
    rows = conn.execute(
        "select s.name, s.schedule, s.next_run_at, coalesce(s.last_run_at, s.created_at)"
        " from private.cron_schedules s where s.enabled order by s.name"
    ).fetchall()
    overdue: list[dict[str, Any]] = []
    invalid: list[str] = []
    for name, schedule, next_run_at, reference in rows:
        try:
            due = CronExpr.parse(schedule).next_after(reference)
        except CronError:
            invalid.append(name)
            continue
        if next_run_at is not None and next_run_at > due:
            due = next_run_at
        if due < now - grace:
            overdue.append(
                {"name": name, "due": due.isoformat(), "overdue_seconds": int((now - due).total_seconds())}
            )
    value = {"enabled": len(rows), "overdue": overdue, "invalid": invalid}
    if overdue or invalid:
        parts = [f"{o['name']} (due {_ago(o['overdue_seconds'])} ago)" for o in overdue]
        detail = f"{len(overdue)} schedule(s) did not run: {', '.join(parts)}" if overdue else ""
        if invalid:
            detail = "; ".join(filter(None, [detail, f"invalid expression: {', '.join(invalid)}"]))
        return CheckResult("cron", "fail", detail, value)
    return CheckResult("cron", "ok", f"all {len(rows)} enabled schedule(s) ran on time", value)


# == storage ==


def check_storage(conn: Conn, settings: Settings, url: str) -> CheckResult:
    """The required buckets exist, the storage transport answers, quota accounting matches the objects."""
    wanted = list(settings.health_buckets)
    present = {
        r[0]
        for r in conn.execute("select b.id from storage.buckets b where b.id = any(%s)", (wanted,)).fetchall()
    }
    missing = [b for b in wanted if b not in present]
    drift_users, drift_max = conn.execute(
        "select count(*), coalesce(max(abs(d.drift)), 0) from ("
        "  select p.storage_used - coalesce(sum(private.object_size(o.metadata)), 0) as drift"
        "    from public.profiles p left join storage.objects o on private.object_owner(o.owner_id) = p.id"
        "   group by p.id, p.storage_used) d where d.drift <> 0"
    ).fetchone() or (0, 0)
    transport_error = None
    probe = next((b for b in wanted if b in present), None)
    if probe is not None:
        transport_error = _probe_transport(settings, url, probe)
    value = {
        "buckets_missing": missing,
        "probed_bucket": probe,
        "transport_error": transport_error,
        "quota_drift_users": int(drift_users),
        "quota_drift_max_bytes": int(drift_max),
    }
    statuses: list[Status] = []
    problems: list[str] = []
    if missing:
        statuses.append("fail")
        problems.append(f"bucket(s) missing: {', '.join(missing)}")
    if transport_error:
        statuses.append("fail")
        problems.append(f"listing bucket {probe} failed: {transport_error}")
    if drift_users:
        statuses.append("warn")
        problems.append(
            f"storage_used disagrees with the stored objects for {drift_users} user(s)"
            f" (largest difference {int(drift_max)} bytes)"
        )
    if problems:
        return CheckResult("storage", _worst(*statuses), "; ".join(problems), value)
    return CheckResult(
        "storage",
        "ok",
        f"{len(wanted)} bucket(s) present, {probe or 'none'} listed, quotas consistent",
        value,
    )


def _probe_transport(settings: Settings, url: str, bucket: str) -> str | None:
    """List one object of a bucket through the configured transport (local or Supabase Storage)."""
    from workers.platform.factory import make_adapters

    try:
        adapters = make_adapters(settings, url)
    except BacklineError as exc:
        return str(exc)
    try:
        adapters.storage.list(bucket, "", limit=1)
    except Exception as exc:  # any transport failure is the finding, whatever its type
        return first_line(exc)
    finally:
        adapters.close()
    return None


# == all of them ==


def run_checks(settings: Settings, url: str | None) -> list[CheckResult]:
    """Run the checks in CHECK_NAMES order; database-backed ones fail together when it is down.

    url None: the embedded database is the target and is not running (reported, not started).
    """
    db_result, conn = check_database(url, settings)
    results: list[CheckResult] = [db_result]
    try:
        needs_db: dict[str, Callable[[Conn], CheckResult]] = {
            "migrations": lambda c: check_migrations(c, settings),
            "queue": lambda c: check_queue(c, settings),
            "cron": lambda c: check_cron(c, settings),
            "storage": lambda c: check_storage(c, settings, str(url)),
        }
        for name in CHECK_NAMES[1:]:
            if name == "ai":
                results.append(check_ai(settings))
            elif conn is None:
                results.append(CheckResult(name, "fail", "not checked: the database is unreachable", None))
            else:
                results.append(_guarded(name, needs_db[name], conn))
    finally:
        if conn is not None:
            conn.close()
    return results


def _guarded(name: str, check: Callable[[Conn], CheckResult], conn: Conn) -> CheckResult:
    """A database error inside one check is that check's failure, not the command's."""
    try:
        return check(conn)
    except psycopg.Error as exc:
        return CheckResult(name, "fail", f"database error: {first_line(exc)}", None)
