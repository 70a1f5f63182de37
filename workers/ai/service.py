"""One AI call end to end: key, admission (rate limit + budget), provider with retry
and fallback, settlement. Used by the HTTP app and by the queue handler.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import httpx
import psycopg
from starlette.concurrency import run_in_threadpool

from workers.ai import store
from workers.ai.auth import Caller
from workers.ai.keys import KeyDecryptError, MasterKeys
from workers.ai.providers import make_provider
from workers.ai.providers.base import ChatRequest, Provider, ProviderError, Tally
from workers.ai.store import StoreError
from workers.settings import Settings

log = logging.getLogger("backline.ai")
T = TypeVar("T")
ConnFactory = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
IMAGE_TOKEN_ESTIMATE = 260


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    key_id: str | None = None


@dataclass
class CallSpec:
    target: Target
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float | None = None
    fallback: Target | None = None
    endpoint: str = "generate"
    images: int = 0
    take_rate_limit: bool = True


@dataclass
class CallResult:
    text: str
    provider: str
    model: str
    usage_id: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: int
    fallback_used: bool


@dataclass
class StreamHandle:
    """A provider stream whose first chunk has arrived (errors before it become HTTP errors)."""

    first: str
    rest: AsyncIterator[str]
    tally: Tally
    target: Target
    usage_id: str
    started: float
    fallback_used: bool
    finished: dict[str, Any] = field(default_factory=dict)


def estimate_input_tokens(messages: list[dict[str, Any]]) -> tuple[int, int]:
    chars, images = 0, 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for p in content:
                if p.get("type") == "image":
                    images += 1
                else:
                    chars += len(str(p.get("text", "")))
    return (chars + 3) // 4 + images * IMAGE_TOKEN_ESTIMATE, images


class AIService:
    def __init__(
        self,
        settings: Settings,
        connection: ConnFactory,
        client: httpx.AsyncClient,
        master: MasterKeys | None,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self.client = client
        self.master = master
        self.base_urls = {
            "openai": settings.ai_openai_base_url,
            "openai_compat": settings.ai_openai_compat_base_url,
            "anthropic": settings.ai_anthropic_base_url,
            "gemini": settings.ai_gemini_base_url,
        }
        self.providers: dict[str, Provider] = {n: make_provider(n, u) for n, u in self.base_urls.items()}

    # -- database, in a worker thread --------------------------------------------------------
    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def run() -> T:
            with self.connection() as conn:
                return fn(conn, *args, **kwargs)

        return await run_in_threadpool(run)

    def need_master(self) -> MasterKeys:
        if self.master is None:
            raise StoreError(503, "key storage is not configured on this server (BACKLINE_AI_MASTER_KEYS)")
        return self.master

    def default_fallback(self) -> Target | None:
        spec = self.settings.ai_fallback
        if not spec or ":" not in spec:
            return None
        provider, model = spec.split(":", 1)
        if provider not in self.providers or not self.settings.ai_operator_keys.get(provider):
            return None  # a fallback without a server key could only fail
        return Target(provider, model)

    def operator_key(self, target: Target) -> str:
        operator = self.settings.ai_operator_keys.get(target.provider)
        if operator:
            return operator
        if target.provider == "openai_compat":
            return "none"  # local OpenAI-compatible servers (Ollama, vLLM) usually take no key
        raise StoreError(400, f"no {target.provider} key: pass key_id of a stored key")

    # -- provider calls -----------------------------------------------------------------------
    def _request(self, spec: CallSpec, target: Target, key: str) -> ChatRequest:
        return ChatRequest(target.model, spec.messages, spec.max_tokens, key, spec.temperature)

    async def _admit(
        self, caller: Caller, spec: CallSpec, target: Target, first: bool, streamed: bool
    ) -> tuple[str, str]:
        """(provider API key, usage id): opens the stored key and admits the call in one transaction."""
        est_in, images = estimate_input_tokens(spec.messages)
        key = (self.need_master(), target.key_id) if target.key_id else None
        operator = None if key else self.operator_key(target)
        try:
            admission = await self.db(
                store.begin,
                caller,
                provider=target.provider,
                model=target.model,
                est_input=est_in,
                est_output=spec.max_tokens,
                images=images,
                endpoint=spec.endpoint,
                streamed=streamed,
                take_rate_limit=spec.take_rate_limit and first,
                key=key,
            )
        except KeyDecryptError:
            raise StoreError(500, "your stored key cannot be decrypted; store it again") from None
        api_key = admission.api_key or operator
        assert api_key is not None
        return api_key, admission.usage_id

    async def settle(
        self,
        caller: Caller,
        usage_id: str,
        target: Target,
        tally: Tally,
        started: float,
        status: str,
        error: str | None,
        images: int = 0,
    ) -> Decimal:
        latency = int((time.perf_counter() - started) * 1000)
        cost = await self.db(
            store.finish,
            caller,
            usage_id,
            status=status,
            input_tokens=tally.input_tokens,
            output_tokens=tally.final_output_tokens(),
            images=images,
            latency_ms=latency,
            error=error,
            provider=target.provider,
            model=target.model,
        )
        log.info(
            "ai call user=%s provider=%s model=%s status=%s in=%d out=%d ms=%d",
            caller.user_id,
            target.provider,
            target.model,
            status,
            tally.input_tokens,
            tally.final_output_tokens(),
            latency,
        )
        return cost

    def _targets(self, spec: CallSpec) -> list[Target]:
        fallback = spec.fallback or self.default_fallback()
        return [spec.target] + ([fallback] if fallback and fallback != spec.target else [])

    async def complete(self, caller: Caller, spec: CallSpec) -> CallResult:
        targets = self._targets(spec)
        for i, target in enumerate(targets):
            key, usage_id = await self._admit(caller, spec, target, i == 0, streamed=False)
            tally, started = Tally(), time.perf_counter()
            try:
                request = self._request(spec, target, key)
                provider = self.providers[target.provider]
                text = await self._with_retry(
                    functools.partial(provider.complete, self.client, request, tally), target
                )
            except ProviderError as exc:
                await self.settle(caller, usage_id, target, tally, started, "error", _safe(exc), spec.images)
                if exc.retryable and i + 1 < len(targets):
                    continue
                exc.key_ref = _key_ref(target)
                raise
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.settle(
                        caller, usage_id, target, tally, started, "interrupted", "cancelled", spec.images
                    )
                raise
            cost = await self.settle(caller, usage_id, target, tally, started, "ok", None, spec.images)
            return CallResult(
                text,
                target.provider,
                target.model,
                usage_id,
                tally.input_tokens,
                tally.final_output_tokens(),
                cost,
                int((time.perf_counter() - started) * 1000),
                i > 0,
            )
        raise AssertionError("unreachable")

    async def open_stream(self, caller: Caller, spec: CallSpec) -> StreamHandle:
        targets = self._targets(spec)
        for i, target in enumerate(targets):
            key, usage_id = await self._admit(caller, spec, target, i == 0, streamed=True)
            for attempt in range(2):
                tally, started = Tally(), time.perf_counter()
                gen = self.providers[target.provider].stream(
                    self.client, self._request(spec, target, key), tally
                )
                try:
                    first = await gen.__anext__()
                except StopAsyncIteration:
                    first = ""
                except httpx.TimeoutException:
                    await gen.aclose()  # type: ignore[attr-defined]
                    exc = ProviderError(target.provider, None, f"{target.provider} timed out")
                    await self.settle(caller, usage_id, target, tally, started, "error", _safe(exc))
                    if i + 1 < len(targets):
                        break
                    raise exc from None
                except httpx.TransportError:
                    await gen.aclose()  # type: ignore[attr-defined]
                    if attempt == 0:
                        continue
                    exc = ProviderError(target.provider, None, f"cannot reach {target.provider}")
                    await self.settle(caller, usage_id, target, tally, started, "error", _safe(exc))
                    if i + 1 < len(targets):
                        break
                    raise exc from None
                except ProviderError as exc:
                    await gen.aclose()  # type: ignore[attr-defined]
                    await self.settle(caller, usage_id, target, tally, started, "error", _safe(exc))
                    if exc.retryable and i + 1 < len(targets):
                        break
                    exc.key_ref = _key_ref(target)
                    raise
                return StreamHandle(first, gen, tally, target, usage_id, started, i > 0)
        raise ProviderError(spec.target.provider, None, "all providers failed")

    async def _with_retry(self, call: Callable[[], Any], target: Target) -> str:
        """One retry on connection-level errors (nothing was generated, so it is safe)."""
        for attempt in range(2):
            try:
                return str(await call())
            except httpx.TimeoutException:
                raise ProviderError(target.provider, None, f"{target.provider} timed out") from None
            except httpx.TransportError:
                if attempt == 1:
                    raise ProviderError(target.provider, None, f"cannot reach {target.provider}") from None
        raise AssertionError("unreachable")


def _key_ref(target: Target) -> str:
    """Which key a provider refused, in words a user can act on (never the key itself)."""
    if target.key_id:
        return f"your stored {target.provider} key {target.key_id}"
    return f"the server's {target.provider} key"


def _safe(exc: ProviderError) -> str:
    return f"{exc.provider} {exc.status or 'unreachable'}: {exc.message}"[:500]
