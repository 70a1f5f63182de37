"""Helpers shared by tests. `act_as` is the production impersonation helper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg

from workers.db.impersonate import act_as, claims_for
from workers.settings import PROJECT_ROOT

__all__ = ["act_as", "claims_for", "create_user", "keep_as"]


def create_user(
    conn: psycopg.Connection[Any], email: str | None = None, anonymous: bool = False, **meta: Any
) -> uuid.UUID:
    """Insert an auth user the way Supabase Auth does (sign-up or anonymous sign-in)."""
    user_id = uuid.uuid4()
    if email is None and not anonymous:
        email = f"user-{user_id.hex[:8]}@example.test"
    conn.execute(
        "insert into auth.users (id, aud, role, email, is_anonymous, raw_user_meta_data,"
        " raw_app_meta_data, created_at, updated_at)"
        " values (%s, 'authenticated', 'authenticated', %s, %s, %s, %s, now(), now())",
        (
            user_id,
            email,
            anonymous,
            json.dumps(meta),
            json.dumps({"provider": "anonymous" if anonymous else "email"}),
        ),
    )
    return user_id


def keep_as(
    conn: psycopg.Connection[Any], user_id: Any, role: str = "authenticated"
) -> AbstractContextManager[psycopg.Cursor[Any]]:
    """act_as whose changes stay in the test transaction (like a committed request).

    act_as itself puts the caller's role, claims and search_path back afterwards.
    """
    return act_as(conn, user_id, role, rollback=False)


def backline(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    unset: Sequence[str] = (),
    stdin: int | None = subprocess.DEVNULL,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """The CLI as a subprocess, run the way a user runs it: without the test run's DATABASE_URL /
    SUPABASE_DB_URL (and the variables in `unset`) unless `env` sets them, COLUMNS=200 (unless
    unset: piped output then has no width), stdin not a terminal unless `stdin` says otherwise."""
    dropped = {"DATABASE_URL", "SUPABASE_DB_URL", *unset}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    base["PYTHONPATH"] = str(PROJECT_ROOT)
    if "COLUMNS" not in dropped:
        base["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        env={**base, **(env or {})},
        cwd=cwd or PROJECT_ROOT,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("backline: ")
    return lines[0]
