"""`POST /v1/billing/stripe`: the Stripe webhook of the AI service.

Order of checks, each refusing with a JSON error before anything is written:
configured secrets (503), body size (413), `Stripe-Signature` over the raw
body with a 5-minute window and any-of-several secrets (400), event envelope
(400). Then the event is applied exactly once in SQL (see
migrations/*_billing_webhook.sql) and the answer is 200 with the outcome,
duplicates and unhandled types included, so Stripe stops retrying. A
database failure answers 500 and Stripe retries later.

The AI service mounts `routes`; tests build their own with `make_routes`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workers.billing import signature
from workers.billing.processor import NOTEWORTHY, MalformedEvent, parse_event, process_event
from workers.db.connect import resolve_url
from workers.settings import get_settings

log = logging.getLogger("backline.billing")

PATH = "/v1/billing/stripe"
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BillingConfig:
    """What the webhook needs; built from Settings in production, directly in tests."""

    database_url: str
    webhook_secrets: tuple[str, ...]
    tolerance_seconds: int = signature.DEFAULT_TOLERANCE_SECONDS
    default_plan: str = "pro"


@functools.cache
def config_from_settings() -> BillingConfig:
    """The process settings (STRIPE_WEBHOOK_SECRET, DATABASE_URL, ...), resolved once."""
    settings = get_settings()
    return BillingConfig(
        database_url=resolve_url(settings),
        webhook_secrets=tuple(settings.stripe_webhook_secrets),
        tolerance_seconds=settings.stripe_webhook_tolerance_seconds,
        default_plan=settings.billing_default_plan,
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None if it exceeds limit (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def make_routes(config: Callable[[], BillingConfig] = config_from_settings) -> list[Route]:
    """The webhook route, reading its configuration from `config` on each request (cache it)."""

    async def stripe_webhook(request: Request) -> JSONResponse:
        cfg = await run_in_threadpool(config)
        if not any(cfg.webhook_secrets):
            log.error("stripe webhook called but STRIPE_WEBHOOK_SECRET is not set")
            return _error(503, "not_configured", "the billing webhook has no signing secret configured")
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return _error(413, "too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
        try:
            signature.verify(
                body,
                request.headers.get("stripe-signature"),
                cfg.webhook_secrets,
                tolerance=cfg.tolerance_seconds,
            )
        except signature.SignatureError as exc:
            log.warning("stripe webhook refused: %s", exc)
            return _error(400, "bad_signature", str(exc))
        try:
            event = parse_event(body)
        except MalformedEvent as exc:
            log.warning("stripe webhook refused a signed but malformed body: %s", exc)
            return _error(400, "malformed_event", str(exc))
        try:
            outcome = await process_event(cfg.database_url, event, cfg.default_plan)
        except psycopg.Error as exc:
            if exc.sqlstate == "22023":
                reason = exc.diag.message_primary or "malformed event"
                log.warning("stripe event %s (%s) rejected: %s", event.id, event.type, reason)
                return _error(400, "malformed_event", reason)
            log.error("stripe event %s (%s) failed: %s", event.id, event.type, exc.__class__.__name__)
            return _error(500, "processing_failed", "the event could not be processed; Stripe will retry")
        level = logging.WARNING if outcome.outcome in NOTEWORTHY else logging.INFO
        log.log(level, "stripe event %s (%s): %s", event.id, event.type, outcome.outcome)
        return JSONResponse({"received": True, "event_id": event.id, "outcome": outcome.outcome})

    return [Route(PATH, stripe_webhook, methods=["POST"], name="billing_stripe_webhook")]


routes: list[Route] = make_routes()
