"""The README's commands in a checkout under a private (mode 0700) folder, as root (issue #14).

As root the server runs as the system user backline_pg, which cannot traverse a mode-0700
parent: `backline up` used to stop with "set BACKLINE_DATA_DIR". Now the cluster moves to a
reachable folder by itself and says where. (As a normal user the server runs as that user, so
the same commands simply work in place; the test checks whichever applies.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import backline
from workers.cli.services import Services
from workers.cli.up import local_ai_master_keys
from workers.db.embedded import EmbeddedServer

AS_ROOT = os.geteuid() == 0


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return backline(*args, cwd=cwd, env=env, unset=("BACKLINE_DATA_DIR", "BACKLINE_AI_MASTER_KEYS"))


@pytest.fixture(scope="module")
def checkout() -> Iterator[Path]:
    """A checkout-like folder inside a mode-0700 parent, after the README's `backline up`."""
    private = Path(tempfile.mkdtemp(prefix="bl-priv-"))
    private.chmod(0o700)
    where = private / "backline"
    where.mkdir()
    yield where
    server = EmbeddedServer(where / ".backline")
    home = server.pgdata.parent if server.relocated else None
    for name in Services(where / ".backline").names():
        Services(where / ".backline").stop(name)
    server.stop()
    shutil.rmtree(private, ignore_errors=True)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def up(checkout: Path) -> subprocess.CompletedProcess[str]:
    return run("up", "--no-services", cwd=checkout)


def test_up_works_there_and_says_where_the_cluster_lives(checkout, up):
    assert up.returncode == 0, up.stderr
    assert up.stdout == ""  # status goes to stderr; up prints no data
    assert "embedded PostgreSQL" in up.stderr and "migrations" in up.stderr
    server = EmbeddedServer(checkout / ".backline")
    assert (server.pgdata / "PG_VERSION").exists()
    assert f"cluster    {server.pgdata}" in up.stderr
    if AS_ROOT:
        assert server.relocated
        assert str(server.pgdata).startswith(("/var/lib/backline/clusters/", "/tmp/backline-clusters/"))
        assert "cannot reach" in up.stderr and str(server.pgdata.parent) in up.stderr
    else:
        assert not server.relocated and server.pgdata == checkout / ".backline" / "pgdata"


def test_later_commands_reach_the_same_cluster(checkout, up):
    assert up.returncode == 0, up.stderr
    url = run("db", "url", cwd=checkout)
    assert url.returncode == 0, url.stderr
    with psycopg.connect(url.stdout.strip()) as conn:
        assert conn.execute("select count(*) from public.profiles where username = 'demo'").fetchone() == (1,)
        data_dir = conn.execute("select current_setting('data_directory')").fetchone()
    assert data_dir == (str(EmbeddedServer(checkout / ".backline").pgdata),)
    status = run("db", "status", "--json", cwd=checkout)
    assert status.returncode == 0, status.stderr
    # The first start's notice is said once, not on every command.
    assert "cannot reach" not in status.stderr


def test_ai_keys_rotate_reads_the_local_key_file_the_proxy_uses(checkout, up):
    assert up.returncode == 0, up.stderr
    missing = run("ai", "keys", "rotate", cwd=checkout)
    assert missing.returncode == 1
    assert "BACKLINE_AI_MASTER_KEYS is not set" in missing.stderr and "ai-master-keys" in missing.stderr
    spec = local_ai_master_keys(checkout / ".backline")  # what `up` makes and hands to the proxy
    rotated = run("ai", "keys", "rotate", cwd=checkout)
    assert rotated.returncode == 0, rotated.stderr
    assert f"under master key {spec.split(':')[0]!r}" in rotated.stdout and "0 left" in rotated.stdout


def test_db_stop_names_the_services_still_running_and_down_stops_all(checkout, up):
    assert up.returncode == 0, up.stderr
    data_dir = checkout / ".backline"
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (data_dir / "services").mkdir(exist_ok=True)
        (data_dir / "services" / "workers.pid").write_text(str(stand_in.pid))
        stopped = run("db", "stop", cwd=checkout)
        assert stopped.returncode == 0, stopped.stderr
        assert "embedded PostgreSQL stopped" in stopped.stderr
        assert f"still running: workers (pid {stand_in.pid})" in stopped.stderr
        assert "backline down" in stopped.stderr
        assert EmbeddedServer(data_dir).running_state() is None
        down = run("down", cwd=checkout)
        assert down.returncode == 0, down.stderr
        assert down.stdout == "" and "workers    stopped" in down.stderr
        assert stand_in.wait(timeout=30) is not None
    finally:
        if stand_in.poll() is None:
            stand_in.kill()
