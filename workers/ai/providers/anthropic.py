"""Anthropic Messages API (POST /v1/messages), JSON and SSE."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from workers.ai.http_client import ProviderClient
from workers.ai.providers.base import (
    ChatRequest,
    ProviderError,
    Tally,
    iter_sse,
    parts_of,
    raise_for_provider,
    split_system,
)

API_VERSION = "2023-06-01"


class AnthropicProvider:
    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self.url = base_url.rstrip("/") + "/v1/messages"

    def _body(self, req: ChatRequest, stream: bool) -> dict[str, Any]:
        system, rest = split_system(req.messages)
        body: dict[str, Any] = {
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": [{"role": m["role"], "content": self._content(m.get("content"))} for m in rest],
        }
        if system:
            body["system"] = system
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if stream:
            body["stream"] = True
        return body

    @staticmethod
    def _content(content: Any) -> Any:
        if isinstance(content, str):
            return content
        out: list[dict[str, Any]] = []
        for p in parts_of(content):
            if p.get("type") == "image":
                out.append(
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": p["mime_type"], "data": p["data"]},
                    }
                )
            else:
                out.append({"type": "text", "text": p.get("text", "")})
        return out

    def _headers(self, req: ChatRequest) -> dict[str, str]:
        return {
            "x-api-key": req.api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }

    async def complete(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> str:
        async with client.post(self.url, self._body(req, False), self._headers(req)) as resp:
            await raise_for_provider(self.name, resp)
            data = json.loads(await resp.aread())
        usage = data.get("usage") or {}
        tally.input_tokens = int(usage.get("input_tokens", 0))
        tally.output_tokens = int(usage.get("output_tokens", 0))
        tally.reported_output = "output_tokens" in usage
        text = "".join(b.get("text", "") for b in data.get("content") or [] if b.get("type") == "text")
        tally.add_text(text)
        return text

    async def stream(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> AsyncIterator[str]:
        async with client.post(self.url, self._body(req, True), self._headers(req)) as resp:
            await raise_for_provider(self.name, resp)
            async for ev in iter_sse(resp):
                data = json.loads(ev.data)
                kind = data.get("type", ev.event)
                if kind == "message_start":
                    usage = (data.get("message") or {}).get("usage") or {}
                    tally.input_tokens = int(usage.get("input_tokens", 0))
                    tally.output_tokens = int(usage.get("output_tokens", 0))
                elif kind == "content_block_delta":
                    delta = data.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        tally.add_text(delta["text"])
                        yield str(delta["text"])
                elif kind == "message_delta":
                    usage = data.get("usage") or {}
                    if "output_tokens" in usage:
                        tally.output_tokens = int(usage["output_tokens"])
                        tally.reported_output = True
                elif kind == "error":
                    err = data.get("error") or {}
                    status = 529 if err.get("type") == "overloaded_error" else 502
                    raise ProviderError(self.name, status, str(err.get("message", "stream error"))[:300])
                elif kind == "message_stop":
                    break
