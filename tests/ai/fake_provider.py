"""A local fake of the OpenAI, Anthropic and Gemini HTTP APIs (real wire formats, real HTTP).

Behaviour is chosen by the model name:
  *fail500*  -> HTTP 500 with the provider's error JSON
  *slow*     -> streams one chunk every 50 ms (20 chunks)
  *latestart* -> (OpenAI) waits 0.8 s before the first content chunk of a stream
OpenAI JSON answers set a cookie (as CDNs in front of real providers do; `cookie = None` stops it).
Any api key starting with "bad" -> 401 with the provider's auth error body.
Every request is recorded (path, headers, JSON body) in `FakeProvider.requests`.

Tools and structured output, in each provider's own wire format (JSON and streamed):
  tools offered (tool choice not "none") and the last turn is not a tool result -> a call of the
  forced tool (else the first) with arguments TOOL_ARGS; OpenAI tool_calls (streamed as an id/name
  piece then argument fragments), Anthropic tool_use blocks (input_json_delta), Gemini functionCall.
  JSON asked for (OpenAI response_format, Gemini responseMimeType application/json, Anthropic's
  system prompt asking for JSON) -> JSON_ANSWER as the text.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WORDS = ["Hello", " from", " the", " fake", " provider", "."]
TOOL_ARGS = {"location": "Paris", "unit": "celsius"}
JSON_ANSWER = '{"name": "Ada Lovelace", "born": 1815}'
TOOL_TOKENS = 7  # output tokens a fake tool call reports


def _pieces(text: str, n: int = 3) -> list[str]:
    """`text` in n streamed fragments."""
    step = max(1, -(-len(text) // n))
    return [text[i : i + step] for i in range(0, len(text), step)]


def _openai_plan(body: dict[str, Any]) -> tuple[str, str]:
    """("tool", name) | ("json", "") | ("text", "") for an OpenAI chat request."""
    tools, choice = body.get("tools") or [], body.get("tool_choice")
    last = (body.get("messages") or [{}])[-1]
    if tools and choice != "none" and last.get("role") != "tool":
        name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
        return "tool", name
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        return "json", ""
    return "text", ""


def _anthropic_plan(body: dict[str, Any]) -> tuple[str, str]:
    tools, choice = body.get("tools") or [], body.get("tool_choice") or {}
    last = (body.get("messages") or [{}])[-1].get("content")
    answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    if tools and choice.get("type") != "none" and not answered:
        return "tool", choice.get("name") or tools[0]["name"]
    if "JSON" in str(body.get("system") or ""):
        return "json", ""
    return "text", ""


def _gemini_plan(body: dict[str, Any]) -> tuple[str, str]:
    decls = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    last = (body.get("contents") or [{}])[-1].get("parts") or []
    answered = any("functionResponse" in p for p in last)
    if decls and config.get("mode") != "NONE" and not answered:
        allowed = config.get("allowedFunctionNames") or []
        return "tool", allowed[0] if allowed else decls[0]["name"]
    if (body.get("generationConfig") or {}).get("responseMimeType") == "application/json":
        return "json", ""
    return "text", ""


def chunks_for(model: str, max_tokens: int | None = None) -> list[str]:
    words = [f"w{i} " for i in range(20)] if "slow" in model else WORDS
    return words[:max_tokens] if max_tokens else words


class FakeProvider:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        # Set on OpenAI JSON answers, like a CDN's bot cookie (None: no cookie, e.g. in the bench).
        self.cookie: str | None = "fake_session=first-caller; Path=/"
        self.detect_answer = '{"items": [{"name": "vinyl record", "confidence": 0.93, "category": "music"}]}'
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.openai, methods=["POST"]),
                Route("/v1/messages", self.anthropic, methods=["POST"]),
                Route("/v1beta/models/{rest:path}", self.gemini, methods=["POST"]),
                Route("/auth/v1/.well-known/jwks.json", self.jwks_endpoint, methods=["GET"]),
                Route(
                    "/storage/v1/object/authenticated/{bucket}/{path:path}",
                    self.storage_object,
                    methods=["GET"],
                ),
            ]
        )
        # Fake Supabase Storage: {(bucket, path): (allowed bearer token, mime, bytes)}
        self.objects: dict[tuple[str, str], tuple[str, str, bytes]] = {}
        self.jwks: dict[str, Any] = {"keys": []}
        self.jwks_fetches = 0
        self.server: uvicorn.Server | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> str:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        thread = threading.Thread(target=self.server.run, daemon=True)
        thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self.server:
            self.server.should_exit = True

    async def _record(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append(
            {
                "path": request.url.path,
                "query": str(request.url.query),
                "headers": dict(request.headers),
                "body": body,
                "at": time.time(),  # wall clock, comparable with the database's clock_timestamp()
            }
        )
        return dict(body)

    def _answer(self, body_text: str) -> list[str]:
        return [self.detect_answer] if "Answer only with JSON" in body_text else WORDS

    async def jwks_endpoint(self, request: Request) -> Response:
        self.jwks_fetches += 1
        return JSONResponse(self.jwks)

    async def storage_object(self, request: Request) -> Response:
        found = self.objects.get((request.path_params["bucket"], request.path_params["path"]))
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if found is None or found[0] != token:
            return JSONResponse(
                {"statusCode": "404", "error": "not_found", "message": "Object not found"}, 400
            )
        return Response(found[2], media_type=found[1])

    # -- OpenAI ---------------------------------------------------------------------------
    async def openai(self, request: Request) -> Response:
        body = await self._record(request)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key.startswith("bad"):
            return JSONResponse(
                {
                    "error": {
                        "message": "Incorrect API key provided: bad***.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                401,
            )
        model = body["model"]
        if "fail500" in model:
            return JSONResponse(
                {"error": {"message": "The server had an error", "type": "server_error"}}, 500
            )
        plan, tool = _openai_plan(body)
        words = (
            chunks_for(model, body.get("max_tokens"))
            if body.get("stream")
            else self._answer(json.dumps(body))
        )
        if plan == "json":
            words = _pieces(JSON_ANSWER)
        elif plan == "tool" and body.get("stream"):
            words = []
        arguments = json.dumps(TOOL_ARGS)
        out_tokens = TOOL_TOKENS if plan == "tool" else len(words)
        prompt_tokens = sum(len(json.dumps(m)) for m in body["messages"]) // 4
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(words)}
            if plan == "tool":
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_fake1",
                            "type": "function",
                            "function": {"name": tool, "arguments": arguments},
                        }
                    ],
                }
            return JSONResponse(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": "tool_calls" if plan == "tool" else "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": out_tokens,
                        "total_tokens": prompt_tokens + out_tokens,
                    },
                },
                # Like a CDN's bot cookie: a shared client must not replay it for the next user.
                headers={"set-cookie": self.cookie} if self.cookie else None,
            )

        async def gen() -> AsyncIterator[bytes]:
            base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
            first = {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
            }
            yield f"data: {json.dumps(first)}\n\n".encode()
            if "latestart" in model:
                await asyncio.sleep(0.8)
            if plan == "tool":
                head = {"index": 0, "id": "call_fake1", "type": "function"}
                deltas = [{**head, "function": {"name": tool, "arguments": ""}}] + [
                    {"index": 0, "function": {"arguments": piece}} for piece in _pieces(arguments)
                ]
                for d in deltas:
                    chunk = {
                        **base,
                        "choices": [{"index": 0, "delta": {"tool_calls": [d]}, "finish_reason": None}],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
            for w in words:
                if "slow" in model:
                    await asyncio.sleep(0.05)
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            finish = "tool_calls" if plan == "tool" else "stop"
            stop = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            yield f"data: {json.dumps(stop)}\n\n".encode()
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": out_tokens,
                    "total_tokens": prompt_tokens + out_tokens,
                }
                yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    # -- Anthropic ------------------------------------------------------------------------
    async def anthropic(self, request: Request) -> Response:
        body = await self._record(request)
        if request.headers.get("x-api-key", "").startswith("bad"):
            return JSONResponse(
                {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
                401,
            )
        if request.headers.get("anthropic-version") != "2023-06-01":
            return JSONResponse(
                {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "anthropic-version required"},
                },
                400,
            )
        model = body["model"]
        if "fail500" in model:
            return JSONResponse({"type": "error", "error": {"type": "api_error", "message": "Internal"}}, 500)
        plan, tool = _anthropic_plan(body)
        words = (
            chunks_for(model, body.get("max_tokens"))
            if body.get("stream")
            else self._answer(json.dumps(body))
        )
        if plan == "json":
            words = _pieces(JSON_ANSWER)
        elif plan == "tool" and body.get("stream"):
            words = []
        out_tokens = TOOL_TOKENS if plan == "tool" else len(words)
        stop_reason = "tool_use" if plan == "tool" else "end_turn"
        in_tokens = len(json.dumps(body["messages"])) // 4
        if not body.get("stream"):
            content: list[dict[str, Any]] = [{"type": "text", "text": "".join(words)}]
            if plan == "tool":
                content = [{"type": "tool_use", "id": "toolu_fake1", "name": tool, "input": TOOL_ARGS}]
            return JSONResponse(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens},
                }
            )

        def ev(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        async def gen() -> AsyncIterator[bytes]:
            yield ev(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": in_tokens, "output_tokens": 1},
                    },
                },
            )
            if plan == "tool":
                block = {"type": "tool_use", "id": "toolu_fake1", "name": tool, "input": {}}
                yield ev(
                    "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
                )
                for piece in _pieces(json.dumps(TOOL_ARGS)):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    yield ev(
                        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
                    )
            else:
                yield ev(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            yield ev("ping", {"type": "ping"})
            for w in words:
                if "slow" in model:
                    await asyncio.sleep(0.05)
                yield ev(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
                )
            yield ev("content_block_stop", {"type": "content_block_stop", "index": 0})
            yield ev(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": out_tokens},
                },
            )
            yield ev("message_stop", {"type": "message_stop"})

        return StreamingResponse(gen(), media_type="text/event-stream")

    # -- Gemini ---------------------------------------------------------------------------
    async def gemini(self, request: Request) -> Response:
        body = await self._record(request)
        rest = request.path_params["rest"]
        model, _, method = rest.partition(":")
        if request.headers.get("x-goog-api-key", "").startswith("bad"):
            return JSONResponse(
                {
                    "error": {
                        "code": 400,
                        "message": "API key not valid. Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT",
                    }
                },
                400,
            )
        if "fail500" in model:
            return JSONResponse(
                {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}, 500
            )
        in_tokens = len(json.dumps(body["contents"])) // 4
        plan, tool = _gemini_plan(body)
        call_part = {"functionCall": {"name": tool, "args": TOOL_ARGS}}
        if method == "generateContent":
            words = self._answer(json.dumps(body)) if plan != "json" else [JSON_ANSWER]
            parts: list[dict[str, Any]] = [{"text": "".join(words)}] if plan != "tool" else [call_part]
            out_tokens = TOOL_TOKENS if plan == "tool" else len(words)
            return JSONResponse(
                {
                    "candidates": [
                        {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}
                    ],
                    "usageMetadata": {
                        "promptTokenCount": in_tokens,
                        "candidatesTokenCount": out_tokens,
                        "totalTokenCount": in_tokens + out_tokens,
                    },
                    "modelVersion": model,
                }
            )
        if method != "streamGenerateContent" or request.query_params.get("alt") != "sse":
            return JSONResponse({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, 404)
        words = chunks_for(model) if plan == "text" else _pieces(JSON_ANSWER) if plan == "json" else [""]

        async def gen() -> AsyncIterator[bytes]:
            for i, w in enumerate(words):
                if "slow" in model:
                    await asyncio.sleep(0.05)
                part = call_part if plan == "tool" else {"text": w}
                chunk = {
                    "candidates": [{"content": {"parts": [part], "role": "model"}, "index": 0}],
                    "usageMetadata": {
                        "promptTokenCount": in_tokens,
                        "candidatesTokenCount": i + 1,
                        "totalTokenCount": in_tokens + i + 1,
                    },
                    "modelVersion": model,
                }
                if i == len(words) - 1:
                    chunk["candidates"][0]["finishReason"] = "STOP"
                yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()

        return StreamingResponse(gen(), media_type="text/event-stream")
