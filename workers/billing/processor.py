"""Parse a verified Stripe event and apply it through `private.billing_process_event`.

All decisions (dedup, customer link, ordering, plan) are made in SQL in one
transaction; this module only checks the event's outer shape and runs that
function as the service role, the way a PostgREST service-role request would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import psycopg

EVENT_ID = re.compile(r"^evt_[A-Za-z0-9]{1,250}$")
CONNECT_TIMEOUT_SECONDS = 5
# Outcomes that change nothing for any user but deserve an operator's look.
NOTEWORTHY = frozenset({"unknown_customer", "unknown_user", "customer_conflict"})


class MalformedEvent(ValueError):
    """The body is not a Stripe event object. The message is safe to return to the sender."""


@dataclass(frozen=True)
class Outcome:
    """What the database did with one event."""

    event_id: str
    event_type: str
    outcome: str
    user_id: str | None
    subscription_id: str | None


@dataclass(frozen=True)
class StripeEvent:
    """The outer fields of an event plus its raw JSON text (passed to SQL unchanged)."""

    id: str
    type: str
    created: int
    raw: str


def parse_event(payload: bytes) -> StripeEvent:
    """Check the envelope: `{"id": "evt_...", "type": str, "created": int, "data": {"object": {...}}}`."""
    try:
        text = payload.decode("utf-8")
        event: Any = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"body is not JSON: {exc.__class__.__name__}") from None
    if not isinstance(event, dict):
        raise MalformedEvent("body is not a JSON object")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
        raise MalformedEvent("event id must look like evt_...")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 100:
        raise MalformedEvent("event type must be a non-empty string")
    if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
        raise MalformedEvent("event created must be a unix timestamp")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("event data.object must be an object")
    return StripeEvent(id=event_id, type=event_type, created=created, raw=text)


async def process_event(database_url: str, event: StripeEvent, default_plan: str) -> Outcome:
    """Apply the event in one transaction as the service role; duplicates return 'duplicate'.

    Raises psycopg errors: SQLSTATE 22023 means the event was rejected as
    malformed by SQL (nothing written), anything else is a server failure.
    """
    conn = await psycopg.AsyncConnection.connect(
        database_url,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="backline-billing",
        prepare_threshold=None,
    )
    try:
        async with conn.transaction():
            await conn.execute("set local role service_role")
            await conn.execute(
                "select set_config('request.jwt.claims', %s, true)", (json.dumps({"role": "service_role"}),)
            )
            cur = await conn.execute(
                "select outcome, user_id, subscription_id from private.billing_process_event(%s::jsonb, %s)",
                (event.raw, default_plan),
            )
            row = await cur.fetchone()
    finally:
        await conn.close()
    if row is None:  # the function always returns one row
        raise RuntimeError("billing_process_event returned no row")
    outcome, user_id, subscription_id = row
    return Outcome(
        event_id=event.id,
        event_type=event.type,
        outcome=str(outcome),
        user_id=None if user_id is None else str(user_id),
        subscription_id=None if subscription_id is None else str(subscription_id),
    )
