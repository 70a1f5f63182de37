"""Configuration mistakes are caught, in one line, before they cost data (issue #14).

A mistyped BACKLINE_DATA_DIR used to create and start a new, empty cluster; a .env with bad
bytes printed a 183-line traceback; malformed .env lines were ignored without a word.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import backline
from workers.db.embedded import EmbeddedServer


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path (Unix socket paths are limited) that others may traverse."""
    path = Path(tempfile.mkdtemp(prefix="bl-cfg-"))
    path.chmod(0o755)
    yield path
    EmbeddedServer(path / "new-cluster").stop()
    shutil.rmtree(path, ignore_errors=True)


def test_env_file_with_bad_bytes_is_one_line_naming_file_and_line(tmp_path, clone_url):
    (tmp_path / ".env").write_bytes(b"BACKLINE_AI_PORT=8787\n# fine\nBACKLINE_AI_HOST=caf\xe9\n")
    result = backline("db", "status", "--database-url", clone_url, cwd=tmp_path)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("backline: ") and f"{tmp_path / '.env'} line 3" in line and "UTF-8" in line
    debug = backline("--debug", "db", "status", "--database-url", clone_url, cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_malformed_env_lines_are_warned_by_line_and_the_rest_still_applies(tmp_path, clone_url):
    migrations = tmp_path / "migs"
    migrations.mkdir()
    (tmp_path / ".env").write_text(
        f"BACKLINE_MIGRATIONS_DIR={migrations}\nthis line is junk\nSECRET: s3cr3t-value\n"
    )
    result = backline("db", "new", "probe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"backline: warning: {tmp_path / '.env'} line 2: not NAME=value, ignored",
        f"backline: warning: {tmp_path / '.env'} line 3: not NAME=value, ignored",
    ]
    assert "s3cr3t" not in result.stderr  # a malformed line may hold a secret: never echoed
    assert [p.name for p in migrations.iterdir()] == [Path(result.stdout.strip()).name]  # line 1 applied
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / ".env").write_text("BACKLINE_AI_PORT=8788\n")
    quiet = backline("db", "status", "--json", "--database-url", clone_url, cwd=clean)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_data_dir_that_does_not_exist_is_refused_and_not_created(tmp_path):
    missing = tmp_path / "typo" / ".backline"
    for args in (("db", "status"), ("db", "url"), ("jobs", "list"), ("up", "--no-services"), ("db", "start")):
        result = backline(*args, cwd=tmp_path, env={"BACKLINE_DATA_DIR": str(missing)})
        assert result.returncode == 1, (args, result.stderr)
        line = error_line(result)
        assert f"BACKLINE_DATA_DIR={missing} does not exist" in line and "--init" in line
    assert not (tmp_path / "typo").exists()


def test_init_creates_a_new_cluster_where_asked(short_dir):
    target = short_dir / "new-cluster"
    started = backline("db", "start", "--init", cwd=short_dir, env={"BACKLINE_DATA_DIR": str(target)})
    assert started.returncode == 0, started.stderr
    assert "embedded PostgreSQL running" in started.stderr and started.stdout == ""
    assert (target / "pgdata" / "PG_VERSION").exists()
    # Now it exists: later commands attach without --init.
    url = backline("db", "url", cwd=short_dir, env={"BACKLINE_DATA_DIR": str(target)})
    assert url.returncode == 0 and url.stdout.startswith("postgresql://")
    stopped = backline("db", "stop", cwd=short_dir, env={"BACKLINE_DATA_DIR": str(target)})
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
