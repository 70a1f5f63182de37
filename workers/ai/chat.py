"""Append the assistant's reply to a room chat element (rooms module).

The rooms module owns chat histories; we only call its SQL function, acting
as the user, so its membership rules decide. Assumed shape (documented for
the merge):

    public.append_chat_message(p_element_id uuid, p_role text, p_content text,
                               p_metadata jsonb default '{}') returns uuid
    SECURITY INVOKER RPC; raises 42501 when the caller is not a room member,
    P0002 when the element does not exist.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from workers.ai.auth import Caller
from workers.ai.store import StoreError
from workers.db.impersonate import act_as

APPEND_SQL = "select public.append_chat_message(%s::uuid, %s::text, %s::text, %s::jsonb)"


def append_chat_message(
    conn: psycopg.Connection[Any],
    caller: Caller,
    element_id: str,
    role: str,
    content: str,
    metadata: dict[str, Any] | None = None,
) -> None:
    try:
        with act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
            cur.execute(APPEND_SQL, (element_id, role, content, json.dumps(metadata or {})))
    except psycopg.errors.UndefinedFunction:
        raise StoreError(501, "room chat histories are not installed (public.append_chat_message)") from None
    except psycopg.errors.InsufficientPrivilege:
        raise StoreError(403, "you cannot write to this room's chat") from None
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        raise StoreError(
            404 if state == "P0002" else 400 if state.startswith("22") else 500,
            "cannot append to the room chat",
        ) from None
