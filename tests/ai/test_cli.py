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


def test_serve_with_workers_logs_each_call(clone_url: str, fake_provider: Any) -> None:
    """`ai serve --workers 2`: uvicorn spawns the workers, which do not inherit the parent's
    logging setup; each must still write the per-call `backline.ai` line."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import tempfile
    import time

    import httpx
    import psycopg

    from tests.ai.conftest import SECRET, make_token
    from tests.helpers import create_user

    with psycopg.connect(clone_url) as conn:
        uid = create_user(conn)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith(("BACKLINE_", "SUPABASE_"))
    }
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env.update(
        PYTHONPATH=root,
        SUPABASE_JWT_SECRET=SECRET,
        BACKLINE_AI_OPENAI_BASE_URL=fake_provider.url + "/v1",
        BACKLINE_AI_OPERATOR_KEYS=json.dumps({"openai": "op-openai-key"}),
    )
    cmd = [sys.executable, "-m", "workers.cli.main", "ai", "serve", "--workers", "2"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--database-url", clone_url]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 30
            while True:
                assert proc.poll() is None and time.time() < deadline, "ai serve did not start"
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            resp = httpx.post(
                base + "/v1/generate",
                headers={"authorization": f"Bearer {make_token(uid)}"},
                json={"provider": "openai", "model": "gpt-4o-mini", "messages": MSGS},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            line = f"backline.ai: ai call user={uid} provider=openai model=gpt-4o-mini status=ok"
            while line not in _read_all(err):
                assert time.time() < deadline, "no per-call log line from the worker"
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _read_all(f: Any) -> str:
    f.seek(0)
    return str(f.read().decode(errors="replace"))
