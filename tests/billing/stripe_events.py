"""Stripe event bodies shaped like Stripe's real payloads, and a client for the webhook app.

Only the fields Backline reads are filled in, with Stripe's names and types
(ids with their prefixes, unix-second timestamps, `items.data[].price`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from starlette.applications import Starlette

from workers.ai.billing import PATH, BillingConfig, make_routes
from workers.billing.signature import signature_header

SECRET = "whsec_test_0123456789abcdefABCDEF"
OLD_SECRET = "whsec_test_previous_secret_rolled"


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def new_customer() -> str:
    return _id("cus")


def new_subscription() -> str:
    return _id("sub")


def event(
    event_type: str, obj: dict[str, Any], *, created: int | None = None, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or _id("evt"),
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def checkout_completed(
    user_id: Any,
    customer: str,
    subscription: str,
    *,
    payment_status: str = "paid",
    created: int | None = None,
    mode: str = "subscription",
) -> dict[str, Any]:
    return event(
        "checkout.session.completed",
        {
            "id": _id("cs_test"),
            "object": "checkout.session",
            "client_reference_id": None if user_id is None else str(user_id),
            "customer": customer,
            "subscription": subscription,
            "mode": mode,
            "status": "complete",
            "payment_status": payment_status,
            "metadata": {},
        },
        created=created,
    )


def subscription_event(
    kind: str,
    subscription: str,
    customer: str,
    status: str,
    *,
    price: str = "price_backup_monthly",
    lookup_key: str | None = None,
    created: int | None = None,
    period_end: int | None = None,
    cancel_at_period_end: bool = False,
) -> dict[str, Any]:
    end = period_end or int(time.time()) + 30 * 86400
    return event(
        f"customer.subscription.{kind}",
        {
            "id": subscription,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": cancel_at_period_end,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": _id("si"),
                        "object": "subscription_item",
                        "current_period_end": end,
                        "price": {"id": price, "object": "price", "lookup_key": lookup_key},
                    }
                ],
            },
            "metadata": {},
        },
        created=created,
    )


def payment_failed(customer: str, subscription: str, *, created: int | None = None) -> dict[str, Any]:
    return event(
        "invoice.payment_failed",
        {
            "id": _id("in"),
            "object": "invoice",
            "customer": customer,
            "attempt_count": 1,
            "next_payment_attempt": int(time.time()) + 3 * 86400,
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription, "metadata": {}},
            },
        },
        created=created,
    )


class Webhook:
    """The billing routes in a tiny Starlette app, called through httpx's ASGI transport."""

    def __init__(self, database_url: str, secrets: Sequence[str] = (SECRET,), default_plan: str = "pro"):
        config = BillingConfig(
            database_url=database_url, webhook_secrets=tuple(secrets), default_plan=default_plan
        )
        self.app = Starlette(routes=make_routes(lambda: config))

    def _request(self, body: bytes, header: str | None) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if header is not None:
            headers["stripe-signature"] = header
        return {"content": body, "headers": headers}

    async def apost(self, client: httpx.AsyncClient, body: bytes, header: str | None) -> httpx.Response:
        return await client.post(PATH, **self._request(body, header))

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://billing.test")

    def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secrets: Sequence[str] = (SECRET,),
        timestamp: int | None = None,
        header: str | None = "sign",
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if header == "sign":
            header = signature_header(body, secrets, timestamp)

        async def go() -> httpx.Response:
            async with self.client() as client:
                return await self.apost(client, body, header)

        return asyncio.run(go())

    def post_many(self, payloads: Sequence[bytes]) -> list[httpx.Response]:
        """Send bodies concurrently (each its own request and database connection)."""

        async def go() -> list[httpx.Response]:
            async with self.client() as client:
                return list(
                    await asyncio.gather(
                        *(self.apost(client, body, signature_header(body, [SECRET])) for body in payloads)
                    )
                )

        return asyncio.run(go())
