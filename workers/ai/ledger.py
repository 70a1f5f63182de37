"""The two bookkeeping transactions of every AI call: admission and settlement.

They are on the hot path of each request, so they run on an async connection
(no worker-thread hop) as ONE simple-query message each: PostgREST's
role/claims `set_config` statement and the function call(s) in one implicit
transaction and one network round trip (`as_user_script`), acting as the
caller exactly like a PostgREST request. (psycopg's pipeline mode gives the
same single round trip but costs ~0.3 ms of client CPU per transaction; values
are bound client-side by psycopg's adapters, ~8 µs vs ~55 µs for sql.Literal.)

Admission returns a one-time ticket (see migration 20261125081000): only its
holder can settle the call or admit its one fallback. It is never logged.

The admission's transaction is left open when its results come back, and committed
with a second message (`commit`) that the caller sends at once and awaits only before
anything of the call reaches the client (`AIService` starts the provider call in
between). The slot and the reservation are taken, and their locks held, before the
provider is called, exactly as before; only the wait for the commit's WAL flush (0.1-0.4
ms on a quiet disk, several ms on a busy one) now overlaps the provider call instead of
preceding it. Nothing is released before the commit is durable, so a crash never loses
an admission of a call whose answer anybody received (issue #18).

The stored key's encrypted blobs are the one thing read NOT as the caller: no
API role may execute private.ai_key_secret (a user would get their own key's
ciphertext back), so the proxy reads it as its own database role, for the
verified caller's user id, as the first statement of the admission's message:
still one transaction and one round trip (migration 20261206090220).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg

from workers.ai.auth import Caller
from workers.ai.keys import MasterKeys, Sealed
from workers.ai.store import StoreError, aad_for, map_error
from workers.db.impersonate import as_user_script

CENT_FRACTION = Decimal("0.00000001")  # public.ai_usage.cost_usd is numeric(14, 8)
BEGIN_SQL = (
    "select outcome, usage_id, ticket, retry_after_seconds, remaining, budget_left_usd,"
    " input_usd_per_mtok, output_usd_per_mtok, usd_per_image"
    " from private.ai_begin(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
KEY_SQL = "select master_key_id, wrapped_dek, ciphertext from private.ai_key_secret(%s, %s)"
FINISH_SQL = "select private.ai_finish(%s, %s, %s, %s, %s, %s, %s, %s)"
# This transaction's COMMIT returns without waiting for the WAL flush. ai_finish's own
# `set synchronous_commit = on` (migration 20261206100001) only lasts for the call: the
# transaction's value, which COMMIT uses, is this one.
ASYNC_COMMIT_SQL = "select set_config('synchronous_commit', 'off', true)"


async def _run_as(
    conn: psycopg.AsyncConnection[Any],
    caller: Caller,
    statements: list[tuple[str, Sequence[Any]]],
    *,
    first: tuple[str, Sequence[Any]] | None = None,
    hold: bool = False,
) -> list[list[Any]]:
    """Run `statements` as the caller in one transaction and one round trip; their rows.

    `first` runs before the impersonation, as the proxy's own database role; its rows
    come first in the result. `hold`: the transaction stays open afterwards (the caller
    commits it with `commit()` or ends it with `rollback()`).
    """
    query, params = as_user_script(conn, statements, caller.user_id, caller.role, claims=caller.claims)
    if first is not None:
        query = f"{first[0]}; {query}"
        params = [*first[1], *params]
    if hold:
        # An explicit BEGIN in a simple-query message keeps its transaction open after it.
        query = f"begin; {query}"
    try:
        cur = psycopg.AsyncClientCursor(conn)
        await cur.execute(query, params)
        results = []
        if hold:
            cur.nextset()  # past BEGIN's empty result
        if first is not None:
            results.append(await cur.fetchall())
            cur.nextset()  # to the impersonation's set_config row, which is skipped
        while cur.nextset():
            results.append(await cur.fetchall())
    except psycopg.Error as exc:
        raise map_error(exc) from None
    return results


@dataclass(frozen=True)
class Prices:
    """Unit prices captured at admission; settlement in SQL uses the same ones."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    per_image: Decimal

    def cost(self, input_tokens: int, output_tokens: int, images: int) -> Decimal:
        """Exactly what private.ai_finish records (same formula, rounded to 8 places)."""
        raw = (
            self.input_per_mtok * max(input_tokens, 0) + self.output_per_mtok * max(output_tokens, 0)
        ) / 1_000_000 + self.per_image * max(images, 0)
        return raw.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Admission:
    usage_id: str
    ticket: str
    prices: Prices
    remaining: int | None
    budget_left_usd: Decimal | None
    api_key: str | None = None
    # The admission's commit, running while the provider is called (AIService.durable awaits it).
    committed: asyncio.Task[None] | None = None


