"""`backline ai serve --log-format json`: every line the proxy writes - its own, uvicorn's, the
connection pools', of the parent and of every `--workers N` process - is one JSON object, also
through a database outage, which is two events (gone, back), not a line per reconnect attempt.
Without the option the logs are the plain text they always were.

The proxy runs as a real subprocess (`python -m workers.cli.main ai serve`) and is stopped with
SIGTERM; stdout and stderr are read whole."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from tests.ai.conftest import SECRET, make_token
from tests.ai.fake_provider import FakeProvider
from tests.durability.conftest import OwnServer
from tests.helpers import create_user
from workers.cli.main import app
from workers.db.embedded import EmbeddedServer
from workers.errors import DatabaseUnavailable
from workers.settings import PROJECT_ROOT

MSGS = [{"role": "user", "content": "hi"}]


@dataclass
class Served:
    proc: subprocess.Popen[str]
    base: str
    lines: list[str] = field(default_factory=list)  # stderr and stdout, as they come
    readers: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> list[str]:
        """SIGTERM (to the parent only: it stops its workers), then everything it wrote."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # nothing may outlive the test
        for reader in self.readers:
            reader.join(10)
        return list(self.lines)

    def seen(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _serve(db_url: str, *args: str, fake: FakeProvider | None = None) -> Served:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith(("BACKLINE_", "SUPABASE_"))
    }
    env.update(PYTHONPATH=str(PROJECT_ROOT), SUPABASE_JWT_SECRET=SECRET, PYTHONWARNINGS="default")
    if fake is not None:
        env.update(
            BACKLINE_AI_OPENAI_BASE_URL=fake.url + "/v1",
            BACKLINE_AI_OPERATOR_KEYS=json.dumps({"openai": "op-openai-key"}),
        )
    cmd = [sys.executable, "-m", "workers.cli.main", "ai", "serve", *args]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--database-url", db_url]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    served = Served(proc, f"http://127.0.0.1:{port}")
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None
        reader = threading.Thread(
            target=lambda s=stream: served.lines.extend(iter(s.readline, "")), daemon=True
        )
        reader.start()
        served.readers.append(reader)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            lines = served.stop()
            raise AssertionError("ai serve did not start:\n" + "".join(lines)[-3000:])
        try:
            if httpx.get(served.base + "/healthz", timeout=2).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    """Every line parses as one JSON object with a time, an event and the writer's pid."""
    assert lines
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n" + "".join(lines)[-3000:]) from None
        assert isinstance(event, dict) and {"ts", "event", "pid"} <= event.keys(), line
        events.append(event)
    return events


def _messages(events: list[dict[str, Any]], logger: str) -> list[tuple[int, str]]:
    return [(e["pid"], e["message"]) for e in events if e["event"] == "log" and e.get("logger") == logger]


