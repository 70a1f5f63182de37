"""OpenAI chat completions (also any OpenAI-compatible server: vLLM, Ollama, LM Studio)."""

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
)


class OpenAICompatProvider:
    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self.url = base_url.rstrip("/") + "/chat/completions"

    def _body(self, req: ChatRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": req.model,
            "messages": [self._message(m) for m in req.messages],
            "max_tokens": req.max_tokens,
        }
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    @staticmethod
    def _message(m: dict[str, Any]) -> dict[str, Any]:
        content = m.get("content")
        if isinstance(content, str):
            return {"role": m["role"], "content": content}
        parts: list[dict[str, Any]] = []
        for p in parts_of(content):
            if p.get("type") == "image":
                parts.append(
                    {"type": "image_url", "image_url": {"url": f"data:{p['mime_type']};base64,{p['data']}"}}
                )
            else:
                parts.append({"type": "text", "text": p.get("text", "")})
        return {"role": m["role"], "content": parts}

    def _headers(self, req: ChatRequest) -> dict[str, str]:
        return {"authorization": f"Bearer {req.api_key}", "content-type": "application/json"}

    async def complete(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> str:
        async with client.post(self.url, self._body(req, False), self._headers(req)) as resp:
            await raise_for_provider(self.name, resp)
            data = json.loads(await resp.aread())
        usage = data.get("usage") or {}
        tally.input_tokens = int(usage.get("prompt_tokens", 0))
        tally.output_tokens = int(usage.get("completion_tokens", 0))
        tally.reported_output = "completion_tokens" in usage
        try:
            text = data["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError):
            raise ProviderError(self.name, 502, "malformed chat completion response") from None
        tally.add_text(text)
        return str(text)

    async def stream(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> AsyncIterator[str]:
        async with client.post(self.url, self._body(req, True), self._headers(req)) as resp:
            await raise_for_provider(self.name, resp)
            async for ev in iter_sse(resp):
                if ev.data.strip() == "[DONE]":
                    break
                chunk = json.loads(ev.data)
                if "error" in chunk:
                    raise ProviderError(
                        self.name, 502, str(chunk["error"].get("message", "stream error"))[:300]
                    )
                usage = chunk.get("usage")
                if usage:
                    tally.input_tokens = int(usage.get("prompt_tokens", 0))
                    tally.output_tokens = int(usage.get("completion_tokens", 0))
                    tally.reported_output = True
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        tally.add_text(text)
                        yield str(text)
