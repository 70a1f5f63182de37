"""How Supabase Realtime authorizes a private channel join, replayed in SQL.

When a client joins a private channel, Realtime opens a transaction, sets the
user's role and `request.jwt.claims`, sets `realtime.topic` to the channel
name, and checks the RLS policies of realtime.messages for each extension:
read = a message of that topic/extension is visible to a select; write = an
insert of such a message as the user succeeds. Then it rolls back; nothing is
stored. This helper does the same for one (user, topic, extension).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg

from tests.helpers import claims_for


def channel_access(
    conn: psycopg.Connection[Any], user_id: uuid.UUID | None, topic: str, extension: str
) -> tuple[bool, bool]:
    """(may receive, may send) on the private channel `topic` for `extension`."""
    role = "authenticated" if user_id is not None else "anon"
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        cur.execute("select set_config('realtime.topic', %s, true)", (topic,))
        cur.execute(
            "insert into realtime.messages (topic, extension, private, payload, event)"
            " values (%s, %s, true, '{}', 'authorization_check')",
            (topic, extension),
        )
        cur.execute(f"set local role {role}")
        cur.execute(
            "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims_for(user_id, role)),)
        )
        row = cur.execute(
            "select count(*) from realtime.messages where topic = %s and extension = %s",
            (topic, extension),
        ).fetchone()
        can_read = bool(row and row[0] > 0)
        try:
            with conn.transaction():
                cur.execute(
                    "insert into realtime.messages (topic, extension, private, payload, event)"
                    " values (%s, %s, true, '{}', 'authorization_check')",
                    (topic, extension),
                )
            can_write = True
        except psycopg.errors.InsufficientPrivilege:
            can_write = False
    return can_read, can_write