def _generate(served: Served, user_id: uuid.UUID, model: str, **token: Any) -> httpx.Response:
    return httpx.post(
        served.base + "/v1/generate",
        headers={"authorization": f"Bearer {make_token(user_id, **token)}"},
        json={"provider": "openai", "model": model, "messages": MSGS},
        timeout=20,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_json_mode_writes_only_json_lines_in_every_process(
    clone_url: str, fake_provider: FakeProvider, workers: int
) -> None:
    with psycopg.connect(clone_url) as conn:
        uid = create_user(conn)
    served = _serve(clone_url, "--log-format", "json", "--workers", str(workers), fake=fake_provider)
    try:
        ok = _generate(served, uid, "gpt-4o-mini")
        assert ok.status_code == 200, ok.text
        failed = _generate(served, uid, "gpt-fail500")  # the provider fails: 502, logged as an error call
        assert failed.status_code == 502, failed.text
        expired = _generate(served, uid, "gpt-4o-mini", exp=int(time.time()) - 60)
        assert expired.status_code == 401, expired.text
        for model in ("gpt-4o-mini", "gpt-fail500"):  # settled (and logged) after the answer was sent
            line = f"ai call user={uid} provider=openai model={model} "
            _wait_for(lambda line=line: served.seen(line), 20, f"the {model} call's log line")
    finally:
        lines = served.stop()
    events = _json_lines(lines)
    uvicorn_lines = _messages(events, "uvicorn.error")
    started = [(pid, m) for pid, m in uvicorn_lines if m.startswith("Started server process")]
    # uvicorn's own startup and shutdown lines, once per serving process, written by that process
    assert len(started) == workers and all(m == f"Started server process [{pid}]" for pid, m in started)
    servers = {pid for pid, _ in started}
    for message in ("Application startup complete.", "Finished server process"):
        assert {pid for pid, m in uvicorn_lines if m.startswith(message)} == servers, message
    if workers > 1:
        parents = [pid for pid, m in uvicorn_lines if m.startswith("Started parent process")]
        assert parents == [served.proc.pid] and served.proc.pid not in servers
    calls = _messages(events, "backline.ai")
    assert any(f"ai call user={uid} provider=openai model=gpt-4o-mini status=ok" in m for _, m in calls)
    assert any("model=gpt-fail500 status=error" in m for _, m in calls)
    assert {pid for pid, _ in calls} <= servers
    assert not [line for line in lines if "/healthz" in line or "/v1/generate" in line]  # no access log


def test_text_mode_is_plain_text_as_before(clone_url: str, fake_provider: FakeProvider) -> None:
    with psycopg.connect(clone_url) as conn:
        uid = create_user(conn)
    served = _serve(clone_url, fake=fake_provider)  # no --log-format: text
    try:
        assert _generate(served, uid, "gpt-4o-mini").status_code == 200
        line = f"INFO backline.ai: ai call user={uid} provider=openai model=gpt-4o-mini status=ok"
        _wait_for(lambda: served.seen(line), 20, "the call's log line")
    finally:
        lines = served.stop()
    for text in lines:
        with contextlib.suppress(ValueError):
            assert not isinstance(json.loads(text), dict), text
    # uvicorn's default format and the proxy's own (logging.basicConfig) format, as before
    assert any(text.startswith("INFO:     Started server process [") for text in lines), lines
    assert any(text.startswith("INFO:     Finished server process [") for text in lines), lines


def test_a_bad_log_format_is_refused_before_anything_starts() -> None:
    result = CliRunner().invoke(app, ["ai", "serve", "--log-format", "xml", "--port", "1"])
    assert result.exit_code == 2
    assert "--log-format" in result.output and "text, json" in result.output


def test_a_failing_start_is_one_json_line(tmp_path: Path) -> None:
    """A configuration the command refuses (here the development JWT secret against a remote
    database) is still one JSON line, exit 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKLINE_", "SUPABASE_"))}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    remote = "postgresql://u:p@db.example.com:5432/postgres"
    cmd = [sys.executable, "-m", "workers.cli.main", "ai", "serve", "--log-format", "json"]
    proc = subprocess.run(
        [*cmd, "--database-url", remote],
        env=env,
        cwd=tmp_path,  # no .env of the project
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    events = _json_lines((proc.stdout + proc.stderr).splitlines(keepends=True))
    assert [e["event"] for e in events] == ["ai.error"]
    assert "development secret" in events[0]["error"]


# -- a database outage ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    """A PostgreSQL server of this module's own, which the outage test kills: never the
    shared test server. The proxy needs no schema to serve /healthz."""
    path = Path(tempfile.mkdtemp(prefix="bl-ai-logs-"))
    path.chmod(0o755)  # as root the server runs as its own system user, which must reach it
    server = EmbeddedServer(path / "data")
    try:
        url = server.ensure_running().tcp_url()
        yield OwnServer(server, url, url)
    finally:
        with contextlib.suppress(DatabaseUnavailable):
            server.stop()
        shutil.rmtree(path, ignore_errors=True)


def _poke(served: Served) -> int | None:
    try:
        return httpx.get(served.base + "/healthz", timeout=1.5).status_code
    except httpx.TransportError:  # waiting for the pool: still down
        return None


@pytest.mark.parametrize("workers", [1, 2])
def test_an_outage_is_two_json_events_per_process(own_server: OwnServer, workers: int) -> None:
    served = _serve(own_server.url, "--log-format", "json", "--workers", str(workers))
    try:
        own_server.kill()
        down_until = time.monotonic() + 4
        while time.monotonic() < down_until:  # requests meet the dead server; the pools retry
            assert _poke(served) != 200
            time.sleep(0.2)
        own_server.start()
        _wait_for(lambda: _poke(served) == 200, 60, "the proxy to serve again")

        def recovered() -> bool:
            events = [json.loads(line) for line in list(served.lines) if '"db.' in line]
            down = {e["pid"] for e in events if e["event"] == "db.unavailable"}
            return bool(down) and down == {e["pid"] for e in events if e["event"] == "db.available"}

        _wait_for(recovered, 60, "db.available from every process that saw db.unavailable")
    finally:
        lines = served.stop()
    events = _json_lines(lines)  # nothing plain, nothing multi-line, through the outage too
    per_pid: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        if e["event"] in ("db.unavailable", "db.available"):
            per_pid.setdefault(e["pid"], []).append(e)
    assert per_pid, "no process reported the outage"
    for pid, outage in per_pid.items():
        assert [e["event"] for e in outage] == ["db.unavailable", "db.available"], (pid, outage)
        assert outage[0]["source"] == "pool"
        assert outage[1]["failures"] >= 2, outage  # several failed reconnects ...
    pool_lines = [m for _, m in _messages(events, "psycopg.pool")]
    assert not [m for m in pool_lines if m.startswith("error connecting")], pool_lines  # ... none printed
    assert {pid for pid, m in _messages(events, "uvicorn.error") if m.startswith("Finished server")}
