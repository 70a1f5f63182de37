"""A PostgreSQL server of the test's own (its own EmbeddedServer in a temporary data
directory), which these tests kill with SIGKILL. Never the shared test server: killing that
would break everybody else's tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from workers.db import migrations
from workers.db.embedded import EmbeddedServer
from workers.errors import DatabaseUnavailable
from workers.settings import PROJECT_ROOT


@dataclass
class OwnServer:
    server: EmbeddedServer
    admin_url: str
    url: str  # the migrated database the test writes to
    kills: int = 0

    def postmaster_pid(self) -> int:
        return int((self.server.pgdata / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """SIGKILL the postmaster (no shutdown, no checkpoint), then wait until its children noticed
        and exited (they do so on their own, as after a real crash; the next start needs it)."""
        pid = self.postmaster_pid()
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        self.kills += 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in [pid, *children]):
            time.sleep(0.05)

    def start(self) -> None:
        """Start again (crash recovery runs); retried while orphaned backends still hold shared memory."""
        deadline = time.monotonic() + 60
        while True:
            try:
                self.server.ensure_running()
                return
            except DatabaseUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    path = Path(tempfile.mkdtemp(prefix="bl-durability-"))
    path.chmod(0o755)  # as root the server runs as its own system user, which must reach it
    server = EmbeddedServer(path / "data")
    try:
        admin = server.ensure_running().tcp_url()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("create database backline")
        url = conninfo.make_conninfo(admin, dbname="backline")
        migrations.migrate(url, PROJECT_ROOT / "migrations")
        yield OwnServer(server, admin, url)
    finally:
        with contextlib.suppress(DatabaseUnavailable):
            server.stop()
        shutil.rmtree(path, ignore_errors=True)
