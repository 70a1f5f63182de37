"""Resolve which database a command talks to, and open connections to it."""

from __future__ import annotations

import psycopg
from psycopg import conninfo

from workers.db.embedded import EmbeddedServer
from workers.errors import BacklineError, DatabaseUnavailable
from workers.settings import Settings

CONNECT_TIMEOUT_SECONDS = 5


def is_embedded(settings: Settings, database_url: str | None = None) -> bool:
    """True when no database URL is configured, so the embedded server is the target."""
    return not (database_url or settings.database_url)


def resolve_url(settings: Settings, database_url: str | None = None) -> str:
    """The URL of the target database, starting the embedded server if it is the target."""
    url = database_url or settings.database_url
    if url:
        validate_url(url)
        return url
    return EmbeddedServer(settings.data_dir).ensure_running().tcp_url()


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
    """Open a connection, turning connection failures into DatabaseUnavailable."""
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="backline",
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach {redact(url)}: {first_line(exc)}") from None
    except psycopg.ProgrammingError as exc:
        raise BacklineError(f"invalid database URL {redact(url)!r}: {first_line(exc)}") from None


def redact(url: str) -> str:
    """The URL with its password replaced, safe to print."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return url.split("@")[-1]
    if parts.get("password"):
        return url.replace(str(parts["password"]), "***")
    return url


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
