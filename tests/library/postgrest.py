"""One Data API request exactly the way PostgREST runs it, for the rate-limit hook tests."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import psycopg

HOOK = "select private.api_pre_request()"


def request_error(
    conn: psycopg.Connection[Any],
    user: uuid.UUID | None,
    method: str,
    path: str = "/documents",
    role: str = "authenticated",
    headers: dict[str, str] | None = None,
    read_only: bool | None = None,
) -> psycopg.Error | None:
    """One PostgREST request: BEGIN (READ ONLY for GET/HEAD, and for POST to a STABLE function:
    pass read_only=True), role, claims, method/path/headers, hook.

    Returns the error the hook raised (None if the request may proceed); commits like PostgREST.
    """
    claims: dict[str, Any] = {"role": role}
    if user is not None:
        claims["sub"] = str(user)
    if read_only is None:
        read_only = method in ("GET", "HEAD")
    mode = "read only" if read_only else "read write"
    try:
        conn.execute(f"begin isolation level read committed {mode}")
        conn.execute(psycopg.sql.SQL("set local role {}").format(psycopg.sql.Identifier(role)))
        conn.execute(
            "select set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
            " set_config('request.path', %s, true), set_config('request.headers', %s, true)",
            (json.dumps(claims), method, path, json.dumps(headers or {})),
        )
        conn.execute(HOOK)
        conn.execute("commit")
        return None
    except psycopg.Error as exc:
        conn.execute("rollback")
        return exc


def request(
    conn: psycopg.Connection[Any],
    user: uuid.UUID | None,
    method: str,
    path: str = "/documents",
    role: str = "authenticated",
    headers: dict[str, str] | None = None,
    read_only: bool | None = None,
) -> str | None:
    """Like `request_error`, but only the SQLSTATE."""
    error = request_error(conn, user, method, path, role, headers, read_only)
    return error.sqlstate if error else None


def events(conn: psycopg.Connection[Any], key: str) -> int:
    return conn.execute("select count(*) from private.rate_limit_events where key = %s", (key,)).fetchone()[0]


def concurrent_requests(url: str, user: uuid.UUID, method: str, n: int) -> list[str | None]:
    """`n` requests of one user released at the same instant, each on its own connection."""
    conns = [psycopg.connect(url, autocommit=True) for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[str | None] = []
    lock = threading.Lock()

    def worker(c: psycopg.Connection[Any]) -> None:
        barrier.wait()
        outcome = request(c, user, method)
        with lock:
            results.append(outcome)

    try:
        threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for c in conns:
            c.close()
    return results
