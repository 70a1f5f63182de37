"""Everything the proxy does in the database, always acting as the caller (RLS applies).

Each function runs one short transaction through `act_as(..., rollback=False)`,
exactly like one PostgREST request; callers run them in a worker thread.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers.ai.auth import Caller
from workers.ai.keys import MasterKeys, last4
from workers.db.impersonate import act_as

log = logging.getLogger("backline.ai")


class StoreError(Exception):
    """A database refusal mapped to HTTP: status + safe message."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


SQLSTATE_STATUS = {
    "42501": 403,
    "P0002": 404,
    "PT404": 404,
    "22023": 400,
    "23514": 400,
    "PT402": 402,
    "PT429": 429,
}


def map_error(exc: psycopg.Error) -> StoreError:
    state = exc.sqlstate or ""
    message = exc.diag.message_primary or "database error"
    if state not in SQLSTATE_STATUS:
        # SQLSTATE and the server's primary message only: no parameters (keys, prompts) are logged.
        log.warning("ai database error %s: %s", state, message)
    return StoreError(
        SQLSTATE_STATUS.get(state, 500), message if state in SQLSTATE_STATUS else "database error"
    )


def aad_for(key_id: uuid.UUID | str, user_id: str) -> bytes:
    return f"ai_key:{key_id}:{user_id}".encode()


def store_key(
    conn: psycopg.Connection[Any],
    caller: Caller,
    master: MasterKeys,
    *,
    provider: str,
    secret: str,
    label: str | None,
    expires_in_hours: float | None,
    keep: bool = False,
) -> dict[str, Any]:
    """Store a key for the caller.

    Lifetime: `expires_in_hours` if given; `keep` = until the user deletes it; neither = the
    session lifetime of the caller's plan (plans.ai_key_session_hours, decided in SQL).
    """
    key_id = uuid.uuid4()
    sealed = master.seal(secret, aad_for(key_id, caller.user_id))
    expires: datetime | str | None = None
    if keep:
        expires = "infinity"
    elif expires_in_hours:
        expires = datetime.now(UTC) + timedelta(hours=expires_in_hours)
    try:
        with act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
            cur.execute(
                "select private.ai_key_store(%s, %s, %s, %s::timestamptz, %s, %s, %s, %s)",
                (
                    provider,
                    label,
                    last4(secret),
                    expires,
                    sealed.master_key_id,
                    sealed.wrapped_dek,
                    sealed.ciphertext,
                    key_id,
                ),
            )
            cur.row_factory = dict_row
            cur.execute(_KEY_SELECT + " where id = %s", (key_id,))
            row = cur.fetchone()
    except psycopg.Error as exc:
        raise map_error(exc) from None
    assert row is not None
    return dict(row)


_KEY_SELECT = "select id, provider, label, last4, expires_at, last_used_at, created_at from public.ai_keys"


def list_keys(conn: psycopg.Connection[Any], caller: Caller) -> list[dict[str, Any]]:
    with act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
        cur.row_factory = dict_row
        cur.execute(_KEY_SELECT + " where expires_at is null or expires_at > now() order by created_at")
        return [dict(r) for r in cur.fetchall()]


def model_catalog(conn: psycopg.Connection[Any], caller: Caller) -> tuple[list[tuple[str, str]], list[str]]:
    """GET /v1/models: the priced (provider, model) pairs and the providers of the caller's
    live stored keys, in one transaction as the caller."""
    with act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
        cur.execute("select provider, model from public.ai_prices where model <> '*' order by 1, 2")
        priced = [(str(p), str(m)) for p, m in cur.fetchall()]
        cur.execute(
            "select distinct provider from public.ai_keys where expires_at is null or expires_at > now()"
        )
        return priced, [str(r[0]) for r in cur.fetchall()]


def delete_key(conn: psycopg.Connection[Any], caller: Caller, key_id: str) -> bool:
    with act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
        cur.execute("delete from public.ai_keys where id = %s", (key_id,))
        return cur.rowcount == 1


def read_storage_object(conn: psycopg.Connection[Any], caller: Caller, bucket: str, path: str) -> None:
    """Check the caller may read a storage object (storage RLS); raises 404 otherwise."""
    with act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
        cur.execute("select 1 from storage.objects where bucket_id = %s and name = %s", (bucket, path))
        if cur.fetchone() is None:
            raise StoreError(404, f"no readable storage object {bucket}/{path}")
