"""The AI proxy ASGI app (Starlette): keys, generate (JSON/SSE), detect, health.

Errors are JSON {"error": {"status", "message"}}; nothing sensitive (keys,
tokens, prompts) is ever logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import anyio
import httpx
import psycopg
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from workers.ai import store
from workers.ai.auth import AuthError, Caller, JWKSCache, Verifier
from workers.ai.chat import append_chat_message, check_chat_element
from workers.ai.detect import detect_images
from workers.ai.http_client import ProviderClient, ProviderTransportError, provider_client, side_client
from workers.ai.keys import MasterKeys
from workers.ai.protocols import anthropic, backline, gemini, openai
from workers.ai.protocols.common import (
    CHAT_HEADER,
    FALLBACK_HEADER,
    FALLBACK_KEY_HEADER,
    KEY_HEADER,
    Call,
    HTTPError,
    StreamRenderer,
    answered_model,
    backline_headers,
)
from workers.ai.providers import PROVIDER_NAMES, model_error
from workers.ai.providers.base import ProviderError
from workers.ai.service import AIService, CallResult, CallSpec, StreamHandle, Target, elapsed_ms
from workers.ai.settling_stream import SettlingStream
from workers.ai.store import StoreError
from workers.db.lifo_pool import LifoAsyncConnectionPool
from workers.errors import BacklineError
from workers.jobs.logs import JobLog, Outage, configure_process_logging
from workers.platform.factory import transport_for
from workers.platform.signed_downloads import signed_download_routes
from workers.settings import Settings

log = logging.getLogger("backline.ai")
MAX_MESSAGES = 200
# What browsers may send: Supabase's headers, the SDKs' own (openai/anthropic: x-stainless-*,
# anthropic-*, x-api-key; google-genai: x-goog-*), and Backline's extension headers.
CORS_HEADERS = (
    "authorization", "content-type", "apikey", "x-client-info",
    "x-api-key", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access",
    "x-goog-api-key", "x-goog-api-client", "openai-organization", "openai-project",
    "x-stainless-arch", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
    "x-stainless-retry-count", "x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-timeout",
    "x-stainless-helper-method", "x-stainless-async", "x-stainless-raw-response", "x-stainless-helper",
    KEY_HEADER, CHAT_HEADER, FALLBACK_HEADER, FALLBACK_KEY_HEADER,
)  # fmt: skip
BACKLINE_HEADERS = (
    "x-backline-usage-id",
    "x-backline-provider",
    "x-backline-model",
    "x-backline-fallback-used",
)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, param: str | None = None
) -> JSONResponse:
    """Backline's own error shape (/v1/generate, keys, detect)."""
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


class ErrorShape(Protocol):
    """A route family's error JSON: (status, message, headers, param) -> response."""

    def __call__(
        self, status: int, message: str, headers: dict[str, str] | None = None, param: str | None = None
    ) -> Response: ...


def _anthropic_token(request: Request) -> str | None:
    """Anthropic SDKs send the key as x-api-key (api_key) or a bearer token (auth_token)."""
    key = request.headers.get("x-api-key")
    return f"Bearer {key}" if key else None


