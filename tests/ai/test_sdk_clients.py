"""The providers' official SDKs, pointed at the proxy with the user's Supabase token, work
unchanged: chat, streamed chat, tool calls and structured output, through the route's own
provider and translated to the others; usage rows and budgets are exact; the SDKs raise their
own errors (rate limit with Retry-After, budget 402, bad input 4xx with nothing charged)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from tests.ai.conftest import Proxy
from tests.ai.fake_provider import JSON_ANSWER, TOOL_ARGS, TOOL_TOKENS, WORDS
from tests.ai.test_generate import add_key
from tests.ai.test_queue_chat import chat_room, chat_rows

TEXT = "".join(WORDS)
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["location"],
}
OPENAI_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather now", "parameters": WEATHER_SCHEMA},
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
    "required": ["name", "born"],
    "additionalProperties": False,
}
# Through each route: the route's own provider and the translated ones (model naming: docs/ai.md).
TARGETS = ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest", "gemini/gemini-2.0-flash"]
OPERATOR_KEYS = {"openai": "op-openai", "anthropic": "op-anthropic", "gemini": "op-gemini"}


def token(h: dict[str, str]) -> str:
    return h["authorization"].removeprefix("Bearer ")


def oa(proxy: Proxy, h: dict[str, str], **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=proxy.url + "/v1", api_key=token(h), max_retries=0, default_headers=headers or None
    )


def usage_rows(proxy: Proxy, uid: uuid.UUID) -> list[tuple[Any, ...]]:
    proxy.settled(uid)
    return proxy.sql(
        "select provider, model, status, input_tokens, output_tokens, cost_usd, reserved_usd, streamed"
        " from public.ai_usage where user_id = %s order by created_at",
        (uid,),
    )


@pytest.fixture
def op_proxy(proxy_factory: Any) -> Proxy:
    return proxy_factory(ai_operator_keys=OPERATOR_KEYS)


# -- OpenAI python SDK --------------------------------------------------------------------------
@pytest.mark.parametrize("model", TARGETS)
def test_openai_sdk_chat_and_stream_record_exact_usage(op_proxy: Proxy, model: str) -> None:
    uid, h = op_proxy.user()
    client = oa(op_proxy, h)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == TEXT and reply.choices[0].finish_reason == "stop"
    assert reply.model == model and reply.usage is not None and reply.usage.completion_tokens == 6
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6 and chunks[-1].usage.prompt_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    provider, name = model.split("/")
    rows = usage_rows(op_proxy, uid)
    assert [(r[0], r[1], r[2], r[4], r[6], r[7]) for r in rows] == [
        (provider, name, "ok", 6, 0, False),
        (provider, name, "ok", 6, 0, True),
    ]
    assert rows[0][3] == reply.usage.prompt_tokens and rows[1][3] == chunks[-1].usage.prompt_tokens
    spent = op_proxy.sql(
        "select spent_usd, reserved_usd from private.ai_budget_months where user_id = %s", (uid,)
    )
    assert spent == [(rows[0][5] + rows[1][5], 0)]
    # The last (streamed) call reached the named provider in its own format with its operator key.
    sent = op_proxy.fake.requests[-1]
    path, key = {
        "openai": ("/v1/chat/completions", sent["headers"].get("authorization")),
        "anthropic": ("/v1/messages", sent["headers"].get("x-api-key")),
        "gemini": (f"/v1beta/models/{name}:streamGenerateContent", sent["headers"].get("x-goog-api-key")),
    }[provider]
    assert sent["path"] == path and key is not None and key.endswith(OPERATOR_KEYS[provider])


@pytest.mark.parametrize("model", TARGETS)
def test_openai_sdk_tool_call_and_its_answer(op_proxy: Proxy, model: str) -> None:
    _, h = op_proxy.user()
    client = oa(op_proxy, h)
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    reply = client.chat.completions.create(model=model, messages=messages, tools=[OPENAI_TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == TOOL_ARGS
    # Streamed: the SDK's stream helper assembles the tool-call deltas.
    with client.chat.completions.stream(
        model=model, messages=messages, tools=[OPENAI_TOOL], tool_choice="required"
    ) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert streamed is not None and streamed[0].function.name == "get_weather"
    assert json.loads(streamed[0].function.arguments) == TOOL_ARGS
    assert final.choices[0].finish_reason == "tool_calls"
    # The tool's result goes back; the model answers in text.
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21C"},
    ]
    answer = client.chat.completions.create(model=model, messages=messages, tools=[OPENAI_TOOL])
    assert answer.choices[0].message.content == TEXT
    sent = op_proxy.fake.requests[-1]["body"]
    assert "21C" in json.dumps(sent) and "get_weather" in json.dumps(sent)


@pytest.mark.parametrize("model", TARGETS)
def test_openai_sdk_structured_output(op_proxy: Proxy, model: str) -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        born: int

    _, h = op_proxy.user()
    client = oa(op_proxy, h)
    parsed = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "who?"}], response_format=Person
    )
    assert parsed.choices[0].message.parsed == Person(**json.loads(JSON_ANSWER))
    sent = op_proxy.fake.requests[-1]["body"]
    if model.startswith("openai/"):
        assert sent["response_format"]["type"] == "json_schema"
    elif model.startswith("gemini/"):
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
        assert sent["generationConfig"]["responseJsonSchema"]["required"] == ["name", "born"]
    else:  # Anthropic has no JSON mode: the schema is asked for in the system prompt
        assert "JSON Schema" in sent["system"]


def test_openai_sdk_stored_key_header_and_models(proxy: Proxy) -> None:
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai", key="sk-users-own-key-1")
    client = oa(proxy, h, **{"x-backline-key-id": key_id})
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert proxy.fake.requests[-1]["headers"]["authorization"] == "Bearer sk-users-own-key-1"
    ids = {m.id for m in client.models.list()}
    assert "openai/gpt-4o-mini" in ids and not any(i.startswith("anthropic/") for i in ids)
    # Without a stored key or an operator key for the provider: a 400 naming what is missing.
    with pytest.raises(openai.BadRequestError) as err:
        oa(proxy, h).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert "no openai key" in err.value.message
    assert len(usage_rows(proxy, uid)) == 1


def test_openai_sdk_rate_limit_is_rate_limit_error_with_retry_after(op_proxy: Proxy) -> None:
    op_proxy.sql("update public.plans set ai_requests_per_window = 1 where id = 'free'")
    uid, h = op_proxy.user()
    client = oa(op_proxy, h)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert err.value.code == "rate_limit_exceeded" and err.value.type == "requests"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert len(usage_rows(op_proxy, uid)) == 1


def test_openai_sdk_budget_exhausted_is_402(op_proxy: Proxy) -> None:
    op_proxy.sql("update public.plans set ai_monthly_budget_usd = 0 where id = 'free'")
    uid, h = op_proxy.user()
    with pytest.raises(openai.APIStatusError) as err:
        oa(op_proxy, h).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert err.value.status_code == 402 and err.value.code == "insufficient_quota"
    assert "monthly AI budget" in err.value.message
    assert usage_rows(op_proxy, uid) == []


@pytest.mark.parametrize(
    "kwargs,param",
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"n": 2}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"model": "gemini/../x"}, "model"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"extra_body": {"backline": {"key_id": "not-a-uuid"}}}, "backline.key_id"),
    ],
)
def test_openai_sdk_bad_input_is_400_in_openai_shape_nothing_charged(
    op_proxy: Proxy, kwargs: dict[str, Any], param: str
) -> None:
    uid, h = op_proxy.user()
    seen = len(op_proxy.fake.requests)
    args: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        oa(op_proxy, h).chat.completions.create(**args)
    assert err.value.param == param and err.value.type == "invalid_request_error"
    assert len(op_proxy.fake.requests) == seen and usage_rows(op_proxy, uid) == []


def test_openai_shape_for_auth_size_and_bad_json(op_proxy: Proxy) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=op_proxy.url + "/v1", api_key="not-a-jwt", max_retries=0).models.list()
    _, h = op_proxy.user()
    huge = "x" * (op_proxy.settings.ai_max_body_bytes + 10)
    resp = op_proxy.http.post(
        "/v1/chat/completions",
        headers=h,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": huge}]},
    )
    assert resp.status_code == 413 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = op_proxy.http.post(
        "/v1/chat/completions", headers={**h, "content-type": "application/json"}, content=b"{"
    )
    assert resp.status_code == 400 and set(resp.json()["error"]) == {"message", "type", "param", "code"}


# -- Anthropic python SDK -----------------------------------------------------------------------
def ant(proxy: Proxy, h: dict[str, str]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=token(h), max_retries=0)


ANTHROPIC_TOOL: Any = {"name": "get_weather", "description": "Weather now", "input_schema": WEATHER_SCHEMA}


@pytest.mark.parametrize(
    "model", ["claude-3-5-haiku-latest", "openai/gpt-4o-mini", "gemini/gemini-2.0-flash"]
)
def test_anthropic_sdk_message_stream_and_tool_use(op_proxy: Proxy, model: str) -> None:
    uid, h = op_proxy.user()
    client = ant(op_proxy, h)
    msg = client.messages.create(
        model=model, max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.content[0].type == "text" and msg.content[0].text == TEXT and msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 6
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        streamed_text = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed_text == TEXT and final.usage.output_tokens == 6 and final.usage.input_tokens > 0
    # Tool use, plain and streamed, forced as Anthropic's structured output idiom.
    ask: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    used = client.messages.create(model=model, max_tokens=100, messages=ask, tools=[ANTHROPIC_TOOL])
    block = used.content[-1]
    assert used.stop_reason == "tool_use" and block.type == "tool_use" and block.input == TOOL_ARGS
    with client.messages.stream(
        model=model,
        max_tokens=100,
        messages=ask,
        tools=[ANTHROPIC_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    tool_block = final.content[-1]
    assert (
        tool_block.type == "tool_use" and tool_block.name == "get_weather" and tool_block.input == TOOL_ARGS
    )
    follow = [
        *ask,
        {"role": "assistant", "content": [b.model_dump() for b in used.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "21C"}]},
    ]
    answer = client.messages.create(model=model, max_tokens=100, messages=follow, tools=[ANTHROPIC_TOOL])
    assert answer.content[0].type == "text" and answer.content[0].text == TEXT
    rows = usage_rows(op_proxy, uid)
    assert [r[2] for r in rows] == ["ok"] * 5 and [r[4] for r in rows[:2]] == [6, 6]
    assert [r[4] for r in rows[2:4]] == [TOOL_TOKENS, TOOL_TOKENS] or model.startswith("gemini/")


def test_anthropic_sdk_errors_are_its_own_types(op_proxy: Proxy) -> None:
    uid, h = op_proxy.user()
    client = ant(op_proxy, h)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    op_proxy.sql("update public.plans set ai_monthly_budget_usd = 0 where id = 'free'")
    with pytest.raises(anthropic.APIStatusError) as broke:
        client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert broke.value.status_code == 402 and broke.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    op_proxy.sql(
        "update public.plans set ai_monthly_budget_usd = 5, ai_requests_per_window = 0 where id = 'free'"
    )
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert int(limited.value.response.headers["retry-after"]) >= 1
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=op_proxy.url, api_key="nope", max_retries=0).messages.create(
            model="claude-3-5-haiku-latest", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert usage_rows(op_proxy, uid) == []


# -- Google genai SDK ---------------------------------------------------------------------------
def gem(proxy: Proxy, h: dict[str, str]) -> genai.Client:
    return genai.Client(api_key=token(h), http_options=gtypes.HttpOptions(base_url=proxy.url))


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "openai-mini", "claude"])
def test_google_genai_generate_stream_tools_and_schema(proxy_factory: Any, model: str) -> None:
    aliases = {"openai-mini": "openai/gpt-4o-mini", "claude": "anthropic/claude-3-5-haiku-latest"}
    proxy = proxy_factory(ai_operator_keys=OPERATOR_KEYS, ai_models=aliases)
    uid, h = proxy.user()
    client = gem(proxy, h)
    reply = client.models.generate_content(model=model, contents="hi")
    assert reply.text == TEXT and reply.usage_metadata is not None
    assert reply.usage_metadata.candidates_token_count == 6
    chunks = list(client.models.generate_content_stream(model=model, contents="hi"))
    assert "".join(c.text or "" for c in chunks) == TEXT
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata.candidates_token_count == 6
    weather = gtypes.FunctionDeclaration(
        name="get_weather", description="Weather now", parameters_json_schema=WEATHER_SCHEMA
    )
    config = gtypes.GenerateContentConfig(
        tools=[gtypes.Tool(function_declarations=[weather])],
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    called = client.models.generate_content(model=model, contents="weather in Paris?", config=config)
    assert called.function_calls is not None and called.function_calls[0].name == "get_weather"
    assert called.function_calls[0].args == TOOL_ARGS
    streamed = list(client.models.generate_content_stream(model=model, contents="weather?", config=config))
    calls = [fc for c in streamed for fc in c.function_calls or []]
    assert [(c.name, c.args) for c in calls] == [("get_weather", TOOL_ARGS)]
    structured = client.models.generate_content(
        model=model,
        contents="who?",
        config=gtypes.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=PERSON
        ),
    )
    assert json.loads(structured.text or "") == json.loads(JSON_ANSWER)
    rows = usage_rows(proxy, uid)
    assert len(rows) == 5 and all(r[2] == "ok" and r[6] == 0 for r in rows)
    provider = aliases.get(model, "gemini/").split("/")[0]
    assert {r[0] for r in rows} == {provider}


def test_google_genai_errors_and_key_query_parameter(op_proxy: Proxy) -> None:
    uid, h = op_proxy.user()
    client = gem(op_proxy, h)
    op_proxy.sql("update public.plans set ai_requests_per_window = 0 where id = 'free'")
    with pytest.raises(genai_errors.ClientError) as limited:
        client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    op_proxy.sql(
        "update public.plans set ai_requests_per_window = 100, ai_monthly_budget_usd = 0 where id = 'free'"
    )
    with pytest.raises(genai_errors.ClientError) as broke:
        client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert broke.value.code == 402
    with pytest.raises(genai_errors.ClientError) as bad:
        client.models.generate_content(
            model="gemini-2.0-flash", contents="hi", config=gtypes.GenerateContentConfig(candidate_count=2)
        )
    assert bad.value.code == 400 and bad.value.status == "INVALID_ARGUMENT"
    assert usage_rows(op_proxy, uid) == []
    # REST callers may put the key in ?key= (curl examples); 429 carries Retry-After.
    resp = op_proxy.http.post(
        f"/v1beta/models/gemini-2.0-flash:generateContent?key={token(h)}",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert resp.status_code == 402 and resp.json()["error"]["status"] == "FAILED_PRECONDITION"
    op_proxy.sql(
        "update public.plans set ai_monthly_budget_usd = 5, ai_requests_per_window = 0 where id = 'free'"
    )
    resp = op_proxy.http.post(
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        headers={"x-goog-api-key": token(h)},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1


# -- extension: room chat append, fallback, CORS -------------------------------------------------
def test_chat_append_fallback_and_cors_on_sdk_routes(op_proxy: Proxy) -> None:
    uid, h = op_proxy.user()
    _, h_out = op_proxy.user()
    element = chat_room(op_proxy, uid)
    pre = op_proxy.http.options(
        "/v1/messages",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-api-key,anthropic-version,x-stainless-os,x-backline-key-id",
        },
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
    client = oa(op_proxy, h)
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-fail500",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"backline": {"fallback": "anthropic/claude-3-5-haiku-latest"}},
    )
    reply = raw.parse()
    assert (
        reply.model == "anthropic/claude-3-5-haiku-latest"
        and raw.headers["x-backline-fallback-used"] == "true"
    )
    assert reply.model_extra is not None and reply.model_extra["backline"]["fallback_used"] is True
    rows = usage_rows(op_proxy, uid)
    assert [(r[0], r[2]) for r in rows] == [("openai", "error"), ("anthropic", "ok")]
    assert Decimal(str(reply.model_extra["backline"]["cost_usd"])) == rows[1][5]
    # Room chat: the answer is appended (body field or header), streamed answers once complete.
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"backline": {"chat_element_id": str(element)}},
    )
    ant(op_proxy, h).with_options(default_headers={"x-backline-chat-element": str(element)}).messages.create(
        model="openai/gpt-4o-mini", max_tokens=20, messages=[{"role": "user", "content": "x"}]
    )
    with client.chat.completions.stream(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"backline": {"chat_element_id": str(element)}},
    ) as stream:
        stream.until_done()
    assert [r[:2] for r in chat_rows(op_proxy, element)] == [("assistant", TEXT)] * 3
    # Someone who cannot write to the room is refused before anything is spent.
    with pytest.raises(openai.APIStatusError) as refused:
        oa(op_proxy, h_out).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"backline": {"chat_element_id": str(element)}},
        )
    assert 400 <= refused.value.status_code < 500 and "error" in refused.value.response.json()


def test_gemini_stream_without_alt_sse_is_one_json_array(op_proxy: Proxy) -> None:
    """REST callers without ?alt=sse get the API's streamed JSON array; usage is still exact."""
    uid, h = op_proxy.user()
    resp = op_proxy.http.post(
        "/v1beta/models/openai/gpt-4o-mini:streamGenerateContent",
        headers={"x-goog-api-key": token(h)},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    chunks = resp.json()
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == TEXT
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 6
    assert [(r[0], r[2], r[4], r[7]) for r in usage_rows(op_proxy, uid)] == [("openai", "ok", 6, True)]
