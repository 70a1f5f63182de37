"""Recreate what Supabase provides (roles, auth, storage, realtime) on plain PostgreSQL.

Applied only when the target lacks `auth.users`: never on hosted Supabase or
`supabase start`, where the platform owns these objects.

Default privileges on `public` come in two flavours, chosen by
BACKLINE_DEFAULT_PRIVILEGES: `legacy` (as `supabase start`, self-hosted stacks
and projects created before the 2026 change: every new table, sequence and
function in `public` is granted ALL to anon, authenticated and service_role)
or `none` (new hosted projects: nothing is granted without an explicit GRANT).
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from workers.settings import PROJECT_ROOT

PLATFORM_DIR = PROJECT_ROOT / "supabase" / "platform"
LEGACY_DEFAULT_PRIVILEGES = PLATFORM_DIR / "flavours" / "legacy_default_privileges.sql"
MARKER = "backline platform layer"
DEFAULT_PRIVILEGE_MODES = ("legacy", "none")


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


def ensure_platform(
    conn: psycopg.Connection[tuple[object, ...]], default_privileges: str | None = None
) -> bool:
    """Apply the platform layer in one transaction if it is missing. Returns whether it ran.

    `default_privileges` is `legacy` or `none`; unset, BACKLINE_DEFAULT_PRIVILEGES decides.
    """
    if platform_present(conn):
        return False
    if default_privileges is None:
        from workers.settings import get_settings

        default_privileges = get_settings().default_privileges
    if default_privileges not in DEFAULT_PRIVILEGE_MODES:
        raise ValueError(f"default privileges must be one of {DEFAULT_PRIVILEGE_MODES}")
    with conn.transaction():
        for path in platform_files():
            conn.execute(path.read_bytes())  # trusted file content, no parameters
        if default_privileges == "legacy":
            conn.execute(LEGACY_DEFAULT_PRIVILEGES.read_bytes())
        conn.execute(
            f"comment on schema auth is '{MARKER} ({default_privileges} default privileges):"
            " Supabase auth schema stand-in'"
        )
    return True


def default_privileges_mode(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """`legacy` when new `public` tables are granted to an API role by default, else `none`."""
    row = conn.execute(
        """
        select exists (
          select from pg_catalog.pg_default_acl d
          cross join lateral pg_catalog.aclexplode(d.defaclacl) a
          join pg_catalog.pg_namespace n on n.oid = d.defaclnamespace
          where n.nspname = 'public' and d.defaclobjtype = 'r'
            and a.grantee in (select oid from pg_catalog.pg_roles
                              where rolname in ('anon', 'authenticated', 'service_role')))
        """
    ).fetchone()
    return "legacy" if row and row[0] else "none"
