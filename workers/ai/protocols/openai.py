"""OpenAI Chat Completions on the wire: POST /v1/chat/completions, GET /v1/models, error JSON.

Request: messages (system/developer/user/assistant/tool), tools + tool_choice, response_format
(json_object / json_schema), max_tokens or max_completion_tokens, temperature, stop, n=1, stream
with stream_options.include_usage. Stream: `chat.completion.chunk` events (role first, content and
tool_calls deltas, a finish chunk, the usage chunk with empty choices when asked), then [DONE].
"""

from __future__ import annotations

import json
import time
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
    data_url,
    extension,
    int_in,
    make_tool,
    number_or_none,
    resolve_target,
    stop_list,
)
from workers.ai.providers.base import Delta, Options, Tally, ToolCall
from workers.ai.service import CallResult, CallSpec

NATIVE = "openai"
# HTTP status -> (error.type, error.code) as OpenAI sends them.
ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
    501: ("invalid_request_error", "not_implemented"),
    503: ("server_error", "service_unavailable"),
}


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    kind, code = ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, param: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


def _text(content: Any, where: str) -> str:
    """A content that must be text: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") in ("text", "refusal") for p in content
    ):
        return "".join(str(p.get("text") or p.get("refusal") or "") for p in content)
    raise bad(f"{where} must be a string or a list of text parts", where)


def _user_content(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        raise bad(f"{where} must be a string or a list of content parts", where)
    parts: list[dict[str, Any]] = []
    for i, p in enumerate(content):
        kind = p.get("type") if isinstance(p, dict) else None
        if kind == "text" and isinstance(p.get("text"), str):
            parts.append({"type": "text", "text": p["text"]})
        elif kind == "image_url" and isinstance(p.get("image_url"), dict):
            parts.append(data_url(p["image_url"].get("url"), f"{where}[{i}].image_url.url"))
        else:
            raise bad(f"{where}[{i}] must be a text or image_url part", f"{where}[{i}]")
    return parts


def parse_messages(raw: Any) -> list[dict[str, Any]]:
    raw = check_count(raw, "messages", MAX_MESSAGES)
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name (Gemini's function responses need it)
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _text(m.get("content"), f"{where}.content")})
        elif role == "user":
            out.append({"role": "user", "content": _user_content(m.get("content"), f"{where}.content")})
        elif role == "assistant":
            content = m.get("content")
            text = "" if content is None else _text(content, f"{where}.content")
            calls = m.get("tool_calls") or []
            if not isinstance(calls, list):
                raise bad(f"{where}.tool_calls must be a list", f"{where}.tool_calls")
            parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for j, c in enumerate(calls):
                fn = c.get("function") if isinstance(c, dict) else None
                if (
                    not isinstance(fn, dict)
                    or not isinstance(c.get("id"), str)
                    or not isinstance(fn.get("name"), str)
                ):
                    raise bad(
                        f"{where}.tool_calls[{j}] needs id and function.name", f"{where}.tool_calls[{j}]"
                    )
                arguments = fn.get("arguments") or "{}"
                if not isinstance(arguments, str):
                    raise bad(f"{where}.tool_calls[{j}].function.arguments must be a JSON string")
                names[c["id"]] = fn["name"]
                parts.append({"type": "tool_call", "id": c["id"], "name": fn["name"], "arguments": arguments})
            if not parts:
                raise bad(f"{where} needs content or tool_calls", f"{where}.content")
            out.append({"role": "assistant", "content": text if not calls else parts})
        elif role == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise bad(f"{where}.tool_call_id is required", f"{where}.tool_call_id")
            result = {
                "type": "tool_result",
                "tool_call_id": call_id,
                "name": names.get(call_id, ""),
                "content": _text(m.get("content"), f"{where}.content"),
            }
            out.append({"role": "tool", "content": [result]})
        else:
            raise bad(f"{where}.role must be system, developer, user, assistant or tool", f"{where}.role")
    return out


def _options(data: Mapping[str, Any]) -> Options:
    tools = []
    if data.get("tools") is not None:
        for i, t in enumerate(check_count(data["tools"], "tools", MAX_TOOLS)):
            fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
            if not isinstance(fn, dict):
                raise bad(
                    f"tools[{i}] must be {{type: function, function: {{name, parameters}}}}", f"tools[{i}]"
                )
            tools.append(
                make_tool(fn.get("name"), fn.get("description"), fn.get("parameters"), f"tools[{i}].function")
            )
    choice = data.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str) or name not in {t.name for t in tools}:
            raise bad("tool_choice must name one of the tools", "tool_choice")
        choice = name
    elif choice is not None and choice not in ("auto", "none", "required"):
        raise bad(
            "tool_choice must be auto, none, required or {type: function, function: {name}}", "tool_choice"
        )
    if choice == "required" and not tools:
        raise bad("tool_choice required needs tools", "tool_choice")
    fmt = data.get("response_format")
    response_format: dict[str, Any] | None = None
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_object":
            response_format = {"type": "json_object"}
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
                raise bad("response_format.json_schema must be {name, schema, strict}", "response_format")
            response_format = {
                "type": "json_schema",
                "name": spec.get("name") or "response",
                "schema": spec.get("schema") or {},
                "strict": spec.get("strict"),
            }
        elif kind != "text":
            raise bad("response_format.type must be text, json_object or json_schema", "response_format")
    return Options(tuple(tools), choice, response_format, stop_list(data.get("stop"), "stop"))


def parse_request(
    data: Mapping[str, Any], headers: Mapping[str, str], models: Mapping[str, str], default_max_tokens: int
) -> Call:
    ext = extension(data, headers, NATIVE, models)
    target = resolve_target(data.get("model"), NATIVE, models, ext.key_id, "model")
    if data.get("n") not in (None, 1):
        raise bad("n must be 1: one choice per request", "n")
    name = "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = data.get(name)
    max_tokens = default_max_tokens if max_tokens is None else int_in(max_tokens, name, 1, MAX_TOKENS)
    stream = data.get("stream")
    if stream not in (None, True, False):
        raise bad("stream must be a boolean", "stream")
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("stream_options must be an object", "stream_options")
    spec = CallSpec(
        target,
        parse_messages(data.get("messages")),
        max_tokens,
        number_or_none(data.get("temperature"), "temperature", 0, 2),
        ext.fallback,
        options=_options(data),
    )
    return Call(spec, stream is True, str(data["model"]), ext.element, options.get("include_usage") is True)


FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}


def _finish(tally: Tally) -> str:
    if tally.tool_calls and tally.finish_reason in (None, "stop"):
        return "tool_calls"
    return FINISH.get(tally.finish_reason or "stop", "stop")


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def completion(call: Call, result: CallResult, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None, "refusal": None}
    if result.tally.tool_calls:
        message["tool_calls"] = _calls(result.tally.tool_calls)
    elif message["content"] is None:
        message["content"] = ""
    return {
        "id": f"chatcmpl-{result.usage_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(result.tally)}
        ],
        "usage": _usage(result.input_tokens, result.output_tokens),
        "backline": {
            "usage_id": result.usage_id,
            "provider": result.provider,
            "model": result.model,
            "cost_usd": float(result.cost_usd),
            "fallback_used": result.fallback_used,
        },
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class ChunkStream:
    """chat.completion.chunk events for one stream."""

    def __init__(self, call: Call, usage_id: str, model: str) -> None:
        self.base: dict[str, Any] = {
            "id": f"chatcmpl-{usage_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self.include_usage = call.include_usage
        self.started: set[int] = set()  # tool calls whose id and name were sent

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            **self.base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return _sse(chunk)

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def delta(self, piece: Delta) -> bytes:
        if isinstance(piece, str):
            return self._chunk({"content": piece}) if piece else b""
        entry: dict[str, Any] = {"index": piece.index}
        if piece.index not in self.started:
            self.started.add(piece.index)
            entry.update(
                id=piece.id or f"call_{piece.index}",
                type="function",
                function={"name": piece.name or "", "arguments": piece.arguments},
            )
        else:
            entry["function"] = {"arguments": piece.arguments}
        return self._chunk({"tool_calls": [entry]})

    def end(self, tally: Tally, cost: Decimal | None) -> bytes:
        out = self._chunk({}, _finish(tally))
        if self.include_usage:
            usage = _usage(tally.input_tokens, tally.final_output_tokens())
            out += _sse({**self.base, "choices": [], "usage": usage})
        return out + b"data: [DONE]\n\n"

    def error(self, status: int, message: str) -> bytes:
        return _sse(error_body(status, message))


def model_list(ids: list[tuple[str, str]]) -> dict[str, Any]:
    """GET /v1/models: (model id, owner) pairs."""
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": owner} for i, owner in ids],
    }
