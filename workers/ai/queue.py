"""Queue mode: run one public.ai_requests row as a job.

Registered in workers/jobs/registry.py as kind 'ai_request'; the job is
enqueued by a trigger on insert (payload {"request_id": "<uuid>"}). The
handler claims the row (queued/running -> running), acts as the row's
owner for everything else (key decryption, budget, usage, the chat
append), and writes the result or error back to the
row; the frontend sees it through Realtime (the table is in the
supabase_realtime publication). The rate-limit slot was already taken by the
insert trigger, so admission here only reserves the budget (proven with the ticket
private.ai_request_claim issues for each attempt).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg

from workers.ai.auth import Caller
from workers.ai.chat import append_chat_message, check_chat_element
from workers.ai.http_client import provider_client
from workers.ai.keys import MasterKeys
from workers.ai.providers.base import ProviderError, model_error
from workers.ai.service import AIService, CallResult, CallSpec, Target
from workers.ai.store import StoreError
from workers.db.connect import connect
from workers.jobs.context import JobContext
from workers.jobs.errors import PermanentJobError
from workers.settings import Settings, get_settings

JOB_KIND = "ai_request"

# Marks the row running and issues the one-time ticket this attempt's admission needs
# (the insert already took the rate-limit slot; the ticket proves it to private.ai_begin).
CLAIM_SQL = """
select user_id, provider, model, key_id, messages, max_tokens, chat_element_id, ticket
  from private.ai_request_claim(%s)
"""


class RetryableAIError(Exception):
    """The provider is down: the attempt fails and the job runtime retries with backoff."""


def run_ai_request(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    try:
        request_id = str(uuid.UUID(str(payload["request_id"])))
    except (KeyError, ValueError):
        raise PermanentJobError("payload needs request_id (uuid)") from None
    if not ctx.database_url:
        raise PermanentJobError("ai_request jobs need a direct database connection (DATABASE_URL)")
    settings: Settings = ctx.settings if isinstance(ctx.settings, Settings) else get_settings()
    url = ctx.database_url
    with connect(url, autocommit=True) as conn:
        row: Any = conn.execute(CLAIM_SQL, (request_id,)).fetchone()
    if row is None:
        return {"request_id": request_id, "skipped": "not queued (done, failed or deleted)"}
    user_id, provider, model, key_id, messages, max_tokens, element, ticket = row
    bad_model = model_error(provider, model)
    if bad_model:  # the row came from the user (PostgREST insert): same rule as the HTTP API
        return _fail(url, request_id, bad_model)
    caller = Caller(
        str(user_id), "authenticated", {"sub": str(user_id), "role": "authenticated", "aud": "authenticated"}
    )
    spec = CallSpec(
        Target(provider, model, str(key_id) if key_id else None),
        list(messages),
        int(max_tokens or settings.ai_default_max_tokens),
        endpoint="queue",
        request=(request_id, str(ticket)),
    )
    if element:  # refuse before spending anything on the provider
        try:
            with _conn(url) as conn:
                check_chat_element(conn, caller, str(element))
        except StoreError as exc:
            return _fail(url, request_id, exc.message)
    try:
        result = asyncio.run(_call(settings, url, caller, spec))
    except ProviderError as exc:
        if exc.retryable and not _last_attempt(url, ctx):
            _set(url, request_id, "queued", None, f"{exc.provider} unavailable; will retry")
            raise RetryableAIError(f"{exc.provider} unavailable") from None
        if exc.retryable:
            return _fail(url, request_id, f"{exc.provider} unavailable: {exc.message}")
        return _fail(url, request_id, f"{exc.provider} refused the request: {exc.message}")
    except StoreError as exc:
        return _fail(url, request_id, exc.message)
    chat_error = None
    if element:
        try:
            with _conn(url) as conn:
                append_chat_message(
                    conn,
                    caller,
                    str(element),
                    result.text,
                    model=f"{result.provider}/{result.model}",
                    prompt_tokens=result.input_tokens,
                    completion_tokens=result.output_tokens,
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
    _set(url, request_id, "done", out, chat_error, usage_id=result.usage_id)
    return {"request_id": request_id, "status": "done", "usage_id": result.usage_id}


@contextmanager
def _conn(url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(url, autocommit=True) as conn:
        yield conn


@asynccontextmanager
async def _aconn(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None) as conn:
        yield conn


async def _call(settings: Settings, url: str, caller: Caller, spec: CallSpec) -> CallResult:
    master = (
        MasterKeys.parse(settings.ai_master_keys, settings.ai_master_key_id)
        if settings.ai_master_keys
        else None
    )
    async with provider_client(settings.ai_provider_timeout_seconds, max_connections=4) as client:
        service = AIService(settings, lambda: _conn(url), lambda: _aconn(url), client, master)
        return await service.complete(caller, spec)


def _last_attempt(url: str, ctx: JobContext) -> bool:
    with connect(url, autocommit=True) as conn:
        row: Any = conn.execute(
            "select max_attempts from public.jobs where id = %s", (ctx.job_id,)
        ).fetchone()
    return row is None or ctx.attempt >= int(row[0])


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
