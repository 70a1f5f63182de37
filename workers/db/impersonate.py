"""Act as a user exactly like PostgREST does: role, `request.jwt.claims`, search_path, query.

Tests, the AI proxy and the local transport all use this one helper, so RLS is
exercised the way production exercises it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

API_ROLES = ("anon", "authenticated", "service_role")


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
    if role not in API_ROLES:
        raise ValueError(f"role must be one of {API_ROLES}, got {role!r}")
    payload = json.dumps(claims_for(user_id, role, claims))
    nested = conn.info.transaction_status != TransactionStatus.IDLE
    previous = None
    with conn.transaction(force_rollback=rollback), conn.cursor() as cur:
        if nested and not rollback:
            # Releasing a savepoint keeps SET LOCAL values: restore them when the block ends.
            previous = cur.execute(
                "select current_user, current_setting('request.jwt.claims', true),"
                " current_setting('search_path')"
            ).fetchone()
        # What PostgREST sends before each request, in one round trip: role, claims, search_path
        # (the exposed schema plus db-extra-search-path).
        cur.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
            " set_config('search_path', 'public, extensions', true)",
            (role, payload),
        )
        yield cur
        if previous is not None:
            cur.execute(
                "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
                " set_config('search_path', %s, true)",
                (previous[0], previous[1] or "", previous[2]),
            )
