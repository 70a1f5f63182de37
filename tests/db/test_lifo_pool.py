"""The AI proxy's pool hands out the connection returned last (workers/db/lifo_pool.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from workers.db.lifo_pool import LifoAsyncConnectionPool


async def _backend_pid(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (await conn.execute("select pg_backend_pid()")).fetchone()
    assert row is not None
    return int(row[0])


async def _pids_of_serial_calls(pool: AsyncConnectionPool[Any], calls: int) -> list[int]:
    pids = []
    for _ in range(calls):
        async with pool.connection() as conn:
            pids.append(await _backend_pid(conn))
    return pids


async def _serial_use(url: str, pool_class: type[AsyncConnectionPool[Any]]) -> list[int]:
    async with pool_class(url, min_size=4, max_size=4, kwargs={"autocommit": True}, open=False) as pool:
        await pool.open(wait=True, timeout=10)
        return await _pids_of_serial_calls(pool, 8)


def test_one_call_at_a_time_reuses_one_connection(clone_url: str) -> None:
    pids = asyncio.run(_serial_use(clone_url, LifoAsyncConnectionPool))
    assert len(set(pids)) == 1, pids
    # psycopg_pool's own order cycles through all four: what the LIFO pool exists to avoid.
    assert len(set(asyncio.run(_serial_use(clone_url, AsyncConnectionPool)))) == 4


async def _return_order(url: str) -> tuple[list[int], list[int]]:
    async with LifoAsyncConnectionPool(
        url, min_size=3, max_size=3, kwargs={"autocommit": True}, open=False
    ) as pool:
        await pool.open(wait=True, timeout=10)
        held = [await pool.getconn() for _ in range(3)]
        returned = [await _backend_pid(conn) for conn in held]
        for conn in held:  # returned in order: first, second, third
            await pool.putconn(conn)
        again = [await pool.getconn() for _ in range(3)]
        taken = [await _backend_pid(conn) for conn in again]
        for conn in again:
            await pool.putconn(conn)
        return returned, taken


def test_connections_are_taken_in_the_reverse_order_they_were_returned(clone_url: str) -> None:
    returned, taken = asyncio.run(_return_order(clone_url))
    assert taken == list(reversed(returned))
