"""A local stand-in for Supabase Realtime (Phoenix channels over a websocket), for the wake-up tests.

Records the connection URL and each client message as the official `realtime`
client sent them; answers a phx_join with the postgres_changes bindings and
server ids (as Realtime does), heartbeats with ok, and `push_insert(record)`
sends a postgres_changes INSERT event to every joined channel the way Realtime
streams a WAL change.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve


@dataclass
class FakeRealtime:
    paths: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    joins: dict[str, tuple[ServerConnection, list[dict[str, Any]]]] = field(default_factory=dict)
    joined: threading.Event = field(default_factory=threading.Event)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/realtime/v1"

    def start(self) -> FakeRealtime:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()

            async def start() -> Server:
                return await serve(self._handle, "127.0.0.1", 0)

            self._server = self._loop.run_until_complete(start())
            self.port = next(iter(self._server.sockets)).getsockname()[1]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        if self._loop and self._server:
            server = self._server

            async def shutdown() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        async for raw in ws:
            msg = json.loads(raw)
            self.messages.append(msg)
            topic, ref, event = msg["topic"], msg.get("ref"), msg["event"]
            response: dict[str, Any] = {}
            if event == "phx_join":
                bindings = [
                    dict(b, id=1000 + i)
                    for i, b in enumerate(msg["payload"]["config"].get("postgres_changes", []))
                ]
                response = {"postgres_changes": bindings}
                self.joins[topic] = (ws, bindings)
                self.joined.set()
            reply = {
                "topic": topic,
                "event": "phx_reply",
                "ref": ref,
                "payload": {"status": "ok", "response": response},
            }
            await ws.send(json.dumps(reply))

    def push_insert(self, record: dict[str, Any]) -> None:
        async def send() -> None:
            for topic, (ws, bindings) in self.joins.items():
                ids = [
                    b["id"] for b in bindings if b["event"] in ("INSERT", "*") and b.get("table") == "jobs"
                ]
                data: dict[str, Any] = {
                    "schema": "public",
                    "table": "jobs",
                    "commit_timestamp": datetime.now(UTC).isoformat(),
                    "type": "INSERT",
                    "errors": None,
                    "columns": [],
                    "record": record,
                }
                await ws.send(
                    json.dumps(
                        {
                            "topic": topic,
                            "event": "postgres_changes",
                            "ref": None,
                            "payload": {"ids": ids, "data": data},
                        }
                    )
                )

        assert self._loop
        asyncio.run_coroutine_threadsafe(send(), self._loop).result(5)