def _gemini_token(request: Request) -> str | None:
    """Gemini SDKs send the key as x-goog-api-key; REST examples use ?key=."""
    key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
    return f"Bearer {key}" if key else None


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"request body too large (max {limit} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"request body too large (max {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    try:
        data = json.loads(await read_body(request, limit) or b"null")
    except ValueError:
        raise HTTPError(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "body must be a JSON object")
    return data


def _str(data: dict[str, Any], name: str, *, required: bool = True, max_len: int = 200) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise HTTPError(400, f"{name} must be a non-empty string of at most {max_len} characters")
    return value


def parse_messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_MESSAGES:
        raise HTTPError(400, f"messages must be a list of 1-{MAX_MESSAGES} messages")
    out = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise HTTPError(400, "each message needs role system|user|assistant and content")
        content = m.get("content")
        if isinstance(content, list):
            for p in content:
                if not isinstance(p, dict) or p.get("type") not in ("text", "image"):
                    raise HTTPError(
                        400, "content parts are {type: text, text} or {type: image, mime_type, data}"
                    )
        elif not isinstance(content, str):
            raise HTTPError(400, "message content must be a string or a list of parts")
        out.append({"role": m["role"], "content": content})
    return out


def parse_target(data: dict[str, Any], prefix: str = "") -> Target:
    provider = _str(data, "provider")
    if provider not in PROVIDER_NAMES:
        raise HTTPError(400, f"{prefix}provider must be one of {', '.join(PROVIDER_NAMES)}")
    model = data.get("model")
    error = model_error(provider, model)
    if error:
        raise HTTPError(400, prefix + error)
    key_id = _str(data, "key_id", required=False, max_len=36)
    assert provider is not None and isinstance(model, str)
    return Target(provider, model, key_id)


class ProxyApp:
    """Holds the process-wide resources (pool, HTTP client, verifier) and the handlers."""

    def __init__(self, settings: Settings, database_url: str, outage: Outage | None = None) -> None:
        self.settings = settings
        self.database_url = database_url
        self.outage = outage  # --log-format json: the pools report outages to it
        self.pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self.apool: LifoAsyncConnectionPool | None = None
        self.client: httpx.AsyncClient | None = None  # JWKS and storage reads (not the hot path)
        self.provider_client: ProviderClient | None = None
        self.service: AIService | None = None
        self.verifier: Verifier | None = None
        self.master = (
            MasterKeys.parse(settings.ai_master_keys, settings.ai_master_key_id)
            if settings.ai_master_keys
            else None
        )

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        assert self.pool is not None
        return self.pool.connection()

    def aconnection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """The hot path's connections (admission, settlement): async, no thread hop."""
        assert self.apool is not None
        return self.apool.connection()

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        # No server-side prepared statements (psycopg prepares a query from its sixth run on a
        # connection): a transaction pooler (Supavisor on port 6543, PgBouncer in transaction
        # mode) cannot keep a statement prepared on one backend for the next transaction. The
        # hot path binds its values client-side anyway.
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": "backline-ai",
            "prepare_threshold": None,
        }
        sync_extra: dict[str, Any] = {}
        async_extra: dict[str, Any] = {}
        if self.outage is not None:
            # The pools log each failed reconnect (the Outage's log filter turns them into one
            # db.unavailable); a new connection proves the database is back: db.available.
            outage = self.outage

            def connected(conn: psycopg.Connection[Any]) -> None:
                outage.ok()

            async def aconnected(conn: psycopg.AsyncConnection[Any]) -> None:
                outage.ok()

            sync_extra["configure"], async_extra["configure"] = connected, aconnected
        # Sync pool: keys, chat, detect helpers (worker threads); small, opened on demand.
        self.pool = ConnectionPool(
            self.database_url,
            min_size=1,
            max_size=max(2, s.ai_pool_max // 2),
            kwargs=kwargs,
            open=False,
            **sync_extra,
        )
        # Most recently returned connection first: the hot path stays on warm backends.
        self.apool = LifoAsyncConnectionPool(
            self.database_url,
            min_size=s.ai_pool_min,
            max_size=s.ai_pool_max,
            kwargs=kwargs,
            open=False,
            **async_extra,
        )
        await anyio.to_thread.run_sync(lambda: self.pool.open(wait=True, timeout=10) if self.pool else None)
        await self.apool.open(wait=True, timeout=10)
        self.client = side_client(s.ai_provider_timeout_seconds)
        self.provider_client = provider_client(s.ai_provider_timeout_seconds)
        jwks_url = s.ai_jwks_url or (
            s.supabase_url.rstrip("/") + "/auth/v1/.well-known/jwks.json" if s.supabase_url else None
        )
        self.verifier = Verifier(
            secret=s.jwt_secret,
            audience=s.ai_jwt_audience,
            allow_anonymous=s.ai_allow_anonymous,
            jwks=JWKSCache(jwks_url, s.ai_jwks_ttl_seconds, self.client),
            cache_size=s.ai_jwt_cache_size,
        )
        self.service = AIService(s, self.connection, self.aconnection, self.provider_client, self.master)
        try:
            yield
        finally:
            await self.provider_client.aclose()
            await self.client.aclose()
            await self.apool.close()
            await anyio.to_thread.run_sync(self.pool.close)

    async def caller(self, request: Request, authorization: str | None = None) -> Caller:
        """The verified caller; `authorization`: the "Bearer <token>" a protocol sends its key
        in (x-api-key, x-goog-api-key), else the Authorization header."""
        assert self.verifier is not None
        try:
            return await self.verifier.verify(authorization or request.headers.get("authorization"))
        except AuthError as exc:
            raise HTTPError(401, str(exc), {"www-authenticate": "Bearer"}) from None

    @property
    def svc(self) -> AIService:
        assert self.service is not None
        return self.service

    # -- handlers --------------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        try:
            await self.svc.db(lambda conn: conn.execute("select 1").fetchone())
        except psycopg.Error:
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        return JSONResponse({"ok": True})

    async def keys_create(self, request: Request) -> Response:
        caller = await self.caller(request)
        data = await read_json(request, 16384)
        provider = _str(data, "provider")
        if provider not in PROVIDER_NAMES:
            raise HTTPError(400, f"provider must be one of {', '.join(PROVIDER_NAMES)}")
        secret = _str(data, "key", max_len=4096)
        label = _str(data, "label", required=False, max_len=100)
        hours = data.get("expires_in_hours")
        if hours is not None and (
            not isinstance(hours, (int, float)) or isinstance(hours, bool) or not 0 < hours <= 24 * 366
        ):
            raise HTTPError(400, "expires_in_hours must be a number between 0 and 8784")
        keep = data.get("keep", False)
        if not isinstance(keep, bool):
            raise HTTPError(400, "keep must be true or false")
        if keep and hours is not None:
            raise HTTPError(400, "give either keep or expires_in_hours, not both")
        assert provider and secret
        row = await self.svc.db(
            store.store_key,
            caller,
            self.svc.need_master(),
            provider=provider,
            secret=secret,
            label=label,
            expires_in_hours=float(hours) if hours is not None else None,
            keep=keep,
        )
        return JSONResponse(_jsonable(row), status_code=201)

    async def keys_list(self, request: Request) -> Response:
        caller = await self.caller(request)
        rows = await self.svc.db(store.list_keys, caller)
        return JSONResponse({"keys": [_jsonable(r) for r in rows]})

    async def keys_delete(self, request: Request) -> Response:
        caller = await self.caller(request)
        key_id = request.path_params["key_id"]
        if not await self.svc.db(store.delete_key, caller, key_id):
            raise HTTPError(404, "no such key")
        return Response(status_code=204)

    async def generate(self, request: Request) -> Response:
        caller = await self.caller(request)
        data = await read_json(request, self.settings.ai_max_body_bytes)
        target = parse_target(data)
        fallback = (
            parse_target(data["fallback"], "fallback.") if isinstance(data.get("fallback"), dict) else None
        )
        max_tokens = data.get("max_tokens", self.settings.ai_default_max_tokens)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= 32000:
            raise HTTPError(400, "max_tokens must be an integer between 1 and 32000")
        temperature = data.get("temperature")
        if temperature is not None and not isinstance(temperature, (int, float)):
            raise HTTPError(400, "temperature must be a number")
        element = _str(data, "chat_element_id", required=False, max_len=36)
        spec = CallSpec(
            target,
            parse_messages(data.get("messages")),
            max_tokens,
            float(temperature) if temperature is not None else None,
            fallback,
        )
        call = Call(spec, data.get("stream") is True, target.model, element)
        return await self.run_call(
            request,
            caller,
            call,
            lambda result, model: backline.answer(result),
            lambda h, model: backline.EventStream(h),
        )

    async def run_call(
        self,
        request: Request,
        caller: Caller,
        call: Call,
        answer: Callable[[CallResult, str], dict[str, Any]],
        renderer: Callable[[StreamHandle, str], StreamRenderer],
        media_type: str = "text/event-stream",
    ) -> Response:
        """The one call path of every generating route (/v1/generate and the SDK protocols):
        chat element check, admission, provider call with retry and fallback, settlement (after
        the response, or when the stream ends or the client leaves), room chat append. The
        protocol only supplies the JSON answer and the stream renderer (given the model name
        the answer reports)."""
        element = call.element
        if element:  # refuse before spending anything on the provider
            await self.svc.db(check_chat_element, caller, element)
        if call.stream:
            handle = await self.svc.open_stream(caller, call.spec)
            if await request.is_disconnected():  # left while we waited for the first token
                await self._settle_stream(caller, handle, "interrupted", "client disconnected")
                return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
            target = handle.target
            model = answered_model(call, target.provider, target.model, handle.fallback_used)
            headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
            headers.update(
                backline_headers(handle.usage_id, target.provider, target.model, handle.fallback_used)
            )
            return SettlingStream(
                self._relay(caller, handle, element, renderer(handle, model)),
                functools.partial(self._settle_stream, caller, handle, "interrupted", "client disconnected"),
                media_type=media_type,
                headers=headers,
            )
        # Settled after the response is sent; its cost is computed from the admission prices
        # exactly as the settlement records it (see ledger.Prices).
        result = await self.svc.complete(caller, call.spec, defer_settle=True)
        try:
            if element:
                await self.svc.db(
                    append_chat_message,
                    caller,
                    element,
                    result.text,
                    model=f"{result.provider}/{result.model}",
                    prompt_tokens=result.input_tokens,
                    completion_tokens=result.output_tokens,
                )
            model = answered_model(call, result.provider, result.model, result.fallback_used)
            return JSONResponse(
                answer(result, model),
                headers=backline_headers(
                    result.usage_id, result.provider, result.model, result.fallback_used
                ),
                background=BackgroundTask(_settle_later, result) if result.settle else None,
            )
        except BaseException:
            if result.settle is not None:
                with anyio.CancelScope(shield=True):
                    await result.settle()
            raise

    async def _settle_stream(
        self, caller: Caller, h: StreamHandle, status: str, error: str | None
    ) -> Decimal | None:
        """Settle a stream exactly once: from the SSE generator when it ends, or from the response
        when the client went away before the generator ran (SettlingStream)."""
        if h.settled:
            return None
        h.settled = True
        with anyio.CancelScope(shield=True):
            await h.rest.aclose()  # type: ignore[attr-defined]
            cost = await self.svc.settle(
                caller, h.admission, h.target, h.tally, elapsed_ms(h.started), status, error
            )
        return cost

    async def _relay(
        self, caller: Caller, h: StreamHandle, element: str | None, render: StreamRenderer
    ) -> AsyncIterator[bytes]:
        """The provider stream in the route's wire format; settles (tokens counted from the
        stream) and appends the room chat message when it ends, however it ends."""
        status = "interrupted"
        error: str | None = "client disconnected"
        append_error: str | None = None
        cost = None
        try:
            # The head and the first token leave in one write: one send, one chunk to parse.
            if first := render.start() + (render.delta(h.first) if h.first else b""):
                yield first
            async for piece in h.rest:
                if out := render.delta(piece):
                    yield out
            status, error = "ok", None
        except ProviderError as exc:
            status, error = "error", f"{exc.provider} {exc.status}: {exc.message}"[:500]
        except ProviderTransportError:
            status, error = "error", "provider connection lost"
        finally:
            with anyio.CancelScope(shield=True):
                cost = await self._settle_stream(caller, h, status, error)
                if status == "ok" and element:
                    try:
                        await self.svc.db(
                            append_chat_message,
                            caller,
                            element,
                            h.tally.text,
                            model=f"{h.target.provider}/{h.target.model}",
                            prompt_tokens=h.tally.input_tokens,
                            completion_tokens=h.tally.final_output_tokens(),
                        )
                    except StoreError as exc:
                        append_error = exc.message
        if status == "error":
            yield render.error(502, f"provider error: {error}")
        if append_error:
            yield render.error(400, append_error)
        if status == "ok":
            yield render.end(h.tally, cost)

    # -- SDK-compatible routes (workers/ai/protocols) ---------------------------------------
    async def openai_chat(self, request: Request) -> Response:
        caller = await self.caller(request)
        data = await read_json(request, self.settings.ai_max_body_bytes)
        s = self.settings
        call = openai.parse_request(data, request.headers, s.ai_models, s.ai_default_max_tokens)
        return await self.run_call(
            request,
            caller,
            call,
            functools.partial(openai.completion, call),
            lambda h, model: openai.ChunkStream(call, h.usage_id, model),
        )

    async def anthropic_messages(self, request: Request) -> Response:
        caller = await self.caller(request, _anthropic_token(request))
        data = await read_json(request, self.settings.ai_max_body_bytes)
        call = anthropic.parse_request(data, request.headers, self.settings.ai_models)
        return await self.run_call(
            request,
            caller,
            call,
            functools.partial(anthropic.message, call),
            lambda h, model: anthropic.EventStream(h.usage_id, model, h.tally),
        )

    async def gemini_generate(self, request: Request) -> Response:
        caller = await self.caller(request, _gemini_token(request))
        model, _, method = request.path_params["target"].rpartition(":")
        if method not in ("generateContent", "streamGenerateContent") or not model:
            raise HTTPError(404, "models/{model}:generateContent or :streamGenerateContent only")
        data = await read_json(request, self.settings.ai_max_body_bytes)
        s = self.settings
        stream = method == "streamGenerateContent"
        call = gemini.parse_request(
            model, data, request.headers, s.ai_models, s.ai_default_max_tokens, stream
        )
        sse = request.query_params.get("alt") == "sse"
        return await self.run_call(
            request,
            caller,
            call,
            functools.partial(gemini.response, call),
            lambda h, name: gemini.ChunkStream(h.usage_id, name, h.tally, sse),
            media_type="text/event-stream" if sse else "application/json",
        )

    async def models(self, request: Request) -> Response:
        """GET /v1/models (OpenAI's shape; Anthropic's when anthropic-version is sent) and
        GET /v1beta/models (Gemini's): the models this caller can pay for."""
        gemini_route = request.url.path.startswith("/v1beta") or "x-goog-api-key" in request.headers
        is_anthropic = "anthropic-version" in request.headers
        token = (
            _gemini_token(request) if gemini_route else _anthropic_token(request) if is_anthropic else None
        )
        caller = await self.caller(request, token)
        priced, stored = await self.svc.db(store.model_catalog, caller)
        payable = (
            set(stored) | {p for p, k in self.settings.ai_operator_keys.items() if k} | {"openai_compat"}
        )
        ids: list[tuple[str, str]] = []
        for alias, target in sorted(self.settings.ai_models.items()):
            provider = target.partition("/")[0]
            if provider in payable:
                ids.append((alias, provider))
        ids += [(f"{p}/{m}", p) for p, m in priced if p in payable]
        if gemini_route:
            return JSONResponse(gemini.model_list(ids))
        return JSONResponse(anthropic.model_list(ids) if is_anthropic else openai.model_list(ids))

    async def detect(self, request: Request) -> Response:
        caller = await self.caller(request)
        started = time.perf_counter()
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("image/"):
            body = await read_body(request, self.settings.ai_max_upload_bytes)
            data: dict[str, Any] = dict(request.query_params)
            data["images"] = [{"mime_type": ctype.split(";")[0], "data": base64.b64encode(body).decode()}]
        else:
            data = await read_json(request, self.settings.ai_max_upload_bytes)
        data.setdefault("provider", "gemini")
        data.setdefault("model", "gemini-2.0-flash")
        target = parse_target(data)
        prompt = _str(data, "prompt", required=False, max_len=4000) or "Detect the items in this image."
        images = data.get("images")
        if not isinstance(images, list) or not 1 <= len(images) <= 10:
            raise HTTPError(400, "images must be a list of 1-10 images ({data, mime_type} or {bucket, path})")
        resolved = []
        for img in images:
            if isinstance(img, dict) and isinstance(img.get("data"), str):
                try:
                    base64.b64decode(img["data"], validate=True)
                except (binascii.Error, ValueError):
                    raise HTTPError(400, "image data must be base64") from None
                mime = img.get("mime_type") or "image/jpeg"
                if not isinstance(mime, str) or not mime.startswith("image/"):
                    raise HTTPError(400, "mime_type must be image/*")
                resolved.append({"mime_type": mime, "data": img["data"]})
            elif (
                isinstance(img, dict)
                and isinstance(img.get("bucket"), str)
                and isinstance(img.get("path"), str)
            ):
                resolved.append(await self._storage_image(request, img["bucket"], img["path"]))
            else:
                raise HTTPError(400, "each image is {data, mime_type} or {bucket, path}")
        results = await detect_images(self.svc, caller, target, prompt, resolved)
        return JSONResponse({"results": results, "processing_ms": elapsed_ms(started)})

    async def _storage_image(self, request: Request, bucket: str, path: str) -> dict[str, Any]:
        """Fetch an object from Supabase Storage with the user's own token (storage RLS decides)."""
        if not self.settings.supabase_url:
            raise HTTPError(501, "storage paths need SUPABASE_URL; upload the image instead")
        assert self.client is not None
        base = self.settings.supabase_url.rstrip("/")
        url = f"{base}/storage/v1/object/authenticated/{quote(bucket, safe='')}/{quote(path, safe='/')}"
        headers = {"authorization": request.headers.get("authorization", "")}
        resp = await self.client.get(url, headers=headers)
        if resp.status_code != 200:
            raise HTTPError(404, f"cannot read storage object {bucket}/{path}")
        if len(resp.content) > self.settings.ai_max_upload_bytes:
            raise HTTPError(413, "image too large")
        mime = resp.headers.get("content-type", "image/jpeg").split(";")[0]
        return {"mime_type": mime, "data": base64.b64encode(resp.content).decode()}


async def _settle_later(result: CallResult) -> None:
    assert result.settle is not None
    try:
        await result.settle()
    except (StoreError, psycopg.Error) as exc:  # the row stays pending; cleanup releases it
        log.warning("ai settlement of %s failed after the response: %s", result.usage_id, exc)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, (int, float, str, bool)) else v)
        for k, v in row.items()
    }


