"""Gemini API on the wire: POST /v1beta/models/{model}:generateContent and
:streamGenerateContent (`?alt=sse` as the SDKs ask, or a streamed JSON array without it),
GET /v1beta/models, error JSON {"error": {"code", "message", "status"}}.

Request: contents (user/model turns of text, inlineData, functionCall, functionResponse parts),
systemInstruction, tools[].functionDeclarations, toolConfig.functionCallingConfig,
generationConfig (maxOutputTokens, temperature, stopSequences, responseMimeType,
responseSchema / responseJsonSchema, candidateCount 1). Function calls are sent whole (args
objects), so streamed tool-call pieces are gathered and sent in the last chunk.
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
    schema_from_openapi,
    stop_list,
)
from workers.ai.providers.base import Delta, Options, Tally, ToolCall, parse_arguments
from workers.ai.service import CallResult, CallSpec

NATIVE = "gemini"
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}


def error_body(status: int, message: str) -> dict[str, Any]:
    name = STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return {"error": {"code": status, "message": message, "status": name}}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, param: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def _get(d: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by its JSON (camelCase) or proto (snake_case) name: the API takes both."""
    return d.get(camel, d.get(snake))


def _text_of(content: Any, where: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not all(
        isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts
    ):
        raise bad(f"{where} must be {{parts: [{{text}}]}}")
    return "".join(p["text"] for p in parts)


def parse_contents(raw: Any, system: Any) -> list[dict[str, Any]]:
    raw = check_count(raw, "contents", MAX_MESSAGES)
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append({"role": "system", "content": _text_of(system, "systemInstruction")})
    pending: list[tuple[str, str]] = []  # (call id, name) of function calls not answered yet
    calls = 0
    for i, c in enumerate(raw):
        where = f"contents[{i}]"
        role = c.get("role", "user") if isinstance(c, dict) else None
        parts_in = c.get("parts") if isinstance(c, dict) else None
        if role not in ("user", "model", "function") or not isinstance(parts_in, list) or not parts_in:
            raise bad(f"{where} must be {{role: user|model, parts: [...]}}")
        parts: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for j, p in enumerate(parts_in):
            at = f"{where}.parts[{j}]"
            if not isinstance(p, dict):
                raise bad(f"{at} must be an object")
            inline, call, response = (
                _get(p, "inlineData", "inline_data"),
                _get(p, "functionCall", "function_call"),
                _get(p, "functionResponse", "function_response"),
            )
            if isinstance(p.get("text"), str):
                if p["text"] and not p.get("thought"):
                    parts.append({"type": "text", "text": p["text"]})
            elif isinstance(inline, dict) and role == "user":
                mime = _get(inline, "mimeType", "mime_type")
                if (
                    not isinstance(mime, str)
                    or not mime.startswith("image/")
                    or not isinstance(inline.get("data"), str)
                ):
                    raise bad(f"{at}.inlineData must be an image {{mimeType, data}}")
                parts.append({"type": "image", "mime_type": mime, "data": inline["data"]})
            elif isinstance(call, dict) and role == "model" and isinstance(call.get("name"), str):
                call_id = str(call.get("id") or f"call_{calls}")
                calls += 1
                pending.append((call_id, call["name"]))
                arguments = json.dumps(call.get("args") or {}, separators=(",", ":"))
                parts.append(
                    {"type": "tool_call", "id": call_id, "name": call["name"], "arguments": arguments}
                )
            elif (
                isinstance(response, dict)
                and role in ("user", "function")
                and isinstance(response.get("name"), str)
            ):
                name = response["name"]
                match = next((p for p in pending if p[0] == response.get("id")), None) or next(
                    (p for p in pending if p[1] == name), None
                )
                if match is None:
                    raise bad(f"{at}.functionResponse answers no earlier functionCall named {name}")
                pending.remove(match)
                content = json.dumps(response.get("response") or {}, separators=(",", ":"))
                results.append(
                    {"type": "tool_result", "tool_call_id": match[0], "name": name, "content": content}
                )
            else:
                kinds = "text, inlineData, functionCall, functionResponse"
                raise bad(f"{at}: unsupported part for role {role} ({kinds})")
        out.extend({"role": "tool", "content": [r]} for r in results)
        if parts:
            out.append({"role": "assistant" if role == "model" else "user", "content": parts})
    return out


def _options(data: Mapping[str, Any], config: Mapping[str, Any]) -> Options:
    tools = []
    for i, t in enumerate(data.get("tools") or []):
        decls = _get(t, "functionDeclarations", "function_declarations") if isinstance(t, dict) else None
        if not isinstance(decls, list):
            raise bad(f"tools[{i}]: only functionDeclarations are supported")
        for j, d in enumerate(decls):
            if not isinstance(d, dict):
                raise bad(f"tools[{i}].functionDeclarations[{j}] must be an object")
            params = _get(d, "parametersJsonSchema", "parameters_json_schema")
            if params is None and d.get("parameters") is not None:
                params = schema_from_openapi(d["parameters"])
            tools.append(
                make_tool(
                    d.get("name"), d.get("description"), params, f"tools[{i}].functionDeclarations[{j}]"
                )
            )
    if len(tools) > MAX_TOOLS:
        raise bad(f"at most {MAX_TOOLS} function declarations")
    tool_config = _get(data, "toolConfig", "tool_config") or {}
    fcc = (
        _get(tool_config, "functionCallingConfig", "function_calling_config")
        if isinstance(tool_config, dict)
        else None
    )
    choice: str | None = None
    if isinstance(fcc, dict):
        mode = str(fcc.get("mode", "AUTO")).upper()
        allowed = _get(fcc, "allowedFunctionNames", "allowed_function_names") or []
        if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
            choice = "auto"
        elif mode == "NONE":
            choice = "none"
        elif mode == "ANY":
            choice = allowed[0] if isinstance(allowed, list) and len(allowed) == 1 else "required"
        else:
            raise bad("toolConfig.functionCallingConfig.mode must be AUTO, ANY or NONE")
    response_format: dict[str, Any] | None = None
    schema = _get(config, "responseJsonSchema", "response_json_schema")
    if schema is None and _get(config, "responseSchema", "response_schema") is not None:
        schema = schema_from_openapi(_get(config, "responseSchema", "response_schema"))
    mime = _get(config, "responseMimeType", "response_mime_type")
    if schema is not None:
        if not isinstance(schema, dict):
            raise bad("generationConfig.responseSchema must be an object")
        response_format = {"type": "json_schema", "name": "response", "schema": schema, "strict": None}
    elif mime == "application/json":
        response_format = {"type": "json_object"}
    elif mime not in (None, "text/plain"):
        raise bad("generationConfig.responseMimeType must be text/plain or application/json")
    stop = stop_list(_get(config, "stopSequences", "stop_sequences"), "generationConfig.stopSequences")
    return Options(tuple(tools), choice, response_format, stop)


def parse_request(
    model: str,
    data: Mapping[str, Any],
    headers: Mapping[str, str],
    models: Mapping[str, str],
    default_max_tokens: int,
    stream: bool,
) -> Call:
    ext = extension(data, headers, NATIVE, models)
    target = resolve_target(model, NATIVE, models, ext.key_id, "model")
    config = _get(data, "generationConfig", "generation_config") or {}
    if not isinstance(config, dict):
        raise bad("generationConfig must be an object")
    if _get(config, "candidateCount", "candidate_count") not in (None, 1):
        raise bad("generationConfig.candidateCount must be 1")
    max_tokens = _get(config, "maxOutputTokens", "max_output_tokens")
    spec = CallSpec(
        target,
        parse_contents(data.get("contents"), _get(data, "systemInstruction", "system_instruction")),
        default_max_tokens if max_tokens is None else int_in(max_tokens, "maxOutputTokens", 1, MAX_TOKENS),
        number_or_none(config.get("temperature"), "temperature", 0, 2),
        ext.fallback,
        options=_options(data, config),
    )
    return Call(spec, stream, model, ext.element)


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "promptTokenCount": input_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": input_tokens + output_tokens,
    }


