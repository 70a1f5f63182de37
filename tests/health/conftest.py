"""Health fixtures: a webhook receiver, a healthy migrated database, a real AI proxy process."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import backline
from workers.settings import PROJECT_ROOT

MASTER_KEYS = "t1:" + base64.b64encode(b"H" * 32).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """A local Slack-compatible webhook: records every JSON body POSTed to /hook.

    `refuse` > 0 answers that many next posts with HTTP 500 (and records nothing).
    """

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.refuse = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    refused = receiver.refuse > 0
                    if refused:
                        receiver.refuse -= 1
                    else:
                        receiver.posts.append(json.loads(body))
                self.send_response(500 if refused else 200)
                self.end_headers()
                self.wfile.write(b"no" if refused else b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def texts(self) -> list[str]:
        with self._lock:
            return [str(p["text"]) for p in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def freshen_cron(url: str) -> None:
    """As if a worker fleet had just ticked: every enabled schedule ran now, next run ahead."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "update private.cron_schedules set last_run_at = now(),"
            " next_run_at = private.cron_next_after(schedule, now()) where enabled"
        )


@pytest.fixture
def healthy_url(clone_url: str) -> str:
    """A fresh migrated database on which every database-backed check is ok."""
    freshen_cron(clone_url)
    return clone_url


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bl-health-"))
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class AIService:
    """`backline ai serve` as its own process on a free port; kill() and start() it again."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.db_url = url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "ai.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "DATABASE_URL": self.db_url,
            "BACKLINE_AI_MASTER_KEYS": MASTER_KEYS,
            "BACKLINE_AI_POOL_MIN": "1",
            "BACKLINE_AI_POOL_MAX": "2",
        }
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "workers.cli.main",
                    "ai",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"AI proxy did not serve /healthz: {self.log.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None


@pytest.fixture
def ai_service(healthy_url: str, data_dir: Path) -> Iterator[AIService]:
    service = AIService(healthy_url, data_dir)
    service.start()
    yield service
    service.kill()


def health_env(
    url: str, data_dir: Path, *, webhook: str | None, ai_url: str = "off", **extra: str
) -> dict[str, str]:
    env = {
        "DATABASE_URL": url,
        "BACKLINE_DATA_DIR": str(data_dir),
        "BACKLINE_HEALTH_AI_URL": ai_url,
        "BACKLINE_ALERT_LABEL": "test-deploy",
        **extra,
    }
    if webhook is not None:
        env["BACKLINE_ALERT_WEBHOOK_URL"] = webhook
    return env


def run_health_job(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One run of the health-check schedule, as an external scheduler (CI cron) starts it."""
    return backline("cron", "run", "health-check", "--json", env=env)
