"""Configure the API meter: the session through which the pre-request hook counts requests.

The hook runs inside each Data API request's transaction, which PostgREST rolls
back when the request fails (and makes READ ONLY for reads). So it counts every
request, read or write, in an autonomous dblink session as the role
`backline_api_meter`, committed on its own: a request that fails later stays
counted (migrations 20261125080000, 20261206090700; docs/rate-limits.md). This
module gives that role LOGIN (and a password when the server needs one), builds
the connection parameters, proves they work by connecting the way the hook
will, and only then stores them. Without it, writes are counted in their own
transaction (a failing one is not counted) and reads are only checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from workers.errors import BacklineError

METER_ROLE = "backline_api_meter"


@dataclass(frozen=True)
class MeterStatus:
    """Whether requests are counted in the meter session, and where it connects (never the password)."""

    enabled: bool
    host: str | None = None
    port: int | None = None
    user: str | None = None
    has_password: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "has_password": self.has_password,
        }


def _server_endpoint(conn: psycopg.Connection[Any]) -> tuple[str, int]:
    """Where the server itself listens: its first Unix socket directory, else loopback TCP."""
    row = conn.execute(
        "select current_setting('unix_socket_directories'), current_setting('port')::integer"
    ).fetchone()
    assert row is not None
    sockets, port = str(row[0]), int(row[1])
    first = next((s.strip() for s in sockets.split(",") if s.strip()), "")
    return (first if first.startswith("/") else "127.0.0.1"), port


def _conninfo(host: str, port: int, password: str | None) -> str:
    # A short connect timeout: a request waits for it when the meter is unreachable.
    return psycopg.conninfo.make_conninfo(
        "", host=host, port=port, user=METER_ROLE, connect_timeout=2, password=password
    )


def _encrypted_password(conn: psycopg.Connection[Any], password: str) -> str:
    """The SCRAM verifier libpq computes client-side, so the password never appears in SQL."""
    return conn.pgconn.encrypt_password(password.encode(), METER_ROLE.encode(), b"scram-sha-256").decode()


def _probe(conn: psycopg.Connection[Any], info: str) -> str | None:
    """Connect as the hook would; None if the session is the meter and may take slots, else why not."""
    try:
        row = conn.execute("select meter_user, can_take from private.api_meter_probe(%s)", (info,)).fetchone()
    except psycopg.Error as exc:
        return (exc.diag.message_detail or exc.diag.message_primary or str(exc)).strip().splitlines()[0]
    if row is None or row[0] != METER_ROLE or not row[1]:
        return f"the session runs as {row and row[0]!r} and cannot take read slots"
    return None


def _set_password(conn: psycopg.Connection[Any], password: str) -> None:
    """Set the meter role's password, sent as a SCRAM verifier."""
    verifier = _encrypted_password(conn, password)
    conn.execute(
        sql.SQL("alter role {} password {}").format(sql.Identifier(METER_ROLE), sql.Literal(verifier))
    )


def enable(
    conn: psycopg.Connection[Any],
    *,
    host: str | None = None,
    port: int | None = None,
    password: str | None = None,
) -> MeterStatus:
    """Let the meter role log in, probe the connection as the hook will, then store it.

    `conn` must be in autocommit mode: the probe opens a new session, which
    sees only committed role changes. A failed `enable` stores nothing. The
    role is cluster-wide (every database on a cluster shares its password),
    so the password is set only when the server refused the one given, and
    put back when that did not help and this database knew the old one.
    """
    if host is not None and not host.strip():
        raise BacklineError("--host must not be empty")
    if port is not None and not 1 <= port <= 65535:
        raise BacklineError(f"--port must be 1-65535, got {port}")
    if password is not None and not password:
        raise BacklineError("--password must not be empty")
    default_host, default_port = _server_endpoint(conn)
    host = host or default_host
    port = port or default_port
    info = _conninfo(host, port, password)
    role = sql.Identifier(METER_ROLE)
    row = conn.execute(
        "select rolcanlogin from pg_catalog.pg_roles where rolname = %s", (METER_ROLE,)
    ).fetchone()
    if row is None:
        raise BacklineError(f"role {METER_ROLE} is missing: run `backline db migrate` first")
    could_login = bool(row[0])
    previous = conn.execute("select conninfo from private.api_read_meter").fetchone()
    try:
        if not could_login:
            conn.execute(sql.SQL("alter role {} login").format(role))
        failure = _probe(conn, info)
        if failure is not None and password is not None and "password authentication failed" in failure:
            # The role has another password (or none): set the one given, put the old one back
            # if that does not help and this database knew it.
            _set_password(conn, password)
            failure = _probe(conn, info)
            old = psycopg.conninfo.conninfo_to_dict(str(previous[0])).get("password") if previous else None
            if failure is not None and old is not None:
                _set_password(conn, str(old))
        if failure is not None:
            if not could_login:
                conn.execute(sql.SQL("alter role {} nologin").format(role))
            hint = (
                "the server did not ask for a password there (trust/peer auth):"
                " pass --host of an address where it does"
                if "password is required" in failure
                else "a server that asks for passwords needs --password; hosted Supabase: see README"
            )
            raise BacklineError(
                f"the database could not open the meter session at {host}:{port}: {failure} ({hint})"
            )
    except psycopg.Error as exc:
        raise BacklineError(f"could not configure the read meter: {exc.diag.message_primary}") from None
    conn.execute(
        "insert into private.api_read_meter (conninfo) values (%s)"
        " on conflict (id) do update set conninfo = excluded.conninfo, updated_at = now()",
        (info,),
    )
    return status(conn)


def disable(conn: psycopg.Connection[Any]) -> MeterStatus:
    """Stop metering: writes are counted in their own transaction again (failing ones are not), reads
    only checked. The role keeps its login for other databases."""
    conn.execute("delete from private.api_read_meter")
    return MeterStatus(enabled=False)


def status(conn: psycopg.Connection[Any]) -> MeterStatus:
    row = conn.execute("select conninfo from private.api_read_meter").fetchone()
    if row is None:
        return MeterStatus(enabled=False)
    params = psycopg.conninfo.conninfo_to_dict(str(row[0]))
    return MeterStatus(
        enabled=True,
        host=str(params.get("host")),
        port=int(str(params.get("port"))),
        user=str(params.get("user")),
        has_password="password" in params,
    )
