"""SettlingStream runs its close callback exactly when Starlette would skip the body's `finally`."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import anyio

from workers.ai.settling_stream import SettlingStream


def run(receive_first: dict[str, Any]) -> tuple[list[str], list[bytes]]:
    seen: list[str] = []
    sent: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        seen.append("started")
        try:
            yield b"data: 1\n\n"
            yield b"data: 2\n\n"
        finally:
            seen.append("body finally")

    async def on_close() -> None:
        seen.append("on_close")

    async def receive() -> dict[str, Any]:
        if receive_first["type"] == "http.disconnect":
            return receive_first
        await anyio.sleep(3600)  # the client stays
        return receive_first

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message.get("body", b""))
        await anyio.sleep(0)

    async def main() -> None:
        response = SettlingStream(body(), on_close, media_type="text/event-stream")
        await response({"type": "http", "asgi": {"spec_version": "2.3"}}, receive, send)

    anyio.run(main)
    return seen, sent


def test_close_callback_runs_when_the_client_left_before_the_body() -> None:
    seen, sent = run({"type": "http.disconnect"})
    assert seen[-1] == "on_close"
    assert b"data: 2\n\n" not in sent  # the body was cut off
    # Whether or not the body had started, its finally (if it started) ran before on_close.
    assert seen.count("started") == seen.count("body finally")


def test_close_callback_runs_after_a_complete_body() -> None:
    seen, sent = run({"type": "http.request"})
    assert seen == ["started", "body finally", "on_close"]
    assert b"data: 2\n\n" in sent
