"""scripts/test stops the PostgreSQL it started, and only that (issue #14).

It used to leave its own server (./.backline-test) running forever, and `backline down` does
not stop it (that one stops what `backline up` started). Each case runs scripts/test itself on
one quick test, with BACKLINE_TEST_DATA_DIR pointing at a throwaway directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.db.embedded import EmbeddedServer
from workers.settings import PROJECT_ROOT

QUICK_TEST = "tests/cli/test_cli.py::test_supabase_db_url_is_accepted"  # needs the suite's server


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bl-st-"))  # short: Unix socket paths are limited
    path.chmod(0o755)
    yield path
    EmbeddedServer(path).stop()
    shutil.rmtree(path, ignore_errors=True)


def scripts_test(data_dir: Path, *pytest_args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SUPABASE_DB_URL", "BACKLINE_TEST_KEEP_SERVER")
        and not k.startswith("PYTEST_")
    }
    env["BACKLINE_TEST_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "test"), *pytest_args],
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_run_stops_the_server_it_started(data_dir):
    assert EmbeddedServer(data_dir).running_state() is None
    result = scripts_test(data_dir, QUICK_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (data_dir / "pgdata" / "PG_VERSION").exists()  # the run did use its own server
    assert EmbeddedServer(data_dir).running_state() is None
    assert f"stopped the test PostgreSQL it started ({data_dir})" in result.stderr


def test_a_server_that_was_already_running_stays_running(data_dir):
    before = EmbeddedServer(data_dir).ensure_running()
    result = scripts_test(data_dir, QUICK_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert EmbeddedServer(data_dir).running_state() == before
    assert "stopped the test PostgreSQL" not in result.stderr


def test_pytest_exit_status_is_kept(data_dir):
    result = scripts_test(data_dir, QUICK_TEST, "-k", "no_test_has_this_name")
    assert result.returncode == 5  # pytest: no tests collected
    assert EmbeddedServer(data_dir).running_state() is None
