"""One AI call end to end: key, admission (rate limit + budget), provider with retry
and fallback, settlement. Used by the HTTP app and by the queue handler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import psycopg
from starlette.concurrency import run_in_threadpool

from workers.ai import ledger
from workers.ai.auth import Caller
from workers.ai.http_client import ProviderClient, ProviderTimeout, ProviderTransportError
from workers.ai.keys import KeyDecryptError, MasterKeys
from workers.ai.ledger import Admission
from workers.ai.providers import make_provider
from workers.ai.providers.base import NO_OPTIONS, ChatRequest, Delta, Options, Provider, ProviderError, Tally
from workers.ai.settlements import AsyncConnFactory, SettlementBatcher
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
    # Queue mode: (request id, ticket from private.ai_request_claim); its insert took the slot.
    request: tuple[str, str] | None = None
    # Tools, tool choice, JSON output, stop sequences (the SDK-compatible routes).
    options: Options = NO_OPTIONS


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
    # Deferred settlement (complete(defer_settle=True)): run it after the response is sent.
    settle: Callable[[], Awaitable[Decimal]] | None = None
    # The call's tally: tool calls and finish reason for the SDK-compatible routes.
    tally: Tally = dataclasses.field(default_factory=Tally)


@dataclass
class StreamHandle:
    """A provider stream whose first chunk has arrived (errors before it become HTTP errors).
    `first` is "" when the provider sent nothing at all."""

    first: Delta
    rest: AsyncIterator[Delta]
    tally: Tally
    target: Target
    admission: Admission
    started: float
    fallback_used: bool
    settled: bool = False

    @property
    def usage_id(self) -> str:
        return self.admission.usage_id


def estimate_input_tokens(messages: list[dict[str, Any]]) -> tuple[int, int]:
    chars, images = 0, 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for p in content:
                kind = p.get("type")
                if kind == "image":
                    images += 1
                elif kind == "tool_call":
                    chars += len(str(p.get("name", ""))) + len(str(p.get("arguments", "")))
                elif kind == "tool_result":
                    chars += len(str(p.get("content", "")))
                else:
                    chars += len(str(p.get("text", "")))
    return (chars + 3) // 4 + images * IMAGE_TOKEN_ESTIMATE, images


class AIService:
    def __init__(
        self,
        settings: Settings,
        connection: ConnFactory,
        aconnection: AsyncConnFactory,
        client: ProviderClient,
        master: MasterKeys | None,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self.aconnection = aconnection
        self.client = client
        self.master = master
        self.base_urls = {
            "openai": settings.ai_openai_base_url,
            "openai_compat": settings.ai_openai_compat_base_url,
            "anthropic": settings.ai_anthropic_base_url,
            "gemini": settings.ai_gemini_base_url,
        }
        self.providers: dict[str, Provider] = {n: make_provider(n, u) for n, u in self.base_urls.items()}
        self._commits: set[asyncio.Task[None]] = set()  # admissions committing (the loop keeps weak refs)
        self.settlements = SettlementBatcher(aconnection)

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
    def _request(self, spec: CallSpec, target: Target, adm: Admission) -> ChatRequest:
        assert adm.api_key is not None
        return ChatRequest(
            target.model, spec.messages, spec.max_tokens, adm.api_key, spec.temperature, spec.options
        )

    async def _admit(
        self,
        caller: Caller,
        spec: CallSpec,
        target: Target,
        streamed: bool,
        *,
        fallback: Target | None = None,
        primary: Admission | None = None,
    ) -> Admission:
        """Open the stored key and admit the call in one transaction (one round trip).

        The transaction's commit is sent at once and runs while the caller calls the provider
        (see workers/ai/ledger.py): `durable()` waits for it before anything of the call is
        released, and before its settlement or a fallback's admission.
        `fallback`: the one fallback this primary call may have (recorded at admission);
        `primary`: admit this call as that primary's fallback (no second rate-limit slot).
        """
        if primary is not None:
            await self.durable(primary)  # the server checks the primary's committed ticket
        est_in, images = estimate_input_tokens(spec.messages)
        key = (self.need_master(), target.key_id) if target.key_id else None
        operator = None if key else self.operator_key(target)
        stack = AsyncExitStack()
        conn = await stack.enter_async_context(self.aconnection())
        try:
            adm = await ledger.begin(
                conn,
                caller,
                provider=target.provider,
                model=target.model,
                est_input=est_in,
                est_output=spec.max_tokens,
                images=images,
                endpoint=spec.endpoint,
                streamed=streamed,
                key=key,
                fallback=(fallback.provider, fallback.model) if fallback else None,
                fallback_of=(primary.usage_id, primary.ticket) if primary else None,
                request=spec.request if primary is None else None,
            )
        except KeyDecryptError:
            await stack.aclose()
            raise StoreError(500, "your stored key cannot be decrypted; store it again") from None
        except BaseException:
            await stack.aclose()
            raise
        committed = asyncio.create_task(self._commit(conn, stack))
        self._commits.add(committed)
        committed.add_done_callback(functools.partial(self._committed, adm.usage_id))
        return dataclasses.replace(adm, api_key=adm.api_key or operator, committed=committed)

    async def _commit(self, conn: psycopg.AsyncConnection[Any], stack: AsyncExitStack) -> None:
        try:
            await ledger.commit(conn)
        finally:
            await stack.aclose()  # the connection goes back to the pool

    def _committed(self, usage_id: str, task: asyncio.Task[None]) -> None:
        self._commits.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            detail = error.message if isinstance(error, StoreError) else type(error).__name__
            log.warning("ai admission %s was not committed: %s", usage_id, detail)

    async def durable(self, adm: Admission) -> None:
        """Return once the admission is committed and on disk; raise StoreError(503) when it
        could not be committed (then nothing of the call was recorded, and nothing of it may
        be released)."""
        if adm.committed is None:
            return
        try:
            await asyncio.shield(adm.committed)  # a cancelled caller does not cancel the commit
        except Exception:
            raise StoreError(503, "the call could not be recorded; try again") from None

    async def settle(
        self,
        caller: Caller,
        adm: Admission,
        target: Target,
        tally: Tally,
        latency_ms: int,
        status: str,
        error: str | None,
        images: int = 0,
        after_answer: bool = False,
    ) -> Decimal:
        """Record the call's real tokens and cost and release its reservation.

        `after_answer`: the settlement of a JSON answer already sent. Its commit does not wait
        for the WAL flush: nobody waits on it, and a durable commit would hold the user's
        budget row lock through the flush while the user's next admission, which updates that
        row, queues behind it (~0.1 ms at one client). Losing it in a database crash is what a
        proxy crash before it already does: the call stays pending with its reservation, and
        cleanup charges that (docs/ai.md, "Durability"); any durable commit after it, such as
        the next admission, flushes it too. Such settlements are written in groups when several
        are due at once (workers/ai/settlements.py)."""
        try:
            await self.durable(adm)
        except StoreError:
            return Decimal(0)  # never committed: nothing was reserved, nothing to settle
        settlement = ledger.Settlement(
            adm.usage_id,
            adm.ticket,
            status,
            tally.input_tokens,
            tally.final_output_tokens(),
            images,
            latency_ms,
            error,
        )
        if after_answer:
            cost = await self.settlements.settle(caller, settlement)
        else:
            async with self.aconnection() as conn:
                cost = await ledger.finish(conn, caller, settlement)
        log.info(
            "ai call user=%s provider=%s model=%s status=%s in=%d out=%d ms=%d",
            caller.user_id,
            target.provider,
            target.model,
            status,
            tally.input_tokens,
            tally.final_output_tokens(),
            latency_ms,
        )
        return cost

    def _targets(self, spec: CallSpec) -> list[Target]:
        fallback = spec.fallback or self.default_fallback()
        return [spec.target] + ([fallback] if fallback and fallback != spec.target else [])

    async def _fall_back(
        self,
        caller: Caller,
        spec: CallSpec,
        failed: tuple[Admission, Target, Tally, float, str],
        nxt: Target,
        streamed: bool,
    ) -> Admission:
        """Admit the fallback (while the primary is still pending, as the server requires),
        then settle the failed primary whatever happened.

        The fallback's admission is already committed when the primary is settled: if that
        settlement fails, the error is logged and the fallback goes ahead (raising would orphan
        its reservation until cleanup; the primary's row is released by cleanup either way)."""
        adm, target, tally, started, error = failed
        try:
            return await self._admit(caller, spec, nxt, streamed, primary=adm)
        finally:
            try:
                await self.settle(
                    caller, adm, target, tally, elapsed_ms(started), "error", error, spec.images
                )
            except Exception as exc:  # logged; raising would orphan the committed fallback admission
                # The class and, for a mapped database refusal, its safe message: no keys or prompts.
                detail = exc.message if isinstance(exc, StoreError) else type(exc).__name__
                log.warning(
                    "ai settle of failed primary %s (%s/%s) failed: %s; the fallback proceeds",
                    adm.usage_id,
                    target.provider,
                    target.model,
                    detail,
                )

    async def complete(self, caller: Caller, spec: CallSpec, *, defer_settle: bool = False) -> CallResult:
        """One non-streaming call. With defer_settle the successful call's settlement is
        returned as `CallResult.settle` for the caller to run after responding; the cost in
        the result is computed from the admission prices, exactly as the settlement records it."""
        targets = self._targets(spec)
        adm = await self._admit(caller, spec, targets[0], False, fallback=targets[1] if targets[1:] else None)
        for i, target in enumerate(targets):
            tally, started = Tally(), time.perf_counter()
            try:
                call = self.providers[target.provider].complete
                request = self._request(spec, target, adm)
                text = await self._with_retry(functools.partial(call, self.client, request, tally), target)
                await self.durable(adm)  # nothing of the call leaves before its admission is on disk
            except ProviderError as exc:
                if exc.retryable and i + 1 < len(targets):
                    adm = await self._fall_back(
                        caller, spec, (adm, target, tally, started, _safe(exc)), targets[i + 1], False
                    )
                    continue
                await self.settle(
                    caller, adm, target, tally, elapsed_ms(started), "error", _safe(exc), spec.images
                )
                exc.key_ref = _key_ref(target)
                raise
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.settle(
                        caller,
                        adm,
                        target,
                        tally,
                        elapsed_ms(started),
                        "interrupted",
                        "cancelled",
                        spec.images,
                    )
                raise
            latency = elapsed_ms(started)
            settle = functools.partial(
                self.settle,
                caller,
                adm,
                target,
                tally,
                latency,
                "ok",
                None,
                spec.images,
                after_answer=defer_settle,
            )
            if defer_settle:
                cost = adm.prices.cost(tally.input_tokens, tally.final_output_tokens(), spec.images)
            else:
                cost = await settle()
            return CallResult(
                text,
                target.provider,
                target.model,
                adm.usage_id,
                tally.input_tokens,
                tally.final_output_tokens(),
                cost,
                latency,
                i > 0,
                settle if defer_settle else None,
                tally,
            )
        raise AssertionError("unreachable")

    async def open_stream(self, caller: Caller, spec: CallSpec) -> StreamHandle:
        """Admit and open a provider stream up to its first chunk (errors before it become HTTP
        errors; connection errors are retried once, then the fallback is tried)."""
        targets = self._targets(spec)
        adm = await self._admit(caller, spec, targets[0], True, fallback=targets[1] if targets[1:] else None)
        for i, target in enumerate(targets):
            failure: ProviderError | None = None
            can_fall_back = i + 1 < len(targets)
            for attempt in range(2):
                tally, started = Tally(), time.perf_counter()
                gen = self.providers[target.provider].stream(
                    self.client, self._request(spec, target, adm), tally
                )
                first: Delta
                try:
                    try:
                        first = await gen.__anext__()
                    except StopAsyncIteration:
                        first = ""
                    await self.durable(adm)  # the first chunk waits for the admission to be on disk
                except ProviderTimeout:
                    await gen.aclose()  # type: ignore[attr-defined]
                    failure = ProviderError(target.provider, None, f"{target.provider} timed out")
                    break
                except ProviderTransportError:
                    await gen.aclose()  # type: ignore[attr-defined]
                    if attempt == 0:
                        continue
                    failure = ProviderError(target.provider, None, f"cannot reach {target.provider}")
                    break
                except ProviderError as exc:
                    await gen.aclose()  # type: ignore[attr-defined]
                    can_fall_back = can_fall_back and exc.retryable
                    if not can_fall_back:
                        exc.key_ref = _key_ref(target)
                    failure = exc
                    break
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await gen.aclose()  # type: ignore[attr-defined]
                        await self.settle(
                            caller,
                            adm,
                            target,
                            tally,
                            elapsed_ms(started),
                            "interrupted",
                            "cancelled",
                            spec.images,
                        )
                    raise
                return StreamHandle(first, gen, tally, target, adm, started, i > 0)
            assert failure is not None
            if can_fall_back:
                adm = await self._fall_back(
                    caller, spec, (adm, target, tally, started, _safe(failure)), targets[i + 1], True
                )
                continue
            await self.settle(caller, adm, target, tally, elapsed_ms(started), "error", _safe(failure))
            raise failure
        raise AssertionError("unreachable")

    async def _with_retry(self, call: Callable[[], Any], target: Target) -> str:
        """One retry on connection-level errors (nothing was generated, so it is safe)."""
        for attempt in range(2):
            try:
                return str(await call())
            except ProviderTimeout:
                raise ProviderError(target.provider, None, f"{target.provider} timed out") from None
            except ProviderTransportError:
                if attempt == 1:
                    raise ProviderError(target.provider, None, f"cannot reach {target.provider}") from None
        raise AssertionError("unreachable")


def _key_ref(target: Target) -> str:
    """Which key a provider refused, in words a user can act on (never the key itself)."""
    if target.key_id:
        return f"your stored {target.provider} key {target.key_id}"
    return f"the server's {target.provider} key"


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a time.perf_counter() value)."""
    return int((time.perf_counter() - started) * 1000)


def _safe(exc: ProviderError) -> str:
    return f"{exc.provider} {exc.status or 'unreachable'}: {exc.message}"[:500]
