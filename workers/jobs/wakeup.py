"""Wake-up sources for idle workers, besides polling.

- LISTEN backline_jobs on a direct (or session-pooler) connection: the
  `public.jobs` triggers NOTIFY with the job's kind.
- A Supabase Realtime subscription to Postgres Changes on public.jobs (new
  rows, and rows going back to 'queued'), for workers that have no usable
  LISTEN: the RPC transport, or a database URL through the transaction pooler
  (port 6543), where LISTEN is accepted but never delivers.

Both only wake the worker; the claim is always the SQL claim, so a missed or
duplicated event costs at most one poll interval.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection
from typing import Any

import psycopg
from psycopg import conninfo

NOTIFY_CHANNEL = "backline_jobs"
REALTIME_TOPIC = "backline-jobs"
TRANSACTION_POOLER_PORT = "6543"


def listen_works(database_url: str | None) -> bool:
    """False for Supavisor's transaction mode (port 6543): LISTEN is silently useless there."""
    if not database_url:
        return False
    try:
        port = conninfo.conninfo_to_dict(database_url).get("port")
    except psycopg.ProgrammingError:
        return False
    return str(port or "") != TRANSACTION_POOLER_PORT


def listen_loop(
    database_url: str,
    kinds: Collection[str],
    wake: Callable[[], None],
    stop: threading.Event,
    on_error: Callable[[Exception], None],
    retry_seconds: float,
) -> None:
    """LISTEN until `stop`; reconnects after errors."""
    while not stop.is_set():
        try:
            with psycopg.connect(
                database_url, autocommit=True, application_name="backline-listen", prepare_threshold=None
            ) as conn:
                conn.execute(f"listen {NOTIFY_CHANNEL}")
                while not stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        if note.payload in kinds:
                            wake()
        except Exception as exc:
            on_error(exc)
            stop.wait(retry_seconds)


def realtime_loop(
    supabase_url: str,
    key: str,
    kinds: Collection[str],
    wake: Callable[[], None],
    stop: threading.Event,
    on_error: Callable[[Exception], None],
    retry_seconds: float,
    realtime_url: str | None = None,
) -> None:
    """Subscribe to Postgres Changes of public.jobs with the official `realtime` client until `stop`."""
    url = realtime_url or supabase_url.rstrip("/") + "/realtime/v1"
    while not stop.is_set():
        try:
            asyncio.run(_subscribe(url, key, kinds, wake, stop))
        except Exception as exc:
            on_error(exc)
            stop.wait(retry_seconds)


async def _subscribe(
    url: str, key: str, kinds: Collection[str], wake: Callable[[], None], stop: threading.Event
) -> None:
    from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
    from realtime.types import RealtimePostgresChangesListenEvent as Event

    def on_change(payload: Any) -> None:
        record = (payload.get("data") or {}).get("record") or {}
        if record.get("kind") in kinds and record.get("status", "queued") == "queued":
            wake()

    failure: list[Exception] = []

    def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            failure.append(error or RuntimeError(f"realtime subscription {state.value}"))

    client = AsyncRealtimeClient(url, token=key, auto_reconnect=True)
    channel = client.channel(REALTIME_TOPIC)
    channel.on_postgres_changes(Event.Insert, on_change, table="jobs", schema="public")
    channel.on_postgres_changes(
        Event.Update, on_change, table="jobs", schema="public", filter="status=eq.queued"
    )
    try:
        await channel.subscribe(on_state)
        while not stop.is_set() and not failure:
            await asyncio.sleep(0.2)
    finally:
        await client.remove_all_channels()
    if failure:
        raise failure[0]
