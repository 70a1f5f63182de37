"""Schedules follow their edits: the next run is recomputed at once; disabled schedules stop."""

from __future__ import annotations

import json
import random
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.cron.test_cron_fire import add_schedule, fired_jobs
from tests.jobs.jobtools import start_cli
from workers.cli.main import app
from workers.cron.expr import CronExpr

EXPRESSIONS = [
    "* * * * *", "*/5 * * * *", "0 3 * * 1", "30 3 * * *", "0 */6 * * *", "15 10 1 * *",
    "0 0 29 2 *", "*/7 1-3 * jan,mar sun", "0 12 13 * fri", "0 0 31 * 5", "5-50/15 8-18/2 * * mon-fri",
    "0 0 * * 7", "59 23 31 12 *", "1,2,3 4 5 6 0", "0 9 1-7 * 1", "5/ * * * *", "10/20 * * * *",
    "@daily", "@weekly", "@monthly", "@yearly", "@hourly", "0 0 1 JAN *", "0 0 * * SUN",
]  # fmt: skip


def _sql_next(conn: psycopg.Connection[Any], expr: str, after: datetime) -> datetime:
    row = conn.execute("select private.cron_next_after(%s, %s)", (expr, after)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _schedule(url: str, name: str) -> tuple[str, bool, datetime | None]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select schedule, enabled, next_run_at from private.cron_schedules where name = %s", (name,)
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_sql_and_python_agree_on_the_next_run(db: psycopg.Connection[Any]) -> None:
    rng = random.Random(18)
    starts = [datetime(2026, 2, 28, 23, 59, 30, tzinfo=UTC), datetime(2027, 12, 31, 23, 59, tzinfo=UTC)]
    starts += [
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(3 * 525600)) for _ in range(6)
    ]
    for expr in EXPRESSIONS:
        for after in starts:
            assert _sql_next(db, expr, after) == CronExpr.parse(expr).next_after(after), (expr, after)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("bad", "needs 5 fields"),
        ("* * * *", "needs 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* * * foo *", "month: 'foo' is not a number"),
        ("*/0 * * * *", "bad step"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 30 2 *", "never fires"),
        ("1,,2 * * * *", "empty list item"),
    ],
)
def test_a_bad_expression_is_refused_and_changes_nothing(
    db: psycopg.Connection[Any], expr: str, message: str
) -> None:
    before = db.execute("select * from private.cron_schedules where name = 'metrics'").fetchone()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message) as info, db.transaction():
        db.execute("update private.cron_schedules set schedule = %s where name = 'metrics'", (expr,))
    assert info.value.diag.message_hint  # PostgREST passes the hint on; 22023 -> HTTP 400
    assert db.execute("select * from private.cron_schedules where name = 'metrics'").fetchone() == before


def test_an_sql_edit_recomputes_the_next_run_at_once(db: psycopg.Connection[Any]) -> None:
    # The bug: next_run_at stayed days away after the expression changed.
    db.execute(
        "update private.cron_schedules set next_run_at = now() + interval '6 days'"
        " where name = 'usage-report'"
    )
    db.execute("update private.cron_schedules set schedule = '* * * * *' where name = 'usage-report'")
    now = db.execute("select now()").fetchone()[0]  # type: ignore[index]
    row = db.execute("select next_run_at from private.cron_schedules where name = 'usage-report'").fetchone()
    assert row == (CronExpr.parse("* * * * *").next_after(now),)
    assert row[0] - now <= timedelta(minutes=1)  # type: ignore[index]
    # Other columns changing leave next_run_at alone (workers advance it when they fire).
    db.execute("update private.cron_schedules set description = 'x' where name = 'usage-report'")
    assert (
        db.execute("select next_run_at from private.cron_schedules where name = 'usage-report'").fetchone()
        == row
    )


def test_disabling_clears_the_next_run_and_enabling_starts_from_now(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "update private.cron_schedules set next_run_at = now() - interval '3 days' where name = 'metrics'"
    )
    db.execute("update private.cron_schedules set enabled = false where name = 'metrics'")
    assert db.execute("select next_run_at from private.cron_schedules where name = 'metrics'").fetchone() == (
        None,
    )
    db.execute("update private.cron_schedules set enabled = true where name = 'metrics'")
    now = db.execute("select now()").fetchone()[0]  # type: ignore[index]
    row = db.execute("select next_run_at from private.cron_schedules where name = 'metrics'").fetchone()
    assert row == (CronExpr.parse("0 */6 * * *").next_after(now),)  # the stale run is not fired late


