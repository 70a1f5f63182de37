"""`backline users export|delete` as an operator runs them (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg

from tests.helpers import create_user
from workers.settings import PROJECT_ROOT


def backline(
    url: str, data_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BACKLINE_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    env.pop("SUPABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", "users", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
        cwd=PROJECT_ROOT,
    )


def test_export_to_a_file_and_to_the_bucket(rights_url: str, tmp_path: Path):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn, email="cli@example.test")
    out = tmp_path / "me.zip"
    done = backline(rights_url, tmp_path / "data", "export", str(uid), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported" in done.stderr and str(out) in done.stderr
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("account.json"))["email"] == "cli@example.test"
    done = backline(rights_url, tmp_path / "data", "export", str(uid), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["bucket"] == "exports" and data["path"].startswith(f"{uid}/") and "token=" in data["url"]
    assert (tmp_path / "data" / "storage" / "exports" / data["path"]).is_file()


def test_delete_asks_unless_yes_and_erases(rights_url: str, tmp_path: Path):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
    refused = backline(rights_url, tmp_path, "delete", str(uid), stdin="y\n")
    # Not a terminal: nobody can confirm, so it refuses as bad usage whatever stdin says.
    assert refused.returncode == 2 and "nothing was deleted" in refused.stderr and "--yes" in refused.stderr
    done = backline(rights_url, tmp_path, "delete", str(uid), "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user_id"] == str(uid)
    with psycopg.connect(rights_url) as conn:
        assert conn.execute("select count(*) from auth.users where id = %s", (uid,)).fetchone()[0] == 0


def test_errors_are_one_line_and_exit_1(rights_url: str, tmp_path: Path):
    bad = backline(rights_url, tmp_path, "export", "not-a-uuid")
    assert bad.returncode == 2  # bad usage, like every other malformed value
    assert "user id must be a uuid, got 'not-a-uuid'" in bad.stderr and "Traceback" not in bad.stderr
    missing = backline(rights_url, tmp_path, "delete", "00000000-0000-0000-0000-000000000001", "--yes")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        "backline: user 00000000-0000-0000-0000-000000000001 not found"
    )
