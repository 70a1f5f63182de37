"""Backline's own shape (POST /v1/generate): a JSON answer, or SSE events start / delta / error /
done then [DONE]. Tool-call pieces never occur here (the route takes no tools)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from workers.ai.providers.base import Delta, Tally
from workers.ai.service import CallResult, StreamHandle


def answer(result: CallResult) -> dict[str, Any]:
    return {
        "id": result.usage_id,
        "provider": result.provider,
        "model": result.model,
        "text": result.text,
        "usage": {
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost_usd": float(result.cost_usd),
        },
        "latency_ms": result.latency_ms,
        "fallback_used": result.fallback_used,
    }


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class EventStream:
    def __init__(self, h: StreamHandle) -> None:
        self.h = h

    def start(self) -> bytes:
        h = self.h
        return event(
            {
                "type": "start",
                "id": h.usage_id,
                "provider": h.target.provider,
                "model": h.target.model,
                "fallback_used": h.fallback_used,
            }
        )

    def delta(self, piece: Delta) -> bytes:
        return event({"type": "delta", "text": piece}) if isinstance(piece, str) and piece else b""

    def end(self, tally: Tally, cost: Decimal | None) -> bytes:
        usage = {
            "input_tokens": tally.input_tokens,
            "output_tokens": tally.final_output_tokens(),
            "cost_usd": float(cost or 0),
        }
        return event({"type": "done", "usage": usage}) + b"data: [DONE]\n\n"

    def error(self, status: int, message: str) -> bytes:
        return event({"type": "error", "message": message})
