"""What the SDK-compatible routes share: the parsed call, model routing, the `backline`
extension (stored key, fallback, room chat) and the stream renderer interface.

Each protocol module (openai, anthropic, gemini) turns its wire request into a `Call`
(one provider-neutral CallSpec, see providers/base.ChatRequest for the message parts) and
renders the neutral result or stream back in its own wire format; admission, the provider
call, fallback and settlement are the one shared path in app.ProxyApp.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from workers.ai.providers import PROVIDER_NAMES, model_error
from workers.ai.providers.base import Delta, Tally, Tool
from workers.ai.service import CallSpec, Target

MAX_MESSAGES = 200
MAX_TOOLS = 128
MAX_STOP = 4
MAX_TOKENS = 32000
KEY_HEADER = "x-backline-key-id"
FALLBACK_HEADER = "x-backline-fallback"
FALLBACK_KEY_HEADER = "x-backline-fallback-key-id"
CHAT_HEADER = "x-backline-chat-element"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class HTTPError(Exception):
    """A refusal the route answers itself; `param` names the offending request field (OpenAI)."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.param = param


def bad(message: str, param: str | None = None) -> HTTPError:
    return HTTPError(400, message, param=param)


@dataclass
class Call:
    """One parsed SDK request, ready for the shared call path."""

    spec: CallSpec
    stream: bool
    model: str  # as the client named it (echoed back unless a fallback answered)
    element: str | None = None  # room chat element the answer is appended to
    include_usage: bool = False  # OpenAI stream_options.include_usage


class StreamRenderer(Protocol):
    """Renders the neutral stream as one protocol's SSE bytes (b"" = nothing to send)."""

    def start(self) -> bytes: ...

    def delta(self, piece: Delta) -> bytes: ...

    def end(self, tally: Tally, cost: Decimal | None) -> bytes: ...

    def error(self, status: int, message: str) -> bytes: ...


def answered_model(call: Call, provider: str, model: str, fallback_used: bool) -> str:
    """The model name a response reports: the requested name, or the fallback's provider/model."""
    return f"{provider}/{model}" if fallback_used else call.model


def backline_headers(usage_id: str, provider: str, model: str, fallback: bool) -> dict[str, str]:
    """The extension headers on every answer (also on streams, where no body field fits)."""
    return {
        "x-backline-usage-id": usage_id,
        "x-backline-provider": provider,
        "x-backline-model": model,
        "x-backline-fallback-used": "true" if fallback else "false",
    }


def _uuid(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise bad(f"{where} must be a key id (uuid)", where)
    return value


def resolve_target(
    name: Any, native: str, models: Mapping[str, str], key_id: str | None, param: str
) -> Target:
    """The provider and model a requested name means.

    A name configured in BACKLINE_AI_MODELS maps to its "provider/model"; "provider/model" with a
    known provider prefix names both; any other name is a model of the route's own provider
    (`native`: openai for /v1/chat/completions, anthropic for /v1/messages, gemini for /v1beta).
    """
    if not isinstance(name, str) or not name:
        raise bad(f"{param} must be a non-empty string", param)
    mapped = models.get(name, name)
    provider, sep, model = mapped.partition("/")
    if not sep or provider not in PROVIDER_NAMES:
        provider, model = native, mapped
    error = model_error(provider, model)
    if error:
        raise bad(f"{param}: {error}", param)
    return Target(provider, model, key_id)


@dataclass(frozen=True)
class Extension:
    """Backline's additions to a standard request, from the body's `backline` object or headers."""

    key_id: str | None
    element: str | None
    fallback: Target | None


def extension(
    data: Mapping[str, Any], headers: Mapping[str, str], native: str, models: Mapping[str, str]
) -> Extension:
    raw = data.get("backline")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad("backline must be an object {key_id, chat_element_id, fallback}", "backline")
    key_id = _uuid(raw.get("key_id", headers.get(KEY_HEADER)), "backline.key_id")
    element = _uuid(raw.get("chat_element_id", headers.get(CHAT_HEADER)), "backline.chat_element_id")
    fb = raw.get("fallback")
    if fb is None and headers.get(FALLBACK_HEADER):
        fb = {"model": headers[FALLBACK_HEADER], "key_id": headers.get(FALLBACK_KEY_HEADER)}
    if isinstance(fb, str):
        fb = {"model": fb}
    fallback = None
    if fb is not None:
        if not isinstance(fb, dict):
            raise bad("backline.fallback must be a model name or {model, key_id}", "backline.fallback")
        fb_key = _uuid(fb.get("key_id"), "backline.fallback.key_id")
        fallback = resolve_target(fb.get("model"), native, models, fb_key, "backline.fallback.model")
    return Extension(key_id, element, fallback)


def int_in(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad(f"{name} must be an integer between {low} and {high}", name)
    return value


def number_or_none(value: Any, name: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise bad(f"{name} must be a number between {low:g} and {high:g}", name)
    return float(value)


def stop_list(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or len(items) > MAX_STOP
        or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in items)
    ):
        raise bad(f"{name} must be a string or a list of at most {MAX_STOP} strings", name)
    return tuple(items)


def make_tool(name: Any, description: Any, parameters: Any, where: str) -> Tool:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", name):
        raise bad(f"{where}.name must be 1-128 letters, digits, _ . : -", f"{where}.name")
    if description is not None and not isinstance(description, str):
        raise bad(f"{where}.description must be a string", f"{where}.description")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise bad(f"{where} parameters must be a JSON Schema object", where)
    return Tool(name, description or None, parameters)


def check_count(items: Any, name: str, high: int) -> list[Any]:
    if not isinstance(items, list) or not 1 <= len(items) <= high:
        raise bad(f"{name} must be a list of 1-{high} items", name)
    return items


def data_url(url: Any, where: str) -> dict[str, Any]:
    """An inline image: providers other than OpenAI take no remote URLs, so only data: URLs."""
    match = (
        re.fullmatch(r"data:(image/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)", url or "")
        if isinstance(url, str)
        else None
    )
    if match is None:
        raise bad(f"{where} must be a data:image/...;base64 URL", where)
    return {"type": "image", "mime_type": match.group(1), "data": match.group(2)}


def schema_from_openapi(schema: Any) -> Any:
    """Gemini's OpenAPI-style Schema ("type": "OBJECT") as JSON Schema ("type": "object")."""
    if isinstance(schema, list):
        return [schema_from_openapi(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {k: schema_from_openapi(v) for k, v in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            out[key] = schema_from_openapi(value)
        elif key not in ("nullable", "propertyOrdering"):
            out[key] = value
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out
