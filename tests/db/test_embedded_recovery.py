"""The embedded server survives the situations a laptop or container produces."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from workers.db.embedded import EmbeddedServer
from workers.errors import DatabaseUnavailable
from workers.settings import PROJECT_ROOT


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bl rec-"))  # a space in the path, on purpose
    path.chmod(0o755)
    yield path / "data"
    EmbeddedServer(path / "data").stop()
    shutil.rmtree(path, ignore_errors=True)


def _start_in_subprocess(data_dir: Path) -> subprocess.Popen[str]:
    code = (
        "import json, sys; from pathlib import Path; from workers.db.embedded import EmbeddedServer;"
        "print(json.dumps(EmbeddedServer(Path(sys.argv[1])).ensure_running().__dict__))"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(data_dir)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _can_query(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select 1").fetchone() == (1,)


def test_two_processes_starting_at_once_share_one_server(data_dir):
    procs = [_start_in_subprocess(data_dir) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    states = [json.loads(out) for out, _ in outputs]
    assert states[0] == states[1]
    assert _can_query(EmbeddedServer(data_dir).ensure_running().tcp_url())


def test_recovers_from_a_killed_server_whose_pid_was_reused(data_dir):
    server = EmbeddedServer(data_dir)
    server.ensure_running()
    pidfile = data_dir / "pgdata" / "postmaster.pid"
    pid = int(pidfile.read_text().split()[0])
    lines = pidfile.read_text().splitlines()
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            os.kill(pid, 0)
            time.sleep(0.05)
        except ProcessLookupError:
            break
    imposter = subprocess.Popen(["sleep", "60"])
    try:
        lines[0] = str(imposter.pid)
        pidfile.write_text("\n".join(lines) + "\n")
        assert server.running_state() is None
        state = server.ensure_running()
        assert _can_query(state.tcp_url())
        assert int(pidfile.read_text().split()[0]) != imposter.pid
    finally:
        imposter.kill()
        imposter.wait()


def test_moves_to_a_free_port_when_its_port_is_taken(data_dir):
    server = EmbeddedServer(data_dir)
    old = server.ensure_running()
    assert server.stop() is True
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old.port))
        squatter.listen()
        new = server.ensure_running()
    assert new.port != old.port
    assert new.password == old.password
    assert _can_query(new.tcp_url())


@pytest.mark.parametrize("name", ["bad$(id)", "quote'd", "back`tick`"])
def test_refuses_data_dirs_a_shell_would_interpret(tmp_path, name):
    with pytest.raises(DatabaseUnavailable, match="cannot pass safely"):
        EmbeddedServer(tmp_path / name)
    assert not (tmp_path / name).exists()
