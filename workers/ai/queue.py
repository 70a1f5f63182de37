"""Queue mode: run one public.ai_requests row as a job.

Registered by the job runtime as kind 'ai.request' with payload
{"request_id": "<uuid>"}. The handler claims the row (queued/running ->
running), acts as the row's owner for everything else (key decryption,
budget, usage, the chat append), and writes the result or error back to the
row; the frontend sees it through Realtime (the table is in the
supabase_realtime publication). The rate-limit slot was already taken by the
insert trigger, so admission here only reserves the budget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import httpx
import psycopg

from workers.ai.auth import Caller
from workers.ai.chat import append_chat_message
from workers.ai.keys import MasterKeys
from workers.ai.providers.base import ProviderError
from workers.ai.service import AIService, CallResult, CallSpec, Target
from workers.ai.store import StoreError
from workers.db.connect import connect
from workers.settings import Settings, get_settings

JOB_KIND = "ai.request"

CLAIM_SQL = """
update public.ai_requests set status = 'running'
 where id = %s and status in ('queued', 'running')
returning user_id, provider, model, key_id, messages, max_tokens, chat_element_id
"""


class JobContextLike(Protocol):
    """The fields of workers.jobs JobContext this handler uses."""

    job_id: Any
    attempt: int
    database_url: str

    @property
    def settings(self) -> Any: ...


class RetryableAIError(Exception):
    """The provider is down: let the job runtime retry with backoff."""


def run_ai_request(ctx: JobContextLike, payload: dict[str, Any]) -> dict[str, Any] | None:
    request_id = str(payload["request_id"])
    settings: Settings = ctx.settings if isinstance(ctx.settings, Settings) else get_settings()
    with connect(ctx.database_url, autocommit=True) as conn:
        row: Any = conn.execute(CLAIM_SQL, (request_id,)).fetchone()
    if row is None:
        return {"request_id": request_id, "skipped": "not queued (done, failed or deleted)"}
    user_id, provider, model, key_id, messages, max_tokens, element = row
    caller = Caller(
        str(user_id), "authenticated", {"sub": str(user_id), "role": "authenticated", "aud": "authenticated"}
    )
    spec = CallSpec(
        Target(provider, model, str(key_id) if key_id else None),
        list(messages),
        int(max_tokens or settings.ai_default_max_tokens),
        endpoint="queue",
        take_rate_limit=False,
    )
    try:
        result = asyncio.run(_call(settings, ctx.database_url, caller, spec))
    except ProviderError as exc:
        if exc.retryable:
            _set(ctx.database_url, request_id, "queued", None, f"{exc.provider} unavailable; will retry")
            raise RetryableAIError(f"{exc.provider} unavailable") from None
        return _fail(ctx.database_url, request_id, f"{exc.provider} refused the request: {exc.message}")
    except StoreError as exc:
        return _fail(ctx.database_url, request_id, exc.message)
    chat_error = None
    if element:
        try:
            with _conn(ctx.database_url) as conn:
                append_chat_message(
                    conn,
                    caller,
                    str(element),
                    "assistant",
                    result.text,
                    {"provider": result.provider, "model": result.model, "request_id": request_id},
                )
        except StoreError as exc:
            chat_error = exc.message
    out = {
        "text": result.text,
        "provider": result.provider,
        "model": result.model,
        "usage": {
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost_usd": float(result.cost_usd),
        },
        "fallback_used": result.fallback_used,
    }
    _set(ctx.database_url, request_id, "done", out, chat_error, usage_id=result.usage_id)
    return {"request_id": request_id, "status": "done", "usage_id": result.usage_id}


@contextmanager
def _conn(url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(url, autocommit=True) as conn:
        yield conn


async def _call(settings: Settings, url: str, caller: Caller, spec: CallSpec) -> CallResult:
    master = (
        MasterKeys.parse(settings.ai_master_keys, settings.ai_master_key_id)
        if settings.ai_master_keys
        else None
    )
    timeout = httpx.Timeout(settings.ai_provider_timeout_seconds, connect=5.0)
    async with httpx.AsyncClient(timeout=timeout) as client:
        service = AIService(settings, lambda: _conn(url), client, master)
        return await service.complete(caller, spec)


def _fail(url: str, request_id: str, message: str) -> dict[str, Any]:
    _set(url, request_id, "failed", None, message)
    return {"request_id": request_id, "status": "failed", "error": message}


def _set(
    url: str,
    request_id: str,
    status: str,
    result: dict[str, Any] | None,
    error: str | None,
    usage_id: str | None = None,
) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(
            "update public.ai_requests set status = %s, result = %s, error = left(%s, 500),"
            " usage_id = coalesce(%s, usage_id) where id = %s",
            (status, json.dumps(result) if result is not None else None, error, usage_id, request_id),
        )
