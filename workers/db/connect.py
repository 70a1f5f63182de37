"""Resolve which database a command talks to, and open connections to it."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import conninfo

from workers.db.embedded import EmbeddedServer
from workers.errors import BacklineError, DatabaseUnavailable
from workers.settings import Settings

CONNECT_TIMEOUT_SECONDS = 5


def is_embedded(settings: Settings, database_url: str | None = None) -> bool:
    """True when no database URL is configured, so the embedded server is the target."""
    return database_url is None and settings.database_url is None


def resolve_url(settings: Settings, database_url: str | None = None) -> str:
    """The URL of the target database, starting the embedded server if it is the target."""
    url = database_url if database_url is not None else settings.database_url
    if url is None:
        return EmbeddedServer(settings.data_dir).ensure_running().tcp_url()
    if not url.strip():
        raise BacklineError("the database URL is set but empty (DATABASE_URL / SUPABASE_DB_URL)")
    validate_url(url)
    return url


def is_local_url(url: str) -> bool:
    """True when the URL points at this machine (localhost, loopback or a Unix socket)."""
    host = str(conninfo.conninfo_to_dict(url).get("host") or "")
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


def validate_url(url: str) -> None:
    """Reject a malformed database URL with a readable message."""
    if not url.startswith(("postgres://", "postgresql://")) and "=" not in url:
        raise BacklineError(
            f"invalid database URL {redact(url)!r}: expected postgresql://user:password@host:port/db"
        )
    try:
        conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise BacklineError(f"invalid database URL {redact(url)!r}: {first_line(exc)}") from None


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection, turning connection failures into DatabaseUnavailable.

    It never prepares statements on the server (`prepare_threshold=None`, as every connection
    Backline opens, tests/db/test_no_server_prepare.py): through a transaction pooler
    (Supavisor on port 6543, PgBouncer in transaction mode) the next transaction may run on a
    backend that lacks the statement. Only the job queue's own pool prepares, and only when
    its URL is not the transaction pooler (workers/jobs/queue_sql.py)."""
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="backline",
            prepare_threshold=None,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach {redact(url)}: {first_line(exc)}") from None
    except psycopg.ProgrammingError as exc:
        raise BacklineError(f"invalid database URL {redact(url)!r}: {first_line(exc)}") from None


def redact(url: str) -> str:
    """The URL with its password removed, safe to print."""
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[-1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    if "password" in params:
        params["password"] = "***"
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