async def begin(
    conn: psycopg.AsyncConnection[Any],
    caller: Caller,
    *,
    provider: str,
    model: str,
    est_input: int,
    est_output: int,
    images: int,
    endpoint: str,
    streamed: bool,
    key: tuple[MasterKeys, str] | None = None,
    fallback: tuple[str, str] | None = None,
    fallback_of: tuple[str, str] | None = None,
    request: tuple[str, str] | None = None,
) -> Admission:
    """Stored key + rate-limit slot + budget reservation + usage row, in one round trip,
    in a transaction left open: the caller must `commit(conn)` it (and may call the provider
    meanwhile). When admission fails or is refused, the transaction is rolled back here.

    `key` (master keys, key id): the encrypted key is fetched in the same
    transaction and opened here; `fallback` (provider, model) is recorded as the
    one fallback this call may have; `fallback_of` (usage id, ticket) admits this
    call as that primary's fallback; `request` (request id, ticket) as a claimed
    queue request. Those two take no rate-limit slot (the server verifies them).
    """
    fb_provider, fb_model = fallback or (None, None)
    of_id, of_ticket = fallback_of or (None, None)
    req_id, req_ticket = request or (None, None)
    params = (
        provider,
        model,
        est_input,
        est_output,
        images,
        endpoint,
        streamed,
        key[1] if key else None,
        fb_provider,
        fb_model,
        of_id,
        of_ticket,
        req_id,
        req_ticket,
    )
    # A missing/foreign key raises first: no slot is taken.
    first = (KEY_SQL, (key[1], caller.user_id)) if key is not None else None
    try:
        return _admission(
            await _run_as(conn, caller, [(BEGIN_SQL, params)], first=first, hold=True), key, caller
        )
    except BaseException:
        await rollback(conn)
        raise


def _admission(results: list[list[Any]], key: tuple[MasterKeys, str] | None, caller: Caller) -> Admission:
    row = results[-1][0]
    sealed_row = results[0][0] if key is not None else None
    assert row is not None
    outcome, usage_id, ticket, retry_after, remaining, left, p_in, p_out, p_img = row
    if outcome == "rate_limited":
        raise StoreError(
            429, f"rate limit reached; retry in {retry_after} seconds", retry_after=int(retry_after)
        )
    admission = Admission(str(usage_id), str(ticket), Prices(p_in, p_out, p_img), remaining, left)
    if key is None:
        return admission
    assert sealed_row is not None
    kid, wrapped, ciphertext = sealed_row
    # KeyDecryptError (the server lacks that master key): the caller's rollback undoes the admission.
    secret = key[0].open(Sealed(kid, bytes(wrapped), bytes(ciphertext)), aad_for(key[1], caller.user_id))
    return Admission(admission.usage_id, admission.ticket, admission.prices, remaining, left, secret)


async def commit(conn: psycopg.AsyncConnection[Any]) -> None:
    """Commit the transaction `begin` left open; returns once it is durable (WAL flushed)."""
    try:
        # A bare COMMIT message. conn.execute("commit") goes through a cursor and, from the
        # sixth call on, psycopg's server-side prepared statement: more work on the call's path.
        await conn.commit()
    except psycopg.Error as exc:
        raise map_error(exc) from None


async def rollback(conn: psycopg.AsyncConnection[Any]) -> None:
    """End the transaction `begin` left open without keeping anything (a lost connection has
    nothing left to roll back: the server ended the transaction with it)."""
    if conn.closed:
        return
    with contextlib.suppress(psycopg.Error):
        await conn.rollback()


@dataclass(frozen=True)
class Settlement:
    """What private.ai_finish records for one admitted call."""

    usage_id: str
    ticket: str
    status: str
    input_tokens: int
    output_tokens: int
    images: int
    latency_ms: int
    error: str | None

    def params(self) -> tuple[Any, ...]:
        return (
            self.usage_id,
            self.status,
            self.input_tokens,
            self.output_tokens,
            self.images,
            self.latency_ms,
            self.error,
            self.ticket,
        )


async def finish(conn: psycopg.AsyncConnection[Any], caller: Caller, settlement: Settlement) -> Decimal:
    """Settle: real tokens -> cost at the admission prices; releases the reservation. Durable:
    returns once the commit is on disk (settlements of answers already sent go through
    `finish_many`)."""
    results = await _run_as(conn, caller, [(FINISH_SQL, settlement.params())])
    row = results[-1][0]
    assert row is not None
    return Decimal(row[0])


async def finish_many(
    conn: psycopg.AsyncConnection[Any], settlements: Sequence[tuple[Caller, Settlement]]
) -> list[Decimal]:
    """Settlements of answers already sent, in ONE transaction and one round trip, each as its
    own caller: all are recorded, or none (the first refused one raises). The commit does not
    wait for the WAL flush (ASYNC_COMMIT_SQL): losing it in a database crash is what the ledger
    already absorbs (see AIService.settle). Their costs, in order."""
    parts = [ASYNC_COMMIT_SQL]
    params: list[Any] = []
    for caller, settlement in settlements:
        query, values = as_user_script(
            conn, [(FINISH_SQL, settlement.params())], caller.user_id, caller.role, claims=caller.claims
        )
        parts.append(query)
        params.extend(values)
    costs = []
    try:
        cur = psycopg.AsyncClientCursor(conn)
        await cur.execute("; ".join(parts), params)
        # Result sets: the commit setting's row, then each settlement's set_config row and its cost.
        for _ in settlements:
            cur.nextset()
            cur.nextset()
            row = await cur.fetchone()
            assert row is not None
            costs.append(Decimal(row[0]))
    except psycopg.Error as exc:
        raise map_error(exc) from None
    return costs
