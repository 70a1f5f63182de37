"""Append the assistant's reply to a room chat element (rooms module: public.room_chat_messages).

The rooms module lets members read a chat and owners/editors add `user`
messages; `assistant` messages are written by the AI side with the service
role. So, in one transaction: first, acting as the user (RLS applies), the
element must be a chat element the user can see and edit
(private.my_editable_room_ids()); then, as service_role, the assistant message
is inserted with the model and token counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from workers.ai.auth import Caller
from workers.ai.store import StoreError
from workers.db.impersonate import act_as

CHECK_SQL = """
select e.room_id, e.kind, e.room_id in (select private.my_editable_room_ids())
  from public.room_elements e where e.id = %s
"""
INSERT_SQL = """
insert into public.room_chat_messages
  (room_id, element_id, role, content, model, prompt_tokens, completion_tokens)
values (%s, %s, 'assistant', %s, %s, %s, %s)
"""


def _check(cur: psycopg.Cursor[Any], element_id: str) -> Any:
    cur.execute(CHECK_SQL, (element_id,))
    row = cur.fetchone()
    if row is None or row[1] != "chat":
        raise StoreError(404, f"no chat element {element_id} in a room you belong to")
    if not row[2]:
        raise StoreError(403, "you cannot write to this room's chat (owners and editors only)")
    return row[0]


def check_chat_element(conn: psycopg.Connection[Any], caller: Caller, element_id: str) -> None:
    """Before spending on a provider call: the user may append to this chat element (404/403 otherwise)."""
    with _errors(), act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
        _check(cur, element_id)


def append_chat_message(
    conn: psycopg.Connection[Any],
    caller: Caller,
    element_id: str,
    content: str,
    *,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Re-check as the user and insert the assistant message as service_role, in one transaction."""
    with _errors(), conn.transaction():
        with act_as(conn, caller.user_id, caller.role, claims=caller.claims, rollback=False) as cur:
            room_id = _check(cur, element_id)
        with act_as(conn, None, "service_role", rollback=False) as cur:
            cur.execute(
                INSERT_SQL,
                (room_id, element_id, content or " ", model[:100], prompt_tokens, completion_tokens),
            )


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.UndefinedTable:
        raise StoreError(501, "room chat histories are not installed (public.room_chat_messages)") from None
    except psycopg.errors.InvalidTextRepresentation:
        raise StoreError(400, "chat_element_id must be a uuid") from None
    except psycopg.Error as exc:
        status = 400 if (exc.sqlstate or "").startswith("23") else 500
        raise StoreError(status, "cannot append to the room chat") from None