def provider_failure(exc: ProviderError) -> tuple[int, str, dict[str, str] | None]:
    """What the caller is told about a provider's refusal: (status, message, headers)."""
    if exc.bad_key:
        return 401, f"{exc.key_ref} was rejected by {exc.provider}: {exc.message}", None
    if exc.status == 429:
        return 429, f"{exc.provider} is rate limiting this key: {exc.message}", {"retry-after": "30"}
    if exc.status is not None and 400 <= exc.status < 500:
        return 400, f"{exc.provider} refused the request: {exc.message}", None
    return 502, f"{exc.provider} failed: {exc.message}", None


def _wrap(handler: Any, shape: ErrorShape = error_response) -> Any:
    """The route's errors in its family's JSON shape (`shape`), same statuses everywhere:
    429 always carries Retry-After, an exhausted budget is 402."""

    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except HTTPError as exc:
            return shape(exc.status, exc.message, exc.headers, exc.param)
        except StoreError as exc:
            headers = {"retry-after": str(exc.retry_after)} if exc.retry_after is not None else None
            return shape(exc.status, exc.message, headers)
        except ProviderError as exc:
            return shape(*provider_failure(exc))
        except BacklineError as exc:
            return shape(500, str(exc))

    return endpoint


def create_app(settings: Settings, database_url: str, outage: Outage | None = None) -> Starlette:
    """The edge service's app. `outage` (from `configure_json_logging`): report database
    outages of this process's pools as two events."""
    proxy = ProxyApp(settings, database_url, outage)
    routes: list[BaseRoute] = [
        Route("/healthz", _wrap(proxy.healthz), methods=["GET"]),
        Route("/v1/keys", _wrap(proxy.keys_create), methods=["POST"]),
        Route("/v1/keys", _wrap(proxy.keys_list), methods=["GET"]),
        Route("/v1/keys/{key_id:uuid}", _wrap(proxy.keys_delete), methods=["DELETE"]),
        Route("/v1/generate", _wrap(proxy.generate), methods=["POST"]),
        Route("/v1/detect", _wrap(proxy.detect), methods=["POST"]),
        # The providers' own protocols (docs/ai.md "SDKs"): OpenAI, Anthropic, Gemini.
        Route("/v1/chat/completions", _wrap(proxy.openai_chat, openai.error_response), methods=["POST"]),
        Route("/v1/messages", _wrap(proxy.anthropic_messages, anthropic.error_response), methods=["POST"]),
        Route("/v1/models", _wrap(proxy.models, openai.error_response), methods=["GET"]),
        Route("/v1beta/models", _wrap(proxy.models, gemini.error_response), methods=["GET"]),
        # google-genai calls /v1 by default, REST examples /v1beta: both are the Gemini API.
        *[
            Route(
                f"/{version}/models/{{target:path}}",
                _wrap(proxy.gemini_generate, gemini.error_response),
                methods=["POST"],
            )
            for version in ("v1beta", "v1")
        ],
    ]
    routes += billing_routes(settings, database_url)
    if transport_for(settings) == "local":
        routes += signed_download_routes(settings)
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.ai_cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=list(CORS_HEADERS),
            expose_headers=["retry-after", *BACKLINE_HEADERS],
            max_age=600,
        )
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=proxy.lifespan)
    app.state.proxy = proxy
    return app


