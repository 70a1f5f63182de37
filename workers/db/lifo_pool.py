"""An async connection pool that hands out the most recently returned connection first.

psycopg_pool hands out its idle connections in turn (first in, first out), so a
proxy that once grew to N connections keeps cycling through all N even when one
call is in flight at a time: every query then lands on a backend that has been
asleep for N-1 calls, with cold CPU caches, and no connection is ever idle long
enough for the pool to shrink. Reusing the connection that was returned last
(PgBouncer's default, SQLAlchemy's `pool_use_lifo`) keeps the few busy backends
hot and lets the others go idle. Measured on the AI proxy's admission (one
client, 2 vCPUs, pool of 8): 0.55 ms instead of 0.66-0.80 ms per round trip
(docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool


class LifoAsyncConnectionPool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """`AsyncConnectionPool` whose idle connections are taken last-in, first-out.

    Idle connections wait in the pool's deque, returned ones appended on the right, and a
    request takes the leftmost. Rotating the rightmost (the last returned) to the left first
    makes that the one taken; the least recently used stay on the left, where the pool's
    shrinking closes connections. tests/db/test_lifo_pool.py fails if a psycopg_pool
    release changes the structure this relies on.
    """

    async def _get_ready_connection(self, timeout: float | None) -> psycopg.AsyncConnection[Any] | None:
        if self._pool:  # runs under the pool's lock, like the method it extends
            self._pool.rotate(1)
        return await super()._get_ready_connection(timeout)
