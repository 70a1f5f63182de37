"""Group commit for the settlements of answers already sent.

A JSON answer's settlement runs after its response (AIService.settle with
`after_answer`) and commits without waiting for the WAL flush. Under load many
run at once, and each was a round trip, a transaction and a commit of its own.
Here they are written in groups: when no group is being written, the next
settlement goes at once (alone, at low load, so it never waits for company);
the ones that arrive while a group is written go together in the next group,
in one message and one transaction (`ledger.finish_many`). Each caller still
waits for its own settlement and gets its cost, exactly as before. With 64 clients
kept busy (Backline alone) the proxy's CPU per request fell from 0.95-0.97 to
0.71-0.82 ms and its overhead by a fifth or more (docs/benchmarks.md, issue #17).

A group is all or nothing, so a group that fails (one settlement refused, a
lost connection) is written again one settlement at a time: one bad settlement
never loses the others. A group's settlements take their users' budget rows in
user order, so two proxy processes writing groups never wait on each other in
a cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from workers.ai import ledger
from workers.ai.auth import Caller
from workers.ai.store import StoreError

log = logging.getLogger(__name__)


AsyncConnFactory = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


@dataclass(frozen=True)
class _Pending:
    caller: Caller
    settlement: ledger.Settlement
    cost: asyncio.Future[Decimal]


class SettlementBatcher:
    """Writes after-answer settlements in groups (see the module docstring)."""

    def __init__(self, aconnection: AsyncConnFactory) -> None:
        self.aconnection = aconnection
        self._waiting: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def settle(self, caller: Caller, settlement: ledger.Settlement) -> Decimal:
        """Record `settlement` (as `caller`), with the next group; its cost once committed."""
        cost: asyncio.Future[Decimal] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Pending(caller, settlement, cost))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        # A cancelled caller does not take its settlement out of the group.
        return await asyncio.shield(cost)

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                await self._write(group)
        finally:
            self._writer = None

    async def _write(self, group: list[_Pending]) -> None:
        group.sort(key=lambda p: p.caller.user_id)  # budget rows locked in user order
        try:
            async with self.aconnection() as conn:
                costs = await ledger.finish_many(conn, [(p.caller, p.settlement) for p in group])
        except (StoreError, psycopg.Error) as exc:
            if len(group) == 1:
                _resolve(group[0].cost, exc)
                return
            log.warning("a group of %d AI settlements failed (%s); writing them one by one", len(group), exc)
            for pending in group:
                await self._write([pending])
            return
        except Exception as exc:  # anything else reaches each caller, as a lone settlement's would
            for pending in group:
                _resolve(pending.cost, exc)
            return
        except BaseException:  # cancelled while writing: the callers must not wait forever
            for pending in group:
                pending.cost.cancel()
            raise
        for pending, cost in zip(group, costs, strict=True):
            _resolve(pending.cost, cost)


def _resolve(cost: asyncio.Future[Decimal], outcome: Decimal | BaseException) -> None:
    if cost.done():
        return
    if isinstance(outcome, BaseException):
        cost.set_exception(outcome)
    else:
        cost.set_result(outcome)
