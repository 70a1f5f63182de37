"""One generation request in each route's wire format, so that the tests written for
/v1/generate (limits, budgets, streaming usage, interruption) run for the SDK routes too."""

from __future__ import annotations

import json
from typing import Any

# Backline's own shape and the three SDK protocols (docs/ai.md).
ROUTES = ["generate", "openai", "anthropic", "gemini"]


def request_for(
    route: str,
    *,
    provider: str,
    model: str,
    messages: list[dict[str, Any]],
    key_id: str | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(path, JSON body, extra headers) of one call of `provider`/`model` through `route`."""
    if route == "generate":
        body: dict[str, Any] = {"provider": provider, "model": model, "messages": messages, "stream": stream}
        if key_id:
            body["key_id"] = key_id
        if max_tokens:
            body["max_tokens"] = max_tokens
        return "/v1/generate", body, {}
    headers = {"x-backline-key-id": key_id} if key_id else {}
    name = f"{provider}/{model}"
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    if route == "openai":
        body = {"model": name, "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if max_tokens:
            body["max_tokens"] = max_tokens
        return "/v1/chat/completions", body, headers
    if route == "anthropic":
        body = {"model": name, "messages": turns, "max_tokens": max_tokens or 1024, "stream": stream}
        if system:
            body["system"] = system
        return "/v1/messages", body, headers
    if route == "gemini":
        contents = [
            {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
            for m in turns
        ]
        body = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if max_tokens:
            body["generationConfig"] = {"maxOutputTokens": max_tokens}
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/{name}:{method}", body, headers
    raise ValueError(route)


def text_of_event(route: str, line: str) -> str | None:
    """The generated text one SSE line carries in `route`'s format (None: not a text event)."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return None
    data = json.loads(line[6:])
    if route == "generate":
        return str(data["text"]) if data.get("type") == "delta" else None
    if route == "openai":
        choices = data.get("choices") or []
        content = (choices[0].get("delta") or {}).get("content") if choices else None
        return str(content) if content else None
    if route == "anthropic":
        delta = data.get("delta") or {}
        return str(delta["text"]) if data.get("type") == "content_block_delta" and "text" in delta else None
    parts = ((data.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts)
    return text or None


def answer_text(route: str, body: dict[str, Any]) -> str:
    """The generated text of a JSON answer in `route`'s format."""
    if route == "generate":
        return str(body["text"])
    if route == "openai":
        return str(body["choices"][0]["message"]["content"])
    if route == "anthropic":
        return "".join(b["text"] for b in body["content"] if b["type"] == "text")
    return "".join(p.get("text", "") for p in body["candidates"][0]["content"]["parts"])
