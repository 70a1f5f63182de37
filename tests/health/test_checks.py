"""Each check against the real database: what makes it ok, warn and fail (thresholds from Settings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, create_user
from workers.health.checks import check_cron, check_migrations, check_queue, check_storage
from workers.settings import Settings


def settings(**overrides: Any) -> Settings:
    return Settings.model_construct(**{**Settings().model_dump(), "health_ai_url": "off", **overrides})


def fresh_cron(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "update private.cron_schedules set last_run_at = now(),"
        " next_run_at = private.cron_next_after(schedule, now()) where enabled"
    )


# == migrations ==


def test_migrations_ok_then_pending_then_unknown(db: psycopg.Connection[Any]) -> None:
    assert check_migrations(db, settings()).status == "ok"
    db.execute(
        "insert into supabase_migrations.schema_migrations (version, name, statements)"
        " values ('20991231000000', 'from_another_branch', '{}')"
    )
    unknown = check_migrations(db, settings())
    assert (
        unknown.status == "fail"
        and "unknown to this checkout (first 20991231000000_from_another_branch)" in unknown.detail
    )
    db.execute("delete from supabase_migrations.schema_migrations where version = '20991231000000'")
    db.execute("delete from supabase_migrations.schema_migrations where version = '20261207070000'")
    pending = check_migrations(db, settings())
    assert (
        pending.status == "fail"
        and "1 not applied (first 20261207070000_health_alert_state)" in pending.detail
    )
    assert pending.value["pending"] == ["20261207070000_health_alert_state"]


# == queue ==


def _enqueue(db: psycopg.Connection[Any], run_after: str = "now()") -> uuid.UUID:
    row = db.execute(f"select private.job_enqueue('echo', '{{}}'::jsonb, null, {run_after})").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_queue_backlog_warns_at_the_threshold_only(db: psycopg.Connection[Any]) -> None:
    db.execute("delete from public.jobs")
    for _ in range(3):
        _enqueue(db)
    _enqueue(db, "now() + interval '1 hour'")  # not due: not backlog
    assert check_queue(db, settings(health_queue_backlog_warn=4)).status == "ok"
    at = check_queue(db, settings(health_queue_backlog_warn=3))
    assert at.status == "warn" and "3 due jobs waiting (warn at 3)" in at.detail
    assert at.value["backlog"] == 3


def test_queue_fails_when_the_oldest_due_job_waits_too_long(db: psycopg.Connection[Any]) -> None:
    db.execute("delete from public.jobs")
    _enqueue(db, "now() - interval '20 minutes'")
    result = check_queue(db, settings())
    assert result.status == "fail" and "has waited 20 min: are workers running?" in result.detail
    assert check_queue(db, settings(health_queue_wait_warn_seconds=3600)).status == "ok"


def test_dead_jobs_count_only_inside_the_window(db: psycopg.Connection[Any]) -> None:
    db.execute("delete from public.jobs")
    db.execute(
        "insert into public.jobs (kind, status, attempts, finished_at, last_error)"
        " values ('echo', 'dead', 5, now() - interval '2 days', 'old')"
    )
    assert check_queue(db, settings()).status == "ok"
    assert check_queue(db, settings(health_dead_jobs_window_hours=72)).status == "fail"
    db.execute(
        "insert into public.jobs (kind, status, attempts, finished_at) values ('export', 'dead', 5, now())"
    )
    result = check_queue(db, settings(health_dead_jobs_fail=2))
    assert result.status == "ok"
    result = check_queue(db, settings())
    assert result.status == "fail" and result.value["dead_by_kind"] == {"export": 1}


# == cron ==


def test_cron_ok_when_fresh_and_overdue_by_name_when_no_worker_ticks(db: psycopg.Connection[Any]) -> None:
    fresh_cron(db)
    assert check_cron(db, settings()).status == "ok"
    db.execute(
        "update private.cron_schedules set last_run_at = now() - interval '30 minutes',"
        " next_run_at = now() - interval '25 minutes' where name = 'health-check'"
    )
    result = check_cron(db, settings())
    assert result.status == "fail" and [o["name"] for o in result.value["overdue"]] == ["health-check"]
    assert check_cron(db, settings(health_cron_grace_seconds=3600)).status == "ok"  # within the grace


def test_cron_runs_started_by_ci_count_although_next_run_at_stays_behind(db: psycopg.Connection[Any]) -> None:
    """`backline cron run` (GitHub Actions) records last_run_at and leaves next_run_at as it was."""
    fresh_cron(db)
    db.execute(
        "update private.cron_schedules set next_run_at = now() - interval '3 days',"
        " last_run_at = now() - interval '1 minute' where name = 'privacy-cleanup'"
    )
    assert check_cron(db, settings()).status == "ok"


def test_cron_disabled_schedules_are_not_expected_to_run(db: psycopg.Connection[Any]) -> None:
    fresh_cron(db)
    db.execute(
        "update private.cron_schedules set last_run_at = now() - interval '30 days',"
        " next_run_at = now() - interval '29 days' where name = 'metrics'"
    )
    assert check_cron(db, settings()).status == "fail"
    db.execute("update private.cron_schedules set enabled = false where name = 'metrics'")
    assert check_cron(db, settings()).status == "ok"
    # Enabled again: its next run starts from now, so it is not overdue before it is due.
    db.execute("update private.cron_schedules set enabled = true where name = 'metrics'")
    assert check_cron(db, settings()).status == "ok"
    later = check_cron(db, settings(), now=datetime.now(UTC) + timedelta(hours=7))
    assert "metrics" in [o["name"] for o in later.value["overdue"]]


# == storage ==


def test_storage_ok_then_missing_bucket_fails(
    db: psycopg.Connection[Any], shared_db_url: str, tmp_path: Any
) -> None:
    url = shared_db_url
    ok = check_storage(db, settings(data_dir=tmp_path), url)
    assert ok.status == "ok", ok.detail
    missing = check_storage(
        db, settings(data_dir=tmp_path, health_buckets=("exports", "no-such-bucket")), url
    )
    assert missing.status == "fail" and "bucket(s) missing: no-such-bucket" in missing.detail


def test_storage_quota_drift_warns(db: psycopg.Connection[Any], shared_db_url: str, tmp_path: Any) -> None:
    user = create_user(db)
    db.execute("insert into public.profiles (id) values (%s) on conflict do nothing", (user,))
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id, metadata)"
        ' values (\'samples\', %s, %s, \'{"size": 1000, "mimetype": "audio/wav"}\')',
        (f"{user}/a.wav", str(user)),
    )
    assert (
        check_storage(db, settings(data_dir=tmp_path), shared_db_url).status == "ok"
    )  # the trigger counted it
    db.execute("update public.profiles set storage_used = 400 where id = %s", (user,))
    drift = check_storage(db, settings(data_dir=tmp_path), shared_db_url)
    assert drift.status == "warn"
    assert drift.value["quota_drift_users"] == 1 and drift.value["quota_drift_max_bytes"] == 600


# == alert state is not for API roles ==


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_read_or_write_alert_state(db: psycopg.Connection[Any], role: str) -> None:
    db.execute("insert into private.health_alerts (check_name, status) values ('ai', 'fail')")
    user = create_user(db)
    for statement in (
        "select * from private.health_alerts",
        "update private.health_alerts set alerting = false",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, user, role) as cur:
            cur.execute(statement)
    assert db.execute("select count(*) from private.health_alerts").fetchone() == (1,)


def test_alert_state_refuses_unknown_statuses(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("insert into private.health_alerts (check_name, status) values ('ai', 'broken')")
