"""Helpers shared by tests. `act_as` is the production impersonation helper."""

from __future__ import annotations

import json
import uuid
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from workers.db.impersonate import act_as, claims_for

__all__ = ["act_as", "claims_for", "create_user", "keep_as"]


def create_user(
    conn: psycopg.Connection[Any], email: str | None = None, anonymous: bool = False, **meta: Any
) -> uuid.UUID:
    """Insert an auth user the way Supabase Auth does (sign-up or anonymous sign-in)."""
    user_id = uuid.uuid4()
    if email is None and not anonymous:
        email = f"user-{user_id.hex[:8]}@example.test"
    conn.execute(
        "insert into auth.users (id, aud, role, email, is_anonymous, raw_user_meta_data,"
        " raw_app_meta_data, created_at, updated_at)"
        " values (%s, 'authenticated', 'authenticated', %s, %s, %s, %s, now(), now())",
        (
            user_id,
            email,
            anonymous,
            json.dumps(meta),
            json.dumps({"provider": "anonymous" if anonymous else "email"}),
        ),
    )
    return user_id


def keep_as(
    conn: psycopg.Connection[Any], user_id: Any, role: str = "authenticated"
) -> AbstractContextManager[psycopg.Cursor[Any]]:
    """act_as whose changes stay in the test transaction (like a committed request).

    act_as itself puts the caller's role, claims and search_path back afterwards.
    """
    return act_as(conn, user_id, role, rollback=False)
