"""Background services `backline up` starts and `backline down` stops (workers, AI proxy).

Each service is this same CLI in a detached process; its pid and log live in
<BACKLINE_DATA_DIR>/services/, so a later command can find and stop it.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workers.errors import BacklineError

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp*


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]


class Services:
    """Start, find and stop detached service processes for one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.expanduser().resolve() / "services"
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # started by this command

    def _exited(self, pid: int) -> bool:
        """Whether pid is gone; a child of ours that died is reaped (a zombie still answers kill 0)."""
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is not None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def pid(self, name: str) -> int | None:
        try:
            pid = int((self.dir / f"{name}.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return None if self._exited(pid) else pid

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def start(self, service: Service, env: dict[str, str]) -> tuple[int, bool]:
        """Start the service unless it runs. Returns (pid, started_now)."""
        running = self.pid(service.name)
        if running is not None:
            return running, False
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(service.name), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli.main", *service.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        (self.dir / f"{service.name}.pid").write_text(str(proc.pid))
        return proc.pid, True

    def wait_serving(self, name: str, pid: int, host: str, port: int, timeout: float = 60.0) -> None:
        """Return once process `pid` itself listens on `port` and GET /healthz answers 200 there.

        An answer alone proves nothing: whatever else holds the port may answer too. Raises
        PortError (naming the port and its holder) if the process dies or never gets there.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self._exited(pid):
                holder = port_holder(port)
                why = f"port {port} is taken by {holder}" if holder else f"it could not serve on port {port}"
                raise PortError(f"{name} exited at start: {why}; see {self.log_path(name)}")
            owns_port = pid in listening_pids(port, [str(pid)])
            if owns_port and _healthz(host, port) == 200 and not self._exited(pid):
                return
            if time.monotonic() > deadline:
                holder = port_holder(port)
                held = f"port {port} is held by {holder}" if holder else f"nothing listens on port {port}"
                raise PortError(
                    f"{name} (pid {pid}) did not answer GET /healthz on its own port within "
                    f"{timeout:.0f} s ({held}); see {self.log_path(name)}"
                )
            time.sleep(0.2)

    def stop(self, name: str, timeout: float = 30.0) -> bool:
        """SIGTERM (the workers drain), then SIGKILL after `timeout`. Returns whether it ran."""
        pid = self.pid(name)
        (self.dir / f"{name}.pid").unlink(missing_ok=True)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._exited(pid):
                return True
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        if pid in self._children:
            self._children[pid].wait()
        return True

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob("*.pid")) if self.dir.exists() else []


class PortError(BacklineError):
    """A service's port is taken by another process, or the service never served on it."""


def check_port_free(host: str, port: int) -> None:
    """Raise PortError naming the holder if a server could not bind host:port now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise PortError(f"cannot bind {host}:{port}: {exc.strerror}") from None
            holder = port_holder(port)
            by = f" by {holder}" if holder else ""
            raise PortError(
                f"port {port} is already taken{by}; stop it or set BACKLINE_AI_PORT to a free port"
            ) from None


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (any address), from /proc/net/tcp and tcp6 (Linux)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: str) -> set[str]:
    found: set[str] = set()
    try:
        fds = os.scandir(f"/proc/{pid}/fd")
    except OSError:
        return found
    with fds:
        for fd in fds:
            try:
                target = os.readlink(fd.path)
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def listening_pids(port: int, candidates: list[str] | None = None) -> set[int]:
    """Pids (among `candidates`, default all readable) holding a socket listening on `port`."""
    inodes = _listening_inodes(port)
    if not inodes:
        return set()
    if candidates is None:
        try:
            candidates = [p for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return set()
    return {int(p) for p in candidates if _socket_inodes(p) & inodes}


def port_holder(port: int) -> str | None:
    """'pid N (command)' of a process listening on `port`, if this user may see it; else None."""
    for pid in sorted(listening_pids(port)):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return f"pid {pid}"
        command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if len(command) > 80:
            command = command[:77] + "..."
        return f"pid {pid} ({command})" if command else f"pid {pid}"
    return None


def _healthz(host: str, port: int) -> int | None:
    """Status of GET /healthz on host:port (a wildcard host is asked on loopback), None if no answer."""
    import http.client  # not at module top: `backline --help` imports this module

    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    conn = http.client.HTTPConnection(target, port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
