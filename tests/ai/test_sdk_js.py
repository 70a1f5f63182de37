"""The official `openai` npm client (pinned in tests/ai/npm, installed by `npm ci` on first use
into .tools/) against the proxy with the user's token: chat, streamed chat with usage, tool calls
(plain and through the stream helper), structured output, and its own RateLimitError / 402."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.ai.conftest import Proxy
from tests.ai.fake_provider import JSON_ANSWER, TOOL_ARGS, WORDS
from workers.gen.typegen import tools_dir

PIN = Path(__file__).resolve().parent / "npm"
SCRIPT = PIN / "sdk_check.cjs"


@pytest.fixture(scope="session")
def openai_node() -> Path:
    """The folder with the pinned openai npm package installed (npm ci of the lockfile, once)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "the JS SDK tests need node 20+ and npm on PATH"
    digest = hashlib.sha256(b"".join((PIN / n).read_bytes() for n in ("package.json", "package-lock.json")))
    base = tools_dir()
    target = base / f"ai-sdk-tests-{digest.hexdigest()[:12]}"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".ai-sdk-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "node_modules" / "openai" / "package.json").exists():
            scratch = Path(tempfile.mkdtemp(prefix=".ai-sdk-tests-", dir=base))
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(PIN / name, scratch / name)
            result = subprocess.run(
                [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, f"npm ci of the openai client failed: {result.stderr[-500:]}"
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
    return target


def run_js(sdk: Path, proxy: Proxy, h: dict[str, str], model: str, scenario: str) -> dict[str, Any]:
    env = {
        "PATH": str(Path(shutil.which("node") or "node").parent),
        "SDK_DIR": str(sdk),
        "BASE_URL": proxy.url + "/v1",
        "TOKEN": h["authorization"].removeprefix("Bearer "),
        "MODEL": model,
    }
    result = subprocess.run(
        ["node", str(SCRIPT), scenario], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize("model", ["gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"])
def test_openai_node_client_chat_stream_tools_and_structured_output(
    openai_node: Path, proxy_factory: Any, model: str
) -> None:
    proxy = proxy_factory(ai_operator_keys={"openai": "op-openai", "anthropic": "op-anthropic"})
    uid, h = proxy.user()
    out = run_js(openai_node, proxy, h, model, "happy")
    assert out["chat"] == "".join(WORDS) and out["streamed"] == "".join(WORDS)
    assert out["usage"]["completion_tokens"] == 6 and out["usage"]["prompt_tokens"] > 0
    assert out["tool"]["name"] == "get_weather" and json.loads(out["tool"]["arguments"]) == TOOL_ARGS
    assert out["tool_finish"] == "tool_calls"
    assert json.loads(out["tool_streamed"]["arguments"]) == TOOL_ARGS
    assert out["structured"] == json.loads(JSON_ANSWER)
    proxy.settled(uid)
    rows = proxy.sql("select status, reserved_usd from public.ai_usage where user_id = %s", (uid,))
    assert rows == [("ok", 0)] * 5


def test_openai_node_client_rate_limit_and_budget_errors(openai_node: Path, proxy_factory: Any) -> None:
    proxy = proxy_factory(ai_operator_keys={"openai": "op-openai"})
    uid, h = proxy.user()
    proxy.sql("update public.plans set ai_requests_per_window = 0 where id = 'free'")
    limited = run_js(openai_node, proxy, h, "gpt-4o-mini", "refused")
    assert limited["rate_limit"] is True and limited["status"] == 429
    assert limited["code"] == "rate_limit_exceeded" and int(limited["retry_after"]) >= 1
    proxy.sql(
        "update public.plans set ai_requests_per_window = 100, ai_monthly_budget_usd = 0 where id = 'free'"
    )
    broke = run_js(openai_node, proxy, h, "gpt-4o-mini", "refused")
    assert broke["status"] == 402 and broke["code"] == "insufficient_quota" and broke["rate_limit"] is False
    assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,)) == [(0,)]
