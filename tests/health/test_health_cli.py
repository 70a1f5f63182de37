"""`backline health [--json]`: output shape, exit codes, and configuration mistakes as one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.health.conftest import AIService, health_env
from tests.helpers import backline, one_line_error
from workers.health.checks import CHECK_NAMES


def test_all_ok_prints_every_check_and_exits_0(ai_service: AIService, data_dir: Path) -> None:
    env = health_env(ai_service.db_url, data_dir, webhook=None, ai_url=ai_service.base_url)
    result = backline("health", "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == list(CHECK_NAMES)
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "value"}
        assert check["status"] == "ok" and check["detail"], check
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["database"]["value"]["latency_ms"] >= 0
    assert by_name["migrations"]["value"]["pending"] == [] and by_name["migrations"]["value"]["applied"] > 70
    assert by_name["ai"]["value"]["url"] == f"{ai_service.base_url}/healthz"
    assert by_name["queue"]["value"] == {
        "backlog": 0,
        "oldest_wait_seconds": None,
        "dead": 0,
        "dead_by_kind": {},
    }
    assert by_name["cron"]["value"]["overdue"] == [] and by_name["cron"]["value"]["enabled"] >= 6
    assert by_name["storage"]["value"]["buckets_missing"] == []

    table = backline("health", env=env)
    assert table.returncode == 0
    assert all(name in table.stdout for name in CHECK_NAMES)


def test_one_failing_check_exits_1_and_names_it(healthy_url: str, data_dir: Path) -> None:
    env = health_env(healthy_url, data_dir, webhook=None, ai_url="http://127.0.0.1:9")
    result = backline("health", "--json", env=env)
    assert result.returncode == 1
    statuses = {c["name"]: c["status"] for c in json.loads(result.stdout)["checks"]}
    assert statuses == {name: ("fail" if name == "ai" else "ok") for name in CHECK_NAMES}
    text = backline("health", env=env)
    assert text.returncode == 1 and "fail" in text.stdout and "127.0.0.1:9/healthz" in text.stdout


def test_ai_check_off_is_ok_and_says_so(healthy_url: str, data_dir: Path) -> None:
    result = backline("health", "--json", env=health_env(healthy_url, data_dir, webhook=None, ai_url="off"))
    assert result.returncode == 0, result.stdout
    ai = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "ai")
    assert ai["status"] == "ok" and "not checked" in ai["detail"]


def test_unreachable_database_fails_every_database_check_and_still_prints_json(data_dir: Path) -> None:
    env = health_env("postgresql://nobody:x@127.0.0.1:9/nothing", data_dir, webhook=None)
    result = backline("health", "--json", env=env)
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["database"]["status"] == "fail" and "unreachable" in checks["database"]["detail"]
    for name in ("migrations", "queue", "cron", "storage"):
        assert checks[name] == {
            "name": name,
            "status": "fail",
            "detail": "not checked: the database is unreachable",
            "value": None,
        }


def test_stopped_embedded_database_is_reported_not_started(data_dir: Path) -> None:
    result = backline(
        "health", "--json", env={"BACKLINE_DATA_DIR": str(data_dir), "BACKLINE_HEALTH_AI_URL": "off"}
    )
    assert result.returncode == 1, result.stderr
    database = json.loads(result.stdout)["checks"][0]
    assert database["status"] == "fail" and "is not running" in database["detail"]
    assert not (data_dir / "pgdata").exists()  # nothing was initialised or started


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BACKLINE_ALERT_WEBHOOK_URL", "hooks.slack.com/services/T000/B000/SECRETPART"),
        ("BACKLINE_ALERT_WEBHOOK_URL", "ftp://example.com/SECRETPART"),
        ("BACKLINE_ALERT_WEBHOOK_URL", "http:///SECRETPART"),
        ("BACKLINE_HEALTH_AI_URL", "127.0.0.1:8787"),
    ],
)
def test_a_bad_url_setting_is_one_line_that_names_it_and_hides_it(
    healthy_url: str, data_dir: Path, variable: str, value: str
) -> None:
    env = health_env(healthy_url, data_dir, webhook=None, **{variable: value})
    for args in (("health",), ("cron", "run", "health-check")):
        result = backline(*args, env=env)
        assert result.returncode == 1
        line = one_line_error(result)
        assert variable in line and "must be an http:// or https:// URL with a host" in line
        assert "SECRETPART" not in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BACKLINE_HEALTH_CRON_GRACE_SECONDS", "-5"),
        ("BACKLINE_HEALTH_QUEUE_BACKLOG_WARN", "many"),
        ("BACKLINE_ALERT_WEBHOOK_TIMEOUT_SECONDS", "0"),
    ],
)
def test_a_bad_threshold_is_one_line_that_names_it(
    healthy_url: str, data_dir: Path, variable: str, value: str
) -> None:
    result = backline("health", env=health_env(healthy_url, data_dir, webhook=None, **{variable: value}))
    assert result.returncode == 1
    assert variable in one_line_error(result)


def test_a_bad_option_is_a_usage_error(healthy_url: str, data_dir: Path) -> None:
    result = backline("health", "--jsn", env=health_env(healthy_url, data_dir, webhook=None))
    assert result.returncode == 2 and "--jsn" in result.stderr
