"""OpenAI chat completions (also any OpenAI-compatible server: vLLM, Ollama, LM Studio)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from workers.ai.http_client import ProviderClient
from workers.ai.providers.base import (
    ChatRequest,
    Delta,
    ProviderError,
    Tally,
    ToolCall,
    ToolCallDelta,
    iter_sse,
    parts_of,
    raise_for_provider,
)

FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


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
        opts = req.options
        if opts.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        **({"description": t.description} if t.description else {}),
                        "parameters": t.parameters,
                    },
                }
                for t in opts.tools
            ]
        if opts.tool_choice in ("auto", "none", "required"):
            body["tool_choice"] = opts.tool_choice
        elif opts.tool_choice:
            body["tool_choice"] = {"type": "function", "function": {"name": opts.tool_choice}}
        fmt = opts.response_format
        if fmt and fmt.get("type") == "json_schema":
            schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
            if fmt.get("strict") is not None:
                schema["strict"] = fmt["strict"]
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif fmt:
            body["response_format"] = {"type": "json_object"}
        if opts.stop:
            body["stop"] = list(opts.stop)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    @staticmethod
    def _message(m: dict[str, Any]) -> dict[str, Any]:
        content = m.get("content")
        if isinstance(content, str):
            return {"role": m["role"], "content": content}
        if m["role"] == "tool":
            result = parts_of(content)[0]
            return {"role": "tool", "tool_call_id": result["tool_call_id"], "content": result["content"]}
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for p in parts_of(content):
            kind = p.get("type")
            if kind == "image":
                parts.append(
                    {"type": "image_url", "image_url": {"url": f"data:{p['mime_type']};base64,{p['data']}"}}
                )
            elif kind == "tool_call":
                calls.append(
                    {
                        "id": p["id"],
                        "type": "function",
                        "function": {"name": p["name"], "arguments": p["arguments"]},
                    }
                )
            else:
                parts.append({"type": "text", "text": p.get("text", "")})
        out: dict[str, Any] = {"role": m["role"]}
        if calls:  # an assistant turn that called tools: text (if any) as a plain string
            out["content"] = "".join(p.get("text", "") for p in parts) or None
            out["tool_calls"] = calls
        else:
            out["content"] = parts
        return out

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
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content") or ""
        except (KeyError, IndexError, TypeError):
            raise ProviderError(self.name, 502, "malformed chat completion response") from None
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            tally.tool_calls.append(
                ToolCall(str(call.get("id", "")), str(fn.get("name", "")), str(fn.get("arguments") or ""))
            )
        tally.finish_reason = FINISH.get(choice.get("finish_reason") or "", tally.finish_reason)
        tally.add_text(text)
        return str(text)

    async def stream(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> AsyncIterator[Delta]:
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
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if text:
                        tally.add_text(text)
                        yield str(text)
                    for call in delta.get("tool_calls") or []:
                        fn = call.get("function") or {}
                        piece = ToolCallDelta(
                            int(call.get("index", 0)),
                            call.get("id"),
                            fn.get("name"),
                            fn.get("arguments") or "",
                        )
                        tally.add_tool_delta(piece)
                        yield piece
                    if choice.get("finish_reason"):
                        tally.finish_reason = FINISH.get(choice["finish_reason"], "stop")