def configure_logging() -> None:
    """The proxy's process logging: one INFO line per AI call from `backline.ai` (user id,
    provider, model, status, tokens, latency; never keys or prompts). Run in every process
    that serves requests: `ai serve`, and each `--workers N` worker (spawned processes do not
    inherit the parent's logging setup)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # request lines would name storage paths


def configure_json_logging() -> Outage:
    """`ai serve --log-format json`: every line this process writes on stderr is one JSON
    object (uvicorn's own lines - run it with `log_config=None` so they reach the root logger -,
    the connection pools, the per-call line, warnings, uncaught exceptions), each with this
    process's id; a database outage is two events (db.unavailable, db.available), not a line
    per reconnect attempt. Returns the process's Outage for `create_app`."""
    log = JobLog("json", context={"service": "ai", "pid": os.getpid()})
    outage = Outage(log)
    configure_process_logging(log, outage)
    return outage


def app_from_env() -> Starlette:
    """uvicorn factory for `backline ai serve --workers N`: each worker process builds its
    own app (pools, HTTP client) from the environment; the database is DATABASE_URL."""
    configure_logging()
    return _app_from_env(None)


def json_app_from_env() -> Starlette:
    """`app_from_env` with `--log-format json`: logging is configured before anything else
    so that even a failing start is JSON (the factory's name carries the format to the
    spawned worker processes)."""
    return _app_from_env(configure_json_logging())


def _app_from_env(outage: Outage | None) -> Starlette:
    from workers.settings import get_settings

    settings = get_settings()
    if not settings.database_url:
        raise BacklineError("DATABASE_URL is not set")
    return create_app(settings, settings.database_url, outage)


def billing_routes(settings: Settings, database_url: str) -> list[BaseRoute]:
    """The Stripe webhook (POST /v1/billing/stripe, workers/ai/billing.py) on the same service,
    configured from the same settings and database as the proxy."""
    from workers.ai import billing

    def config() -> billing.BillingConfig:
        return billing.BillingConfig(
            database_url=database_url,
            webhook_secrets=tuple(settings.stripe_webhook_secrets),
            tolerance_seconds=settings.stripe_webhook_tolerance_seconds,
            default_plan=settings.billing_default_plan,
        )

    return list(billing.make_routes(config))
