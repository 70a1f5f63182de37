"""`db reset` and `db seed`: rebuild the schema from the migrations, load dev data."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from workers.db.connect import connect
from workers.db.platform_layer import is_backline_platform
from workers.settings import PROJECT_ROOT

SEED_FILE = PROJECT_ROOT / "supabase" / "seed.sql"

# Schemas the platform owns on hosted Supabase: a reset there must leave them alone.
PLATFORM_SCHEMAS = (
    "auth",
    "storage",
    "realtime",
    "extensions",
    "graphql",
    "graphql_public",
    "vault",
    "pgbouncer",
    "pgsodium",
    "pgsodium_masks",
    "supabase_functions",
    "net",
    "cron",
    "_realtime",
    "_analytics",
    "pgmq",
    "pgtle",
)
PLATFORM_TABLES_WITH_OUR_POLICIES = ("storage.objects", "storage.buckets", "realtime.messages")


def drop_schema_objects(url: str) -> list[str]:
    """Drop everything the migrations created. Returns the schemas dropped.

    On a database whose platform layer is ours (embedded, CI) the platform
    schemas go too and are rebuilt by the next migrate. Elsewhere only our
    schemas and our policies on platform tables are removed.
    """
    with connect(url, autocommit=True) as conn, conn.transaction():
        ours = is_backline_platform(conn)
        rows = conn.execute(
            "select nspname from pg_namespace where nspname !~ '^pg_'"
            " and nspname <> 'information_schema' order by nspname"
        ).fetchall()
        keep = () if ours else PLATFORM_SCHEMAS
        dropped = [str(r[0]) for r in rows if str(r[0]) not in keep]
        if not ours:
            _drop_policies_on_platform_tables(conn)
        if ours:
            conn.execute("drop publication if exists supabase_realtime")
        for schema in dropped:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
        conn.execute("create schema public authorization pg_database_owner")
        conn.execute("grant usage on schema public to public")
        return dropped


def saved_read_meter(url: str) -> str | None:
    """The read meter's stored connection (None when it is off or not installed), kept across a reset."""
    with connect(url) as conn:
        if conn.execute("select to_regclass('private.api_read_meter') is not null").fetchone() != (True,):
            return None
        row = conn.execute("select conninfo from private.api_read_meter").fetchone()
    return None if row is None else str(row[0])


def restore_read_meter(url: str, conninfo: str) -> str | None:
    """Switch the read meter on again with the connection it had; None, or why it could not."""
    from workers.db import read_meter
    from workers.errors import BacklineError

    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    port = params.get("port")
    password = params.get("password")
    try:
        with connect(url, autocommit=True) as conn:
            read_meter.enable(
                conn,
                host=str(params["host"]) if params.get("host") else None,
                port=int(str(port)) if port else None,
                password=str(password) if password else None,
            )
    except BacklineError as exc:
        return str(exc)
    return None


def seed(url: str, seed_file: Path = SEED_FILE) -> bool:
    """Run supabase/seed.sql in one transaction, as `supabase db reset` does."""
    if not seed_file.exists():
        return False
    with connect(url) as conn, conn.transaction():
        conn.execute(seed_file.read_bytes())
    return True


def _drop_policies_on_platform_tables(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for qualified in PLATFORM_TABLES_WITH_OUR_POLICIES:
        schema, table = qualified.split(".")
        policies = conn.execute(
            "select policyname from pg_policies where schemaname = %s and tablename = %s",
            (schema, table),
        ).fetchall()
        for (name,) in policies:
            conn.execute(
                sql.SQL("drop policy {} on {}.{}").format(
                    sql.Identifier(str(name)), sql.Identifier(schema), sql.Identifier(table)
                )
            )
