"""Types shared by the adapters, the SSE reader and the error model."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from workers.ai.http_client import ProviderClient, ProviderResponse

MODEL_MAX_LEN = 200
_MODEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
# Providers whose model name becomes a URL path segment (Gemini: .../v1beta/models/<model>:generateContent).
# There a "/" (or a dot segment, which URL normalisation resolves) would let a caller reach any other
# API method with the operator's key, so the model must stay one plain segment.
_MODEL_IN_PATH = frozenset({"gemini"})


def model_error(provider: str, model: object) -> str | None:
    """Why `model` is not an acceptable model name for `provider` (one readable line), or None.

    Every target (HTTP API, queue request, fallback) is checked here before anything is
    admitted or sent: 1-200 characters of letters, digits and . _ : / @ + - starting with a
    letter or digit, no ".." path segment, and no "/" at all where the model goes into the URL.
    """
    if not isinstance(model, str) or not 1 <= len(model) <= MODEL_MAX_LEN:
        return f"model must be a non-empty string of at most {MODEL_MAX_LEN} characters"
    if not _MODEL_RE.fullmatch(model):
        return "model may only contain letters, digits and . _ : / @ + - (starting with a letter or digit)"
    if ".." in model.split("/"):
        return "model must not contain a '..' path segment"
    if provider in _MODEL_IN_PATH and "/" in model:
        return f"model cannot contain '/' for {provider} (use the bare name, e.g. gemini-2.0-flash)"
    return None


@dataclass(frozen=True)
class Tool:
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str | None
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Options:
    """What the SDK-compatible routes add to a call (all optional; /v1/generate sets none).

    tool_choice: "auto" | "none" | "required" | the name of one tool that must be called.
    response_format: None | {"type": "json_object"} | {"type": "json_schema", "name", "schema", "strict"}.
    """

    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None
    response_format: dict[str, Any] | None = None
    stop: tuple[str, ...] = ()


NO_OPTIONS = Options()


@dataclass
class ChatRequest:
    """A provider-neutral chat call. Message role is system|user|assistant|tool; content is a
    string or a list of parts: {"type": "text", "text"}, {"type": "image", "mime_type", "data"
    (base64)}, {"type": "tool_call", "id", "name", "arguments" (JSON text)} (assistant) and
    {"type": "tool_result", "tool_call_id", "name", "content" (text)} (role tool).
    """

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    api_key: str
    temperature: float | None = None
    options: Options = NO_OPTIONS


@dataclass
class ToolCallDelta:
    """A streamed piece of the `index`-th tool call: id and name come with its first piece."""

    index: int
    id: str | None
    name: str | None
    arguments: str


# What a provider stream yields: text, or a piece of a tool call.
Delta = str | ToolCallDelta


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it


@dataclass
class Tally:
    """Tokens of one call; streamed calls fill it as chunks arrive, so an
    interrupted stream still reports what was produced."""

    input_tokens: int = 0
    output_tokens: int = 0
    output_chars: int = 0
    reported_output: bool = False
    text_parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    # Normalized: "stop" | "length" | "tool_calls" | "content_filter" (None: not reported).
    finish_reason: str | None = None

    def add_text(self, text: str) -> None:
        self.text_parts.append(text)
        self.output_chars += len(text)

    def add_tool_delta(self, delta: ToolCallDelta) -> None:
        """Grow the tool calls from a streamed piece (counted like text for the estimate)."""
        while len(self.tool_calls) <= delta.index:
            self.tool_calls.append(ToolCall("", "", ""))
        call = self.tool_calls[delta.index]
        call.id = delta.id or call.id
        call.name = delta.name or call.name
        call.arguments += delta.arguments
        self.output_chars += len(delta.arguments) + len(delta.name or "")

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def final_output_tokens(self) -> int:
        """Provider-reported output tokens, else an estimate from the streamed text (~4 chars/token)."""
        if self.reported_output:
            return self.output_tokens
        return max(self.output_tokens, (self.output_chars + 3) // 4)


class ProviderError(Exception):
    """A provider call failed. status: upstream HTTP status (None = no response)."""

    def __init__(self, provider: str, status: int | None, message: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.message = message
        self.key_ref = f"the {provider} API key"

    @property
    def retryable(self) -> bool:
        """Worth a fallback: the provider is down or broken, not the request."""
        return self.status is None or self.status >= 500

    @property
    def bad_key(self) -> bool:
        return self.status in (401, 403)


class Provider(Protocol):
    name: str

    async def complete(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> str: ...

    def stream(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> AsyncIterator[Delta]: ...


@dataclass
class SSEEvent:
    event: str
    data: str


async def iter_sse(resp: ProviderResponse) -> AsyncIterator[SSEEvent]:
    """Server-sent events from a streaming response (event/data fields, blank-line framed)."""
    event = ""
    data: list[str] = []
    async for line in resp.aiter_lines():
        if line == "":
            if data:
                yield SSEEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield SSEEvent(event or "message", "\n".join(data))


async def raise_for_provider(provider: str, resp: ProviderResponse) -> None:
    """Turn a provider error response into ProviderError with the provider's own message."""
    if resp.status_code < 400:
        return
    body = (await resp.aread()).decode(errors="replace")
    message = body[:300]
    try:
        parsed = json.loads(body)
        err = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or message)[:300]
    except ValueError:
        pass
    raise ProviderError(provider, resp.status_code, message)


def split_system(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """Anthropic and Gemini take the system prompt separately."""
    system = [m for m in messages if m.get("role") == "system"]
    rest = [m for m in messages if m.get("role") != "system"]
    text = "\n\n".join(c if isinstance(c := m.get("content"), str) else "" for m in system)
    return (text or None), rest


def parts_of(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def json_instruction(fmt: dict[str, Any] | None) -> str | None:
    """The system-prompt line that asks for JSON where a provider has no JSON mode to set."""
    if fmt is None:
        return None
    if fmt.get("type") == "json_schema":
        schema = json.dumps(fmt.get("schema") or {}, separators=(",", ":"))
        return f"Answer only with one JSON value that matches this JSON Schema: {schema}"
    return "Answer only with one JSON object."


def parse_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as an object (providers that take objects, not text)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