def _calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"functionCall": {"id": c.id, "name": c.name, "args": parse_arguments(c.arguments)}} for c in calls
    ]


def response(call: Call, result: CallResult, model: str) -> dict[str, Any]:
    parts = ([{"text": result.text}] if result.text else []) + _calls(result.tally.tool_calls)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts or [{"text": ""}]},
                "finishReason": FINISH.get(result.tally.finish_reason or "stop", "STOP"),
                "index": 0,
            }
        ],
        "usageMetadata": _usage(result.input_tokens, result.output_tokens),
        "modelVersion": model,
        "responseId": result.usage_id,
        "backline": {
            "usage_id": result.usage_id,
            "provider": result.provider,
            "model": result.model,
            "cost_usd": float(result.cost_usd),
            "fallback_used": result.fallback_used,
        },
    }


class ChunkStream:
    """GenerateContentResponse chunks, as SSE (alt=sse) or as one streamed JSON array."""

    def __init__(self, usage_id: str, model: str, tally: Tally, sse: bool) -> None:
        self.id = usage_id
        self.model = model
        self.tally = tally
        self.sse = sse
        self.sent = 0
        self.closed = False  # the JSON array was closed (by an error)

    def _frame(self, data: dict[str, Any]) -> bytes:
        body = json.dumps(data, separators=(",", ":")).encode()
        self.sent += 1
        if self.sse:
            return b"data: " + body + b"\r\n\r\n"
        return (b"[" if self.sent == 1 else b",\r\n") + body

    def _chunk(self, parts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        candidate = {"content": {"role": "model", "parts": parts}, "index": 0, **extra}
        return {"candidates": [candidate], "modelVersion": self.model, "responseId": self.id}

    def start(self) -> bytes:
        return b""

    def delta(self, piece: Delta) -> bytes:
        if isinstance(piece, str) and piece:
            return self._frame(self._chunk([{"text": piece}]))
        return b""  # tool-call pieces are in the tally; sent whole in the last chunk

    def end(self, tally: Tally, cost: Decimal | None) -> bytes:
        if self.closed:
            return b""
        finish = FINISH.get(tally.finish_reason or "stop", "STOP")
        chunk = self._chunk(_calls(tally.tool_calls) or [{"text": ""}], finishReason=finish)
        chunk["usageMetadata"] = _usage(tally.input_tokens, tally.final_output_tokens())
        out = self._frame(chunk)
        return out if self.sse else out + b"]"

    def error(self, status: int, message: str) -> bytes:
        if self.closed:
            return b""
        out = self._frame(error_body(status, message))
        if self.sse:
            return out
        self.closed = True
        return out + b"]"


def model_list(ids: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": f"models/{i}",
                "displayName": i,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
            }
            for i, _ in ids
        ]
    }
