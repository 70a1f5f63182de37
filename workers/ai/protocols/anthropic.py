"""Anthropic Messages on the wire: POST /v1/messages, GET /v1/models (with anthropic-version),
error JSON {"type": "error", "error": {"type", "message"}}.

Request: model, max_tokens (required, as Anthropic requires it), system, messages with text,
image, tool_use and tool_result blocks, tools + tool_choice, stop_sequences, temperature, stream.
Stream: message_start, then per content block content_block_start / content_block_delta
(text_delta, input_json_delta) / content_block_stop, message_delta (stop_reason, usage),
message_stop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse

from workers.ai.protocols.common import (
    MAX_MESSAGES,
    MAX_TOKENS,
    MAX_TOOLS,
    Call,
    bad,
    check_count,
    extension,
    int_in,
    make_tool,
    number_or_none,
    resolve_target,
    stop_list,
)
from workers.ai.providers.base import Delta, Options, Tally, parse_arguments
from workers.ai.service import CallResult, CallSpec

NATIVE = "anthropic"
ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, param: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def _block_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "".join(str(b.get("text", "")) for b in content)
    raise bad(f"{where} must be a string or a list of text blocks")


def parse_messages(raw: Any, system: Any) -> list[dict[str, Any]]:
    raw = check_count(raw, "messages", MAX_MESSAGES)
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append({"role": "system", "content": _block_text(system, "system")})
    names: dict[str, str] = {}
    for i, m in enumerate(raw):
        where = f"messages.{i}"
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise bad(f"{where}.role must be user or assistant")
        content = m.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list) or not content:
            raise bad(f"{where}.content must be a string or a list of content blocks")
        parts: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for j, b in enumerate(content):
            kind = b.get("type") if isinstance(b, dict) else None
            at = f"{where}.content.{j}"
            if kind == "text" and isinstance(b.get("text"), str):
                if b["text"]:
                    parts.append({"type": "text", "text": b["text"]})
            elif kind == "image" and role == "user":
                source = b.get("source") or {}
                if source.get("type") != "base64" or not isinstance(source.get("data"), str):
                    raise bad(f"{at}: images must be base64 sources")
                parts.append(
                    {"type": "image", "mime_type": str(source.get("media_type")), "data": source["data"]}
                )
            elif kind == "tool_use" and role == "assistant":
                if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                    raise bad(f"{at}: tool_use needs id and name")
                names[b["id"]] = b["name"]
                arguments = json.dumps(b.get("input") or {}, separators=(",", ":"))
                parts.append({"type": "tool_call", "id": b["id"], "name": b["name"], "arguments": arguments})
            elif kind == "tool_result" and role == "user":
                call_id = b.get("tool_use_id")
                if not isinstance(call_id, str):
                    raise bad(f"{at}: tool_result needs tool_use_id")
                text = _block_text(b.get("content", ""), f"{at}.content")
                if b.get("is_error"):
                    text = f"Error: {text}"
                results.append(
                    {
                        "type": "tool_result",
                        "tool_call_id": call_id,
                        "name": names.get(call_id, ""),
                        "content": text,
                    }
                )
            else:
                raise bad(f"{at}: unsupported content block {kind!r} for role {role}")
        out.extend({"role": "tool", "content": [r]} for r in results)
        if parts:
            out.append({"role": role, "content": parts})
    return out


def _options(data: Mapping[str, Any]) -> Options:
    tools = []
    if data.get("tools") is not None:
        for i, t in enumerate(check_count(data["tools"], "tools", MAX_TOOLS)):
            if not isinstance(t, dict) or t.get("type") not in (None, "custom"):
                raise bad(f"tools.{i}: only custom tools {{name, description, input_schema}} are supported")
            tools.append(make_tool(t.get("name"), t.get("description"), t.get("input_schema"), f"tools.{i}"))
    raw = data.get("tool_choice")
    choice: str | None = None
    if raw is not None:
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind in ("auto", "none"):
            choice = kind
        elif kind == "any":
            choice = "required"
        elif kind == "tool" and raw.get("name") in {t.name for t in tools}:
            choice = str(raw["name"])
        else:
            raise bad(
                "tool_choice must be {type: auto|any|none} or {type: tool, name} naming one of the tools"
            )
        if choice != "none" and not tools:
            raise bad("tool_choice needs tools")
    return Options(tuple(tools), choice, None, stop_list(data.get("stop_sequences"), "stop_sequences"))


def parse_request(data: Mapping[str, Any], headers: Mapping[str, str], models: Mapping[str, str]) -> Call:
    ext = extension(data, headers, NATIVE, models)
    target = resolve_target(data.get("model"), NATIVE, models, ext.key_id, "model")
    if "max_tokens" not in data:
        raise bad("max_tokens: Field required")
    stream = data.get("stream")
    if stream not in (None, True, False):
        raise bad("stream must be a boolean")
    spec = CallSpec(
        target,
        parse_messages(data.get("messages"), data.get("system")),
        int_in(data["max_tokens"], "max_tokens", 1, MAX_TOKENS),
        number_or_none(data.get("temperature"), "temperature", 0, 1),
        ext.fallback,
        options=_options(data),
    )
    return Call(spec, stream is True, str(data["model"]), ext.element)


def _stop(tally: Tally) -> str:
    if tally.tool_calls and tally.finish_reason in (None, "stop"):
        return "tool_use"
    return STOP.get(tally.finish_reason or "stop", "end_turn")


def message(call: Call, result: CallResult, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": result.text}] if result.text else []
    for c in result.tally.tool_calls:
        content.append(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": parse_arguments(c.arguments)}
        )
    return {
        "id": f"msg_{result.usage_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop(result.tally),
        "stop_sequence": None,
        "usage": {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens},
        "backline": {
            "usage_id": result.usage_id,
            "provider": result.provider,
            "model": result.model,
            "cost_usd": float(result.cost_usd),
            "fallback_used": result.fallback_used,
        },
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class EventStream:
    """Messages streaming events for one stream: one content block open at a time."""

    def __init__(self, usage_id: str, model: str, tally: Tally) -> None:
        self.id = f"msg_{usage_id}"
        self.model = model
        self.tally = tally
        self.blocks = 0  # content blocks opened so far
        self.open: tuple[str, int] | None = None  # ("text", -1) or ("tool", tool call index)

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.tally.input_tokens, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1})

    def _begin(self, kind: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self._close()
        self.open = kind
        self.blocks += 1
        start = {"type": "content_block_start", "index": self.blocks - 1, "content_block": block}
        return out + _event("content_block_start", start)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta", {"type": "content_block_delta", "index": self.blocks - 1, "delta": delta}
        )

    def delta(self, piece: Delta) -> bytes:
        if isinstance(piece, str):
            if not piece:
                return b""
            out = (
                b"" if self.open == ("text", -1) else self._begin(("text", -1), {"type": "text", "text": ""})
            )
            return out + self._delta({"type": "text_delta", "text": piece})
        out = b""
        if self.open != ("tool", piece.index):
            call = self.tally.tool_calls[piece.index]
            block = {
                "type": "tool_use",
                "id": call.id or f"toolu_{piece.index}",
                "name": call.name,
                "input": {},
            }
            out = self._begin(("tool", piece.index), block)
        if piece.arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": piece.arguments})
        return out

    def end(self, tally: Tally, cost: Decimal | None) -> bytes:
        usage = {"input_tokens": tally.input_tokens, "output_tokens": tally.final_output_tokens()}
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop(tally), "stop_sequence": None},
            "usage": usage,
        }
        return (
            self._close() + _event("message_delta", delta) + _event("message_stop", {"type": "message_stop"})
        )

    def error(self, status: int, message: str) -> bytes:
        return _event("error", error_body(status, message))


def model_list(ids: list[tuple[str, str]]) -> dict[str, Any]:
    data = [
        {"type": "model", "id": i, "display_name": i, "created_at": "1970-01-01T00:00:00Z"} for i, _ in ids
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
