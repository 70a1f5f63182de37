"""Act as a user exactly like PostgREST does: role, `request.jwt.claims`, search_path, query.

Tests, the AI proxy and the local transport all use these helpers (`act_as`; the proxy's
hot path sends the same statements in one round trip with `as_user_script`), so RLS is
exercised the way production exercises it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

API_ROLES = ("anon", "authenticated", "service_role")
# What PostgREST sends before each request, in one round trip: role, claims, search_path
# (the exposed schema plus db-extra-search-path).
_SET_SQL = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('search_path', 'public, extensions', true)"
)
_SAVE_SQL = "select current_user, current_setting('request.jwt.claims', true), current_setting('search_path')"
_RESTORE_SQL = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('search_path', %s, true)"
)


def claims_for(
    user_id: uuid.UUID | str | None, role: str = "authenticated", extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JWT claims PostgREST would place in `request.jwt.claims` for this caller."""
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims["sub"] = str(user_id)
        claims.setdefault("aud", "authenticated")
    claims.update(extra or {})
    return claims


@contextmanager
def act_as(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID | str | None = None,
    role: str = "authenticated",
    *,
    claims: Mapping[str, Any] | None = None,
    rollback: bool = True,
) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor inside a transaction (or savepoint) running as `role` with the user's claims.

    rollback=True (tests) undoes everything at the end; rollback=False commits
    the block like a PostgREST request.
    """
    payload = _payload(user_id, role, claims)
    nested = conn.info.transaction_status != TransactionStatus.IDLE
    previous = None
    with conn.transaction(force_rollback=rollback), conn.cursor() as cur:
        if nested and not rollback:
            # Releasing a savepoint keeps SET LOCAL values: restore them when the block ends.
            previous = cur.execute(_SAVE_SQL).fetchone()
        cur.execute(_SET_SQL, (role, payload))
        yield cur
        if previous is not None:
            cur.execute(_RESTORE_SQL, (previous[0], previous[1] or "", previous[2]))


def as_user_script(
    conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any],
    statements: Sequence[tuple[str, Sequence[Any]]],
    user_id: uuid.UUID | str | None = None,
    role: str = "authenticated",
    *,
    claims: Mapping[str, Any] | None = None,
) -> tuple[str, list[Any]]:
    """`act_as(..., rollback=False)` as ONE simple-query message: PostgREST's set_config
    statement, then `statements` ((query, params) each), in one implicit transaction (all
    committed, or none on the first error) and one network round trip.

    Returns (query, params) for a client-side-binding cursor (`psycopg.ClientCursor` /
    `AsyncClientCursor`: values are quoted by psycopg's adapters, and the message may
    hold several statements). Only on an idle autocommit connection: the message is the
    whole transaction, so there is nothing to restore. Read the result sets with
    `cursor.nextset()` (the first one is the set_config row).
    """
    if conn.info.transaction_status != TransactionStatus.IDLE or not conn.autocommit:
        raise ValueError("as_user_script needs an idle autocommit connection")
    query = "; ".join([_SET_SQL, *(q for q, _ in statements)])
    params: list[Any] = [role, _payload(user_id, role, claims)]
    for _, values in statements:
        params.extend(values)
    return query, params


def _payload(user_id: uuid.UUID | str | None, role: str, claims: Mapping[str, Any] | None) -> str:
    if role not in API_ROLES:
        raise ValueError(f"role must be one of {API_ROLES}, got {role!r}")
    return json.dumps(claims_for(user_id, role, claims))
