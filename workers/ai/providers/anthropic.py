"""Anthropic Messages API (POST /v1/messages), JSON and SSE."""

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
    json_instruction,
    parse_arguments,
    parts_of,
    raise_for_provider,
    split_system,
)

API_VERSION = "2023-06-01"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


class AnthropicProvider:
    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self.url = base_url.rstrip("/") + "/v1/messages"

    def _body(self, req: ChatRequest, stream: bool) -> dict[str, Any]:
        system, rest = split_system(req.messages)
        opts = req.options
        instruction = json_instruction(opts.response_format)  # Messages has no JSON mode
        if instruction:
            system = f"{system}\n\n{instruction}" if system else instruction
        body: dict[str, Any] = {
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": self._turns(rest),
        }
        if system:
            body["system"] = system
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if opts.tools:
            body["tools"] = [
                {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "input_schema": t.parameters,
                }
                for t in opts.tools
            ]
        if opts.tool_choice in ("auto", "none"):
            body["tool_choice"] = {"type": opts.tool_choice}
        elif opts.tool_choice == "required":
            body["tool_choice"] = {"type": "any"}
        elif opts.tool_choice:
            body["tool_choice"] = {"type": "tool", "name": opts.tool_choice}
        if opts.stop:
            body["stop_sequences"] = list(opts.stop)
        if stream:
            body["stream"] = True
        return body

    def _turns(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages as Anthropic turns: tool results go in a user turn, and consecutive turns of
        one role are merged (the API wants user and assistant to alternate)."""
        turns: list[dict[str, Any]] = []
        for m in messages:
            role = "user" if m["role"] == "tool" else m["role"]
            content = self._content(m.get("content"))
            if turns and turns[-1]["role"] == role:
                prev = turns[-1]["content"]
                if isinstance(prev, str):
                    prev = [{"type": "text", "text": prev}]
                add = [{"type": "text", "text": content}] if isinstance(content, str) else content
                turns[-1]["content"] = prev + add
            else:
                turns.append({"role": role, "content": content})
        return turns

    @staticmethod
    def _content(content: Any) -> Any:
        if isinstance(content, str):
            return content
        out: list[dict[str, Any]] = []
        for p in parts_of(content):
            kind = p.get("type")
            if kind == "image":
                out.append(
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": p["mime_type"], "data": p["data"]},
                    }
                )
            elif kind == "tool_call":
                out.append(
                    {
                        "type": "tool_use",
                        "id": p["id"],
                        "name": p["name"],
                        "input": parse_arguments(p["arguments"]),
                    }
                )
            elif kind == "tool_result":
                out.append({"type": "tool_result", "tool_use_id": p["tool_call_id"], "content": p["content"]})
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
        blocks = data.get("content") or []
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        for b in blocks:
            if b.get("type") == "tool_use":
                arguments = json.dumps(b.get("input") or {}, separators=(",", ":"))
                tally.tool_calls.append(ToolCall(str(b.get("id", "")), str(b.get("name", "")), arguments))
        tally.finish_reason = FINISH.get(data.get("stop_reason") or "", tally.finish_reason)
        tally.add_text(text)
        return text

    async def stream(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> AsyncIterator[Delta]:
        tools: dict[int, int] = {}  # content block index -> tool call index
        async with client.post(self.url, self._body(req, True), self._headers(req)) as resp:
            await raise_for_provider(self.name, resp)
            async for ev in iter_sse(resp):
                data = json.loads(ev.data)
                kind = data.get("type", ev.event)
                if kind == "message_start":
                    usage = (data.get("message") or {}).get("usage") or {}
                    tally.input_tokens = int(usage.get("input_tokens", 0))
                    tally.output_tokens = int(usage.get("output_tokens", 0))
                elif kind == "content_block_start":
                    block = data.get("content_block") or {}
                    if block.get("type") == "tool_use":
                        tools[int(data.get("index", 0))] = len(tools)
                        piece = ToolCallDelta(len(tools) - 1, block.get("id"), block.get("name"), "")
                        tally.add_tool_delta(piece)
                        yield piece
                elif kind == "content_block_delta":
                    delta = data.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        tally.add_text(delta["text"])
                        yield str(delta["text"])
                    elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                        index = tools.get(int(data.get("index", 0)))
                        if index is not None:
                            piece = ToolCallDelta(index, None, None, str(delta["partial_json"]))
                            tally.add_tool_delta(piece)
                            yield piece
                elif kind == "message_delta":
                    stop = (data.get("delta") or {}).get("stop_reason")
                    if stop:
                        tally.finish_reason = FINISH.get(stop, "stop")
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
