"""Settlements of answers already sent are written in groups (workers/ai/settlements.py).

`finished_at` is the settling transaction's `now()`, so settlements that share one
were written in one transaction. Real calls are admitted with private.ai_begin as
their users; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.helpers import create_user
from workers.ai import ledger
from workers.ai.auth import Caller
from workers.ai.settlements import SettlementBatcher
from workers.ai.store import StoreError
from workers.db.impersonate import act_as


def admitted_call(url: str) -> tuple[Caller, str, str]:
    """A new user with one admitted (pending) call: (caller, usage id, ticket)."""
    with psycopg.connect(url) as conn:
        user = create_user(conn)
        conn.commit()
        with act_as(conn, user, rollback=False) as cur:
            row = cur.execute(
                "select usage_id, ticket from private.ai_begin('openai', 'gpt-4o-mini', 1000, 1000)"
            ).fetchone()
    assert row is not None
    caller = Caller(str(user), "authenticated", {"sub": str(user), "role": "authenticated"})
    return caller, str(row[0]), str(row[1])


def settlement(usage_id: str, ticket: str, output_tokens: int = 10) -> ledger.Settlement:
    return ledger.Settlement(usage_id, ticket, "ok", 100, output_tokens, 0, 5, None)


def settled(url: str, usage_ids: list[str]) -> dict[str, tuple[str, Any]]:
    """usage id -> (status, finished_at)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select id::text, status, finished_at from public.ai_usage where id = any(%s::uuid[])",
            (usage_ids,),
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def batcher_on(url: str) -> SettlementBatcher:
    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None)
        try:
            yield conn
        finally:
            await conn.close()

    return SettlementBatcher(connect)


def test_finish_many_settles_each_call_as_its_user_in_one_transaction(clone_url: str) -> None:
    calls = [admitted_call(clone_url) for _ in range(3)]

    async def run() -> list[Decimal]:
        async with await psycopg.AsyncConnection.connect(clone_url, autocommit=True) as conn:
            items = [(c, settlement(u, t, 10 * (i + 1))) for i, (c, u, t) in enumerate(calls)]
            return await ledger.finish_many(conn, items)

    costs = asyncio.run(run())
    rows = settled(clone_url, [u for _, u, _ in calls])
    assert {status for status, _ in rows.values()} == {"ok"}
    assert len({finished for _, finished in rows.values()}) == 1  # one transaction
    assert costs[0] < costs[1] < costs[2]  # each its own output tokens, in order
    with psycopg.connect(clone_url) as conn:
        budgets = conn.execute(
            "select user_id::text, reserved_usd, spent_usd from private.ai_budget_months"
            " where user_id = any(%s::uuid[])",
            ([c.user_id for c, _, _ in calls],),
        ).fetchall()
    spent = {user: (reserved, spent) for user, reserved, spent in budgets}
    for (caller, _, _), cost in zip(calls, costs, strict=True):
        assert spent[caller.user_id] == (Decimal(0), cost)  # reservation released, real cost spent


def test_settlements_arriving_while_a_group_is_written_form_the_next_group(clone_url: str) -> None:
    first, *rest = [admitted_call(clone_url) for _ in range(4)]
    batcher = batcher_on(clone_url)

    async def run() -> list[Decimal]:
        # Hold the first user's budget row so that the first group (that settlement alone)
        # is still being written while the other three arrive.
        async with await psycopg.AsyncConnection.connect(clone_url) as holder:
            await holder.execute(
                "select 1 from private.ai_budget_months where user_id = %s for update", (first[0].user_id,)
            )
            head = asyncio.create_task(batcher.settle(first[0], settlement(first[1], first[2])))
            await asyncio.sleep(0.3)
            others = [asyncio.create_task(batcher.settle(c, settlement(u, t))) for c, u, t in rest]
            await asyncio.sleep(0.3)
            assert not head.done() and not any(o.done() for o in others)
            await holder.rollback()
        return list(await asyncio.gather(head, *others))

    costs = asyncio.run(run())
    assert all(cost > 0 for cost in costs)
    rows = settled(clone_url, [u for _, u, _ in [first, *rest]])
    assert {status for status, _ in rows.values()} == {"ok"}
    group = {rows[u][1] for _, u, _ in rest}
    assert len(group) == 1  # the three waiting ones: one transaction
    assert rows[first[1]][1] not in group


def test_a_refused_settlement_does_not_take_its_group_down(clone_url: str) -> None:
    calls = [admitted_call(clone_url) for _ in range(3)]
    batcher = batcher_on(clone_url)
    bad_usage = calls[1][1]

    async def run() -> list[Decimal | BaseException]:
        items = [settlement(u, t) for _, u, t in calls]
        items[1] = settlement(bad_usage, "not-the-ticket")
        tasks = [batcher.settle(c, s) for (c, _, _), s in zip(calls, items, strict=True)]
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(run())
    assert isinstance(results[1], StoreError)
    assert isinstance(results[0], Decimal) and isinstance(results[2], Decimal)
    rows = settled(clone_url, [u for _, u, _ in calls])
    assert rows[calls[0][1]][0] == "ok" and rows[calls[2][1]][0] == "ok"
    assert rows[bad_usage][0] == "pending"  # refused: still pending, its reservation held


def test_a_caller_that_gives_up_waiting_still_has_its_call_settled(clone_url: str) -> None:
    caller, usage_id, ticket = admitted_call(clone_url)
    batcher = batcher_on(clone_url)

    async def run() -> None:
        waiting = asyncio.create_task(batcher.settle(caller, settlement(usage_id, ticket)))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for _ in range(100):  # the group is written anyway
            if settled(clone_url, [usage_id])[usage_id][0] == "ok":
                return
            await asyncio.sleep(0.05)

    asyncio.run(run())
    assert settled(clone_url, [usage_id])[usage_id][0] == "ok"


def test_a_group_keeps_its_users_in_one_order(clone_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes writing groups lock budget rows in the same order: never in a cycle."""
    calls = [admitted_call(clone_url) for _ in range(3)]
    batcher = batcher_on(clone_url)
    order: list[str] = []
    finish_many = ledger.finish_many

    async def recording(conn: Any, items: Any) -> list[Decimal]:
        order.extend(c.user_id for c, _ in items)
        return await finish_many(conn, items)

    monkeypatch.setattr(ledger, "finish_many", recording)

    async def run() -> None:
        await asyncio.gather(*(batcher.settle(c, settlement(u, t)) for c, u, t in reversed(calls)))

    asyncio.run(run())
    assert order == sorted(c.user_id for c, _, _ in calls)


def test_an_unexpected_failure_reaches_each_caller_and_later_settlements_still_go(clone_url: str) -> None:
    calls = [admitted_call(clone_url) for _ in range(3)]
    healthy = batcher_on(clone_url).aconnection
    opened = 0

    @contextlib.asynccontextmanager
    async def first_one_fails() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        nonlocal opened
        opened += 1
        if opened == 1:
            raise RuntimeError("no connection this time")
        async with healthy() as conn:
            yield conn

    batcher = SettlementBatcher(first_one_fails)

    async def run() -> list[Decimal | BaseException]:
        group = [batcher.settle(c, settlement(u, t)) for c, u, t in calls[:2]]
        failed = list(await asyncio.gather(*group, return_exceptions=True))
        later = await batcher.settle(calls[2][0], settlement(calls[2][1], calls[2][2]))
        return [*failed, later]

    results = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) for r in results[:2])
    assert isinstance(results[2], Decimal)
    rows = settled(clone_url, [u for _, u, _ in calls])
    assert [rows[u][0] for _, u, _ in calls] == ["pending", "pending", "ok"]
