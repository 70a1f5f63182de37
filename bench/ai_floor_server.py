"""The least a chat completion with Backline's ledger costs: a bare ASGI app for bench/ai_proxy.py --floor.

It does the database work of Backline's `/v1/chat/completions` with Backline's own
functions (`workers.ai.ledger`): the JWT check, the stored key + rate-limit slot +
budget reservation + usage row in one durable admission, its commit during the
provider call, the provider call with the user's key, and the settlement after the
answer (asynchronous commit). It leaves out everything else: no Starlette, no
middleware, no request validation, no protocol translation (the fake's answer is
passed through), no fallback, no settlement grouping, no error handling. So its
overhead is what the admission and settlement cost on this machine; Backline's
overhead minus this one is what its web framework and features cost.

Configured by the proxy's environment variables (DATABASE_URL, SUPABASE_JWT_SECRET,
BACKLINE_AI_MASTER_KEYS, BACKLINE_AI_OPENAI_BASE_URL). A measuring tool only: never
serve users with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt

from workers.ai import ledger
from workers.ai.auth import Caller
from workers.ai.keys import MasterKeys
from workers.ai.service import estimate_input_tokens
from workers.db.lifo_pool import LifoAsyncConnectionPool

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SECRET = os.environ["SUPABASE_JWT_SECRET"]
MASTER = MasterKeys.parse(os.environ["BACKLINE_AI_MASTER_KEYS"])
PROVIDER_URL = os.environ["BACKLINE_AI_OPENAI_BASE_URL"] + "/chat/completions"
POOL = LifoAsyncConnectionPool(  # as Backline's: the most recently used, warm backend first
    os.environ["DATABASE_URL"],
    min_size=8,
    max_size=16,
    kwargs={"autocommit": True, "prepare_threshold": None},
    open=False,
)
HTTP: list[aiohttp.ClientSession] = []  # opened at startup, inside the server's event loop


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["method"] == "GET":  # up?
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = dict(scope["headers"])
    claims = jwt.decode(headers[b"authorization"][7:], SECRET, algorithms=["HS256"], audience="authenticated")
    caller = Caller(claims["sub"], claims["role"], claims)
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    request = json.loads(body)
    est_input, images = estimate_input_tokens(request["messages"])
    started = time.perf_counter()
    async with POOL.connection() as conn:
        admission = await ledger.begin(
            conn,
            caller,
            provider="openai",
            model=request["model"],
            est_input=est_input,
            est_output=request["max_tokens"],
            images=images,
            endpoint="generate",
            streamed=False,
            key=(MASTER, headers[b"x-backline-key-id"].decode()),
        )
        committed = asyncio.ensure_future(ledger.commit(conn))
        upstream = {"authorization": f"Bearer {admission.api_key}", "content-type": "application/json"}
        async with HTTP[0].post(PROVIDER_URL, data=body, headers=upstream) as response:
            answer = await response.read()
        await committed  # nothing leaves before the admission is on disk
    latency_ms = int((time.perf_counter() - started) * 1000)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))],
        }
    )
    await send({"type": "http.response.body", "body": answer})
    usage = json.loads(answer)["usage"]
    settlement = ledger.Settlement(
        admission.usage_id,
        admission.ticket,
        "ok",
        usage["prompt_tokens"],
        usage["completion_tokens"],
        images,
        latency_ms,
        None,
    )
    async with POOL.connection() as conn:
        await ledger.finish_many(conn, [(caller, settlement)])  # as Backline writes a lone one


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await POOL.open(wait=True)
            HTTP.append(aiohttp.ClientSession())
            await send({"type": "lifespan.startup.complete"})
        else:
            await HTTP[0].close()
            await POOL.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
