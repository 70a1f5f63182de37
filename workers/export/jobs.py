"""Job handlers for the data-rights kinds: 'export', 'erasure', 'room_export'.

Each is `handler(ctx, payload) -> result`; raising fails the job (its
message is the job's last_error). The job runtime registers them by kind.
"""

from __future__ import annotations

from typing import Any

from workers.export.context import HandlerContext, NotAllowed, payload_uuid, require_database_url
from workers.export.rights import erase_user, export_to_bucket
from workers.export.rooms import export_room
from workers.platform.factory import make_adapters


def _subject(ctx: HandlerContext, payload: dict[str, Any]) -> Any:
    """The user a job acts for. A user-enqueued job (owner set) acts only for its owner."""
    user_id = payload_uuid(payload, "user_id", ctx.owner_id)
    if ctx.owner_id is not None and user_id != ctx.owner_id:
        raise NotAllowed("a user's job may only act for that user (payload user_id is not the owner)")
    return user_id


def _heartbeat(ctx: HandlerContext) -> Any:
    return lambda _label: ctx.heartbeat()


def run_export(ctx: HandlerContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Kind 'export': payload {"user_id"?} (default: the job owner). Result: path, signed url, counts."""
    user_id = _subject(ctx, payload)
    url = require_database_url(ctx.settings, ctx.database_url)
    adapters = make_adapters(ctx.settings, url)
    try:
        result = export_to_bucket(
            url,
            adapters,
            user_id,
            url_ttl_seconds=ctx.settings.export_url_ttl_seconds,
            job_id=ctx.job_id,
            advance=_heartbeat(ctx),
        )
    finally:
        adapters.close()
    return result.as_dict()


def run_erasure(ctx: HandlerContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Kind 'erasure': payload {"user_id"?}. Result: counts only (the user is gone).

    The job row is detached from its owner before the account goes, so it survives the cascade.
    """
    user_id = _subject(ctx, payload)
    url = require_database_url(ctx.settings, ctx.database_url)
    adapters = make_adapters(ctx.settings, url)
    try:
        result = erase_user(
            url,
            adapters,
            user_id,
            job_id=ctx.job_id,
            reason=str(payload.get("reason") or "requested"),
            advance=_heartbeat(ctx),
        )
    finally:
        adapters.close()
    return result.as_dict()


def run_room_export(ctx: HandlerContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Kind 'room_export': payload {"room_id", "format": "pdf"|"markdown", "user_id"?} (a member)."""
    user_id = _subject(ctx, payload)
    room_id = payload_uuid(payload, "room_id")
    fmt = str(payload.get("format") or "pdf")
    url = require_database_url(ctx.settings, ctx.database_url)
    adapters = make_adapters(ctx.settings, url)
    try:
        return export_room(
            url,
            adapters.storage,
            room_id,
            user_id,
            fmt,
            url_ttl_seconds=ctx.settings.export_url_ttl_seconds,
        )
    finally:
        adapters.close()
