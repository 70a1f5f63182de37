"""Google Gemini API: models/{model}:generateContent and :streamGenerateContent?alt=sse."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from workers.ai.http_client import ProviderClient, ProviderResponse
from workers.ai.providers.base import (
    ChatRequest,
    Delta,
    ProviderError,
    Tally,
    ToolCall,
    ToolCallDelta,
    iter_sse,
    model_error,
    parse_arguments,
    parts_of,
    raise_for_provider,
    split_system,
)

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
}


async def _raise(name: str, resp: ProviderResponse) -> None:
    """Gemini answers a bad API key with 400 INVALID_ARGUMENT ("API key not valid"): report it as 401."""
    try:
        await raise_for_provider(name, resp)
    except ProviderError as exc:
        if exc.status == 400 and "api key" in exc.message.lower():
            raise ProviderError(name, 401, exc.message) from None
        raise


class GeminiProvider:
    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self.base = base_url.rstrip("/") + "/v1beta/models/"

    def _body(self, req: ChatRequest) -> dict[str, Any]:
        system, rest = split_system(req.messages)
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m["role"] == "assistant" else "user",
                    "parts": self._parts(m.get("content")),
                }
                for m in rest
            ],
            "generationConfig": {"maxOutputTokens": req.max_tokens},
        }
        config = body["generationConfig"]
        if req.temperature is not None:
            config["temperature"] = req.temperature
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        opts = req.options
        if opts.stop:
            config["stopSequences"] = list(opts.stop)
        fmt = opts.response_format
        if fmt:
            config["responseMimeType"] = "application/json"
            if fmt.get("type") == "json_schema" and fmt.get("schema"):
                config["responseJsonSchema"] = fmt["schema"]
        if opts.tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": t.name,
                            **({"description": t.description} if t.description else {}),
                            "parametersJsonSchema": t.parameters,
                        }
                        for t in opts.tools
                    ]
                }
            ]
        if opts.tool_choice in ("auto", "none", "required"):
            mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[opts.tool_choice]
            body["toolConfig"] = {"functionCallingConfig": {"mode": mode}}
        elif opts.tool_choice:
            body["toolConfig"] = {
                "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [opts.tool_choice]}
            }
        return body

    @staticmethod
    def _parts(content: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for p in parts_of(content):
            kind = p.get("type")
            if kind == "image":
                out.append({"inline_data": {"mime_type": p["mime_type"], "data": p["data"]}})
            elif kind == "tool_call":
                out.append({"functionCall": {"name": p["name"], "args": parse_arguments(p["arguments"])}})
            elif kind == "tool_result":
                response = {"content": p["content"]}
                out.append({"functionResponse": {"name": p.get("name") or "", "response": response}})
            else:
                out.append({"text": p.get("text", "")})
        return out

    def _url(self, req: ChatRequest, method: str) -> str:
        """models/<model>:<method>. The model was validated when the target was parsed; checked
        again and percent-encoded here so that nothing can leave the models/<model> segment
        (a "/" or dot segment would reach other API methods with the operator's key)."""
        error = model_error(self.name, req.model)
        if error:
            raise ProviderError(self.name, 400, error)
        return f"{self.base}{quote(req.model, safe='')}:{method}"

    def _headers(self, req: ChatRequest) -> dict[str, str]:
        return {"x-goog-api-key": req.api_key, "content-type": "application/json"}

    @staticmethod
    def _absorb(data: dict[str, Any], tally: Tally) -> tuple[str, list[ToolCallDelta]]:
        """The text and the (whole) function calls of one response or stream chunk."""
        usage = data.get("usageMetadata") or {}
        if usage:
            tally.input_tokens = int(usage.get("promptTokenCount", tally.input_tokens))
            if "candidatesTokenCount" in usage:
                tally.output_tokens = int(usage["candidatesTokenCount"])
                tally.reported_output = True
        candidates = data.get("candidates") or []
        if not candidates:
            return "", []
        reason = candidates[0].get("finishReason")
        if reason:
            tally.finish_reason = FINISH.get(reason, "stop")
        parts = (candidates[0].get("content") or {}).get("parts") or []
        calls: list[ToolCallDelta] = []
        for p in parts:
            fn = p.get("functionCall")
            if isinstance(fn, dict):
                index = len(tally.tool_calls) + len(calls)
                arguments = json.dumps(fn.get("args") or {}, separators=(",", ":"))
                calls.append(
                    ToolCallDelta(index, str(fn.get("id") or f"call_{index}"), str(fn.get("name")), arguments)
                )
        if calls and tally.finish_reason == "stop":
            tally.finish_reason = "tool_calls"
        return "".join(str(p.get("text", "")) for p in parts if not p.get("thought")), calls

    async def complete(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> str:
        url = self._url(req, "generateContent")
        async with client.post(url, self._body(req), self._headers(req)) as resp:
            await _raise(self.name, resp)
            data = json.loads(await resp.aread())
        if not isinstance(data, dict):
            raise ProviderError(self.name, 502, "malformed generateContent response")
        text, calls = self._absorb(data, tally)
        for call in calls:
            tally.tool_calls.append(ToolCall(call.id or "", call.name or "", call.arguments))
        tally.add_text(text)
        return text

    async def stream(self, client: ProviderClient, req: ChatRequest, tally: Tally) -> AsyncIterator[Delta]:
        url = self._url(req, "streamGenerateContent") + "?alt=sse"
        async with client.post(url, self._body(req), self._headers(req)) as resp:
            await _raise(self.name, resp)
            async for ev in iter_sse(resp):
                data = json.loads(ev.data)
                if "error" in data:
                    raise ProviderError(
                        self.name, 502, str(data["error"].get("message", "stream error"))[:300]
                    )
                text, calls = self._absorb(data, tally)
                if text:
                    tally.add_text(text)
                    yield text
                for call in calls:
                    tally.add_tool_delta(call)
                    yield call
                if tally.tool_calls and tally.finish_reason == "stop":
                    tally.finish_reason = "tool_calls"