def test_cron_set_changes_the_expression_and_the_next_run(clone_url: str) -> None:
    result = CliRunner().invoke(
        app, ["cron", "set", "usage-report", "*/5 * * * *", "--json", "--database-url", clone_url]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["schedule"] == "*/5 * * * *" and out["enabled"] is True
    schedule, enabled, next_run = _schedule(clone_url, "usage-report")
    assert schedule == "*/5 * * * *" and enabled and next_run is not None
    assert next_run - datetime.now(UTC) <= timedelta(minutes=5) and next_run.minute % 5 == 0
    listed = CliRunner().invoke(app, ["cron", "list", "--json", "--database-url", clone_url])
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "usage-report")
    assert row["schedule"] == "*/5 * * * *" and datetime.fromisoformat(row["next_run_at"]) == next_run

    result = CliRunner().invoke(
        app, ["cron", "set", "usage-report", "--disable", "--database-url", clone_url]
    )
    assert result.exit_code == 0, result.output
    assert "disabled" in result.stdout
    assert _schedule(clone_url, "usage-report") == ("*/5 * * * *", False, None)
    listed = CliRunner().invoke(app, ["cron", "list", "--json", "--database-url", clone_url])
    assert next(r for r in json.loads(listed.stdout) if r["name"] == "usage-report")["next_run_at"] is None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["usage-report", "61 * * * *"], 2, "outside 0-59"),
        (["usage-report", "* * *"], 2, "needs 5 fields"),
        (["usage-report"], 2, "give an expression and/or --enable/--disable"),
        (["no-such-schedule", "* * * * *"], 1, "no cron schedule named 'no-such-schedule'"),
    ],
)
def test_cron_set_rejects_bad_input_and_changes_nothing(
    clone_url: str, args: list[str], code: int, message: str
) -> None:
    with psycopg.connect(clone_url) as conn:
        before = conn.execute("select * from private.cron_schedules order by name").fetchall()
    result = CliRunner().invoke(app, ["cron", "set", *args, "--database-url", clone_url])
    assert result.exit_code == code, result.output
    assert message in (result.output + str(result.exception))
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select * from private.cron_schedules order by name").fetchall() == before


def test_a_disabled_schedule_stops_across_workers(clone_url: str) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute("update private.cron_schedules set enabled = false")
    add_schedule(clone_url, "was-due")  # due a second ago
    result = CliRunner().invoke(app, ["cron", "set", "was-due", "--disable", "--database-url", clone_url])
    assert result.exit_code == 0, result.output
    procs = [
        start_cli(clone_url, "workers", "run", "echo", "--once", "--log-format", "json") for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert fired_jobs(clone_url, "was-due") == []
    # Enabled again it starts from now: the run missed while disabled is not fired late.
    result = CliRunner().invoke(app, ["cron", "set", "was-due", "--enable", "--database-url", clone_url])
    assert result.exit_code == 0, result.output
    _, enabled, next_run = _schedule(clone_url, "was-due")
    assert enabled and next_run is not None and next_run > datetime.now(UTC)


def test_a_schedule_edited_to_every_minute_fires_within_the_minute_once(clone_url: str) -> None:
    """The issue's scenario: three running workers, an SQL edit, one job within the minute."""
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute("update private.cron_schedules set enabled = false")
        conn.execute(
            "update private.cron_schedules set enabled = true, next_run_at = now() + interval '6 days'"
            " where name = 'usage-report'"
        )
    procs = [
        start_cli(
            clone_url,
            "workers",
            "run",
            "usage_report",
            "--log-format",
            "json",
            BACKLINE_CRON_TICK_SECONDS="0.5",
        )
        for _ in range(3)
    ]
    try:
        time.sleep(1.5)  # the workers are up and have seen the old schedule
        with psycopg.connect(clone_url, autocommit=True) as conn:
            conn.execute(
                "update private.cron_schedules set schedule = '* * * * *' where name = 'usage-report'"
            )
            edited = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        due = CronExpr.parse("* * * * *").next_after(edited)
        deadline = time.monotonic() + (due - edited).total_seconds() + 10
        while time.monotonic() < deadline and not fired_jobs(clone_url, "usage-report"):
            time.sleep(0.25)
        time.sleep(1.5)  # let every worker tick past the due minute
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=30)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    with psycopg.connect(clone_url) as conn:
        jobs = conn.execute(
            "select created_at from public.jobs where payload->>'schedule' = 'usage-report'"
        ).fetchall()
    assert len(jobs) == 1, outputs  # exactly once across three workers
    assert jobs[0][0] - edited < timedelta(seconds=61)  # within the minute of the edit
    fired = [json.loads(line) for out in outputs for line in out.splitlines() if '"cron.fired"' in line]
    assert len(fired) == 1 and fired[0]["due"] == due.isoformat()


def test_cron_set_over_rpc_uses_the_service_role_wrapper(clone_url: str) -> None:
    from tests.jobs.fake_postgrest import SERVICE_KEY, FakePostgrest
    from workers.jobs.errors import QueueError
    from workers.jobs.queue_rpc import RpcQueue

    api = FakePostgrest(clone_url).start()
    try:
        queue = RpcQueue(api.url, SERVICE_KEY)
        schedule = queue.cron_set("metrics", "*/10 * * * *")
        assert schedule.schedule == "*/10 * * * *" and schedule.next_run_at is not None
        assert schedule.next_run_at.minute % 10 == 0
        with pytest.raises(QueueError, match="no cron schedule named"):
            queue.cron_set("nope", "* * * * *")
        with pytest.raises(QueueError, match="needs 5 fields"):
            queue.cron_set("metrics", "* *")
        queue.close()
    finally:
        api.stop()
    assert _schedule(clone_url, "metrics")[0] == "*/10 * * * *"
