"""Recreate what Supabase provides (roles, auth, storage, realtime) on plain PostgreSQL.

Applied only when the target lacks `auth.users`: never on hosted Supabase or
`supabase start`, where the platform owns these objects.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from workers.settings import PROJECT_ROOT

PLATFORM_DIR = PROJECT_ROOT / "supabase" / "platform"
MARKER = "backline platform layer"


def platform_files(directory: Path = PLATFORM_DIR) -> list[Path]:
    return sorted(directory.glob("*.sql"))


def platform_present(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("select to_regclass('auth.users') is not null").fetchone()
    return bool(row and row[0])


def is_backline_platform(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """True when the platform objects were created by us (so a reset may rebuild them)."""
    row = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = 'auth'"
    ).fetchone()
    return bool(row and row[0] and MARKER in str(row[0]))


def ensure_platform(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Apply the platform layer in one transaction if it is missing. Returns whether it ran."""
    if platform_present(conn):
        return False
    with conn.transaction():
        for path in platform_files():
            conn.execute(path.read_bytes())  # trusted file content, no parameters
        conn.execute(f"comment on schema auth is '{MARKER}: Supabase auth schema stand-in'")
    return True
