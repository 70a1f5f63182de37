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


@dataclass
class ChatRequest:
    """A provider-neutral chat call. Message content is a string or a list of parts:
    {"type": "text", "text": ...} or {"type": "image", "mime_type": ..., "data": <base64>}.
    """

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    api_key: str
    temperature: float | None = None


@dataclass
class Tally:
    """Tokens of one call; streamed calls fill it as chunks arrive, so an
    interrupted stream still reports what was produced."""

    input_tokens: int = 0
    output_tokens: int = 0
    output_chars: int = 0
    reported_output: bool = False
    text_parts: list[str] = field(default_factory=list)

    def add_text(self, text: str) -> None:
        self.text_parts.append(text)
        self.output_chars += len(text)

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

    def stream(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> AsyncIterator[str]: ...


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
