"""`backline up` never reports the AI proxy as started when another process holds its port.

Issue #14: with the port taken, `up` printed "ai started" and exited 0 while the proxy had died
("address already in use") and /healthz was answered by whatever held the port.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.helpers import backline, one_line_error
from workers.cli.services import PortError, Service, Services, listening_pids


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bl-port-"))
    yield path
    supervisor = Services(path)
    for name in supervisor.names():
        supervisor.stop(name)
    shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def foreign_healthz() -> Iterator[int]:
    """Another program on a port, answering GET /healthz 200 just like the proxy would."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = int(server.server_address[1])
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    yield port
    server.shutdown()
    server.server_close()


@pytest.fixture
def plain_listener() -> Iterator[int]:
    """A bare socket listening on a port (never answers HTTP)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield int(sock.getsockname()[1])
    sock.close()


def _up(data_dir: Path, url: str, port: int):  # type: ignore[no-untyped-def]
    env = {"BACKLINE_DATA_DIR": str(data_dir), "BACKLINE_AI_PORT": str(port), "BACKLINE_AI_HOST": "127.0.0.1"}
    return backline("up", "--database-url", url, env=env)


@pytest.mark.parametrize("holder", ["plain_listener", "foreign_healthz"])
def test_up_refuses_a_taken_port_and_leaves_nothing_running(holder, request, data_dir, clone_url):
    port = request.getfixturevalue(holder)
    result = _up(data_dir, clone_url, port)
    assert result.returncode == 1, result.stdout + result.stderr
    error = one_line_error(result)
    # Names the port and the process holding it (this test process).
    assert f"port {port} is already taken by pid {os.getpid()}" in error, error
    assert "started" not in result.stderr and "ai proxy" not in result.stderr
    supervisor = Services(data_dir)
    assert supervisor.pid("ai") is None and supervisor.pid("workers") is None
    assert supervisor.names() == []  # no pid file: nothing was left (or even started)


def test_a_foreign_healthz_answer_is_not_taken_for_the_proxy(data_dir, clone_url, foreign_healthz):
    """The check after start: the port was free when looked at, taken before the proxy bound it."""
    supervisor = Services(data_dir)
    port = foreign_healthz
    env = {"DATABASE_URL": clone_url, "BACKLINE_AI_PORT": str(port), "BACKLINE_AI_HOST": "127.0.0.1"}
    pid, started = supervisor.start(Service("ai", ("ai", "serve")), env)
    assert started
    with pytest.raises(PortError) as raised:
        supervisor.wait_serving("ai", pid, "127.0.0.1", port, timeout=90)
    message = str(raised.value)
    assert f"port {port} is taken by pid {os.getpid()}" in message, message
    assert "address already in use" in supervisor.log_path("ai").read_text()
    assert supervisor.pid("ai") is None  # the child died (and was reaped), it is not reported running


def test_up_on_a_free_port_reports_the_proxy_it_really_runs(data_dir, clone_url):
    port = _free_port()
    result = _up(data_dir, clone_url, port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ai         started" in result.stderr and f"http://127.0.0.1:{port}" in result.stderr
    pid = Services(data_dir).pid("ai")
    assert pid is not None
    # Reported only once the child itself serves: no waiting needed here.
    assert pid in listening_pids(port, [str(pid)])
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    # Running again: already running, not refused for the port our own proxy holds.
    again = _up(data_dir, clone_url, port)
    assert again.returncode == 0, again.stderr
    assert f"ai         already running (pid {pid})" in again.stderr
    down = backline("down", "--keep-database", env={"BACKLINE_DATA_DIR": str(data_dir)})
    assert down.returncode == 0, down.stderr
    assert Services(data_dir).pid("ai") is None
