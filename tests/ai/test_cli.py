"""`backline ai usage` and `backline ai keys rotate` against a real database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.ai.conftest import MASTER_A, MASTER_B, Proxy
from tests.ai.test_generate import MSGS, add_key
from workers.cli.main import app
from workers.settings import get_settings


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Any:
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_usage_json_and_table(proxy: Proxy, runner: CliRunner) -> None:
    uid, h = proxy.user()
    key = add_key(proxy, h, "openai")
    for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-fail500"):
        proxy.http.post(
            "/v1/generate",
            headers=h,
            json={"provider": "openai", "model": model, "key_id": key, "messages": MSGS},
        )
    proxy.settled(uid)
    result = runner.invoke(app, ["ai", "usage", "--since", "1h", "--json", "--database-url", proxy.db_url])
    assert result.exit_code == 0, result.output
    rows = {r["key"]: r for r in json.loads(result.output)["rows"]}
    assert rows["openai/gpt-4o-mini"]["requests"] == 2 and rows["openai/gpt-4o-mini"]["ok"] == 2
    assert rows["openai/gpt-4o-mini"]["output_tokens"] == 12 and rows["openai/gpt-4o-mini"]["cost_usd"] > 0
    assert rows["openai/gpt-fail500"]["errors"] == 1
    table = runner.invoke(app, ["ai", "usage", "--by", "user", "--database-url", proxy.db_url])
    assert table.exit_code == 0 and "AI usage since" in table.output
    bad = runner.invoke(app, ["ai", "usage", "--since", "yesterday-ish", "--database-url", proxy.db_url])
    assert bad.exit_code == 1


def test_keys_rotate_cli(proxy: Proxy, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    _, h = proxy.user()
    add_key(proxy, h, "openai")
    add_key(proxy, h, "anthropic")
    monkeypatch.setenv("BACKLINE_AI_MASTER_KEYS", f"{MASTER_A},{MASTER_B}")
    monkeypatch.setenv("BACKLINE_AI_MASTER_KEY_ID", "b")
    result = runner.invoke(app, ["ai", "keys", "rotate", "--database-url", proxy.db_url])
    assert result.exit_code == 0, result.output
    assert "re-wrapped 2 key(s)" in result.output and "0 left" in result.output
    assert proxy.sql("select distinct master_key_id from private.ai_key_secrets") == [("b",)]
    monkeypatch.setenv("BACKLINE_AI_MASTER_KEYS", "")
    get_settings.cache_clear()
    missing = runner.invoke(app, ["ai", "keys", "rotate", "--database-url", proxy.db_url])
    assert missing.exit_code == 1
