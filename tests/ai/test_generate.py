"""Generate through each provider (JSON and SSE), usage recording, interruption, fallback, bad keys."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import httpx
import pytest

from tests.ai.conftest import Proxy
from tests.ai.routes import ROUTES, request_for, text_of_event

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello"}]


def add_key(proxy: Proxy, h: dict[str, str], provider: str, key: str = "sk-good-key-123456") -> str:
    resp = proxy.http.post("/v1/keys", json={"provider": provider, "key": key}, headers=h)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def sse_events(resp: httpx.Response) -> list[tuple[float, Any]]:
    out = []
    for line in resp.iter_lines():
        if line.startswith("data: "):
            payload = line[6:]
            out.append((time.perf_counter(), payload if payload == "[DONE]" else json.loads(payload)))
    return out


@pytest.mark.parametrize(
    "provider,model",
    [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest"), ("gemini", "gemini-2.0-flash")],
)
def test_generate_json_each_provider_records_usage(proxy: Proxy, provider: str, model: str) -> None:
    uid, h = proxy.user()
    key_id = add_key(proxy, h, provider)
    resp = proxy.http.post(
        "/v1/generate",
        headers=h,
        json={"provider": provider, "model": model, "key_id": key_id, "messages": MSGS, "max_tokens": 50},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["text"] == "Hello from the fake provider."
    assert body["usage"]["output_tokens"] == 6 and body["usage"]["input_tokens"] > 0
    sent = proxy.fake.requests[-1]
    if provider == "anthropic":
        assert sent["body"]["system"] == "be brief" and sent["headers"]["x-api-key"] == "sk-good-key-123456"
        assert sent["body"]["max_tokens"] == 50
    elif provider == "gemini":
        assert sent["path"].endswith(f"/models/{model}:generateContent")
        assert sent["body"]["systemInstruction"] == {"parts": [{"text": "be brief"}]}
        assert sent["body"]["generationConfig"]["maxOutputTokens"] == 50
    else:
        assert sent["body"]["messages"][0] == {"role": "system", "content": "be brief"}
    proxy.settled(uid)
    rows = proxy.sql(
        "select provider, model, status, input_tokens, output_tokens, cost_usd, reserved_usd,"
        " latency_ms from public.ai_usage where user_id = %s",
        (uid,),
    )
    assert len(rows) == 1
    p, m, status, tin, tout, cost, reserved, latency = rows[0]
    assert (p, m, status, tout) == (provider, model, "ok", 6) and tin > 0
    assert cost > 0 and reserved == 0 and latency >= 0
    # The response is sent before settlement commits; its cost is the one settlement recorded.
    assert body["usage"]["cost_usd"] == float(cost)
    assert (
        proxy.sql("select reserved_usd from private.ai_budget_months where user_id = %s", (uid,))[0][0] == 0
    )


@pytest.mark.parametrize(
    "provider,model", [("openai", "gpt-slow"), ("anthropic", "claude-slow"), ("gemini", "gemini-slow")]
)
def test_streaming_delivers_tokens_incrementally(proxy: Proxy, provider: str, model: str) -> None:
    uid, h = proxy.user()
    key_id = add_key(proxy, h, provider)
    started = time.perf_counter()
    with proxy.http.stream(
        "POST",
        "/v1/generate",
        headers=h,
        json={"provider": provider, "model": model, "key_id": key_id, "messages": MSGS, "stream": True},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = sse_events(resp)
    kinds = [e[1]["type"] if isinstance(e[1], dict) else e[1] for e in events]
    assert kinds[0] == "start" and kinds[-2:] == ["done", "[DONE]"]
    deltas = [e for e in events if isinstance(e[1], dict) and e[1]["type"] == "delta"]
    assert "".join(d[1]["text"] for d in deltas) == "".join(f"w{i} " for i in range(20))
    # Incremental: the first token arrived long before the last (20 chunks, 50 ms apart).
    assert deltas[0][0] - started < 0.5
    assert deltas[-1][0] - deltas[0][0] > 0.5
    done = events[-2][1]
    assert done["usage"]["output_tokens"] == 20
    (status, tout, streamed) = proxy.sql(
        "select status, output_tokens, streamed from public.ai_usage where user_id = %s", (uid,)
    )[0]
    assert (status, tout, streamed) == ("ok", 20, True)


@pytest.mark.parametrize("route", ROUTES[1:])
@pytest.mark.parametrize("provider,model", [("openai", "gpt-slow"), ("anthropic", "claude-slow")])
def test_sdk_routes_stream_incrementally_and_count_tokens_from_the_stream(
    proxy: Proxy, route: str, provider: str, model: str
) -> None:
    """The SDK protocols relay each provider's stream as it comes, and settle from its tokens."""
    uid, h = proxy.user()
    key_id = add_key(proxy, h, provider)
    path, body, extra = request_for(
        route, provider=provider, model=model, key_id=key_id, messages=MSGS, stream=True
    )
    started = time.perf_counter()
    with proxy.http.stream("POST", path, headers={**h, **extra}, json=body) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["x-backline-usage-id"]
        texts = [(time.perf_counter(), t) for line in resp.iter_lines() if (t := text_of_event(route, line))]
    assert "".join(t for _, t in texts) == "".join(f"w{i} " for i in range(20))
    assert texts[0][0] - started < 0.5 and texts[-1][0] - texts[0][0] > 0.5
    proxy.settled(uid)
    rows = proxy.sql(
        "select id, status, output_tokens, streamed from public.ai_usage where user_id = %s", (uid,)
    )
    assert [r[1:] for r in rows] == [("ok", 20, True)]
    assert str(rows[0][0]) == resp.headers["x-backline-usage-id"]


@pytest.mark.parametrize("route", ROUTES)
def test_interrupted_stream_is_recorded_with_tokens_so_far(proxy: Proxy, route: str) -> None:
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    path, body, extra = request_for(
        route, provider="openai", model="gpt-slow", key_id=key_id, messages=MSGS, stream=True
    )
    with proxy.http.stream("POST", path, headers={**h, **extra}, json=body) as resp:
        seen = 0
        for line in resp.iter_lines():
            if text_of_event(route, line):
                seen += 1
                if seen == 4:
                    break
    deadline = time.time() + 5
    row = None
    while time.time() < deadline:
        rows = proxy.sql(
            "select status, output_tokens, reserved_usd from public.ai_usage where user_id = %s"
            " and status <> 'pending'",
            (uid,),
        )
        if rows:
            row = rows[0]
            break
        time.sleep(0.05)
    assert row is not None, "interrupted stream never settled"
    status, tout, reserved = row
    assert status == "interrupted" and 1 <= tout < 20 and reserved == 0


def test_fallback_on_provider_500(proxy: Proxy) -> None:
    uid, h = proxy.user()
    openai_key = add_key(proxy, h, "openai")
    anthropic_key = add_key(proxy, h, "anthropic")
    body = {
        "provider": "openai",
        "model": "gpt-fail500",
        "key_id": openai_key,
        "messages": MSGS,
        "fallback": {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "key_id": anthropic_key},
    }
    resp = proxy.http.post("/v1/generate", headers=h, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["fallback_used"] is True and resp.json()["provider"] == "anthropic"
    proxy.settled(uid)
    rows = proxy.sql(
        "select provider, status, error from public.ai_usage where user_id = %s order by created_at", (uid,)
    )
    assert [(r[0], r[1]) for r in rows] == [("openai", "error"), ("anthropic", "ok")]
    assert "500" in rows[0][2]
    # Streaming falls back too (before the first token).
    with proxy.http.stream("POST", "/v1/generate", headers=h, json={**body, "stream": True}) as sresp:
        events = sse_events(sresp)
    assert events[0][1]["fallback_used"] is True and events[-1][1] == "[DONE]"
    # Without a fallback the 500 becomes a 502 with the provider named.
    resp = proxy.http.post("/v1/generate", headers=h, json={**body, "fallback": None})
    assert resp.status_code == 502 and "openai" in resp.json()["error"]["message"]


def test_operator_fallback_from_settings(proxy_factory: Any) -> None:
    proxy = proxy_factory(ai_fallback="gemini:gemini-2.0-flash", ai_operator_keys={"gemini": "op-gemini-key"})
    _, h = proxy.user()
    key = add_key(proxy, h, "openai")
    resp = proxy.http.post(
        "/v1/generate",
        headers=h,
        json={"provider": "openai", "model": "gpt-fail500", "key_id": key, "messages": MSGS},
    )
    assert resp.status_code == 200 and resp.json()["provider"] == "gemini"
    assert proxy.fake.requests[-1]["headers"]["x-goog-api-key"] == "op-gemini-key"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_bad_provider_key_is_401_naming_the_key(proxy: Proxy, provider: str) -> None:
    uid, h = proxy.user()
    key_id = add_key(proxy, h, provider, key="bad-key-000000")
    for stream in (False, True):
        resp = proxy.http.post(
            "/v1/generate",
            headers=h,
            json={"provider": provider, "model": "m", "key_id": key_id, "messages": MSGS, "stream": stream},
        )
        assert resp.status_code == 401
        assert f"your stored {provider} key {key_id} was rejected" in resp.json()["error"]["message"]
    statuses = proxy.sql("select status from public.ai_usage where user_id = %s", (uid,))
    assert statuses == [("error",), ("error",)]


def test_bad_generate_input_rejected_nothing_recorded(proxy: Proxy) -> None:
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    base = {"provider": "openai", "model": "gpt-4o-mini", "key_id": key_id, "messages": MSGS}
    for bad in (
        {**base, "provider": "nope"},
        {**base, "messages": []},
        {**base, "messages": [{"role": "x"}]},
        {**base, "max_tokens": 0},
        {**base, "model": ""},
    ):
        assert proxy.http.post("/v1/generate", headers=h, json=bad).status_code == 400
    assert (
        proxy.http.post(
            "/v1/generate", headers={**h, "content-type": "application/json"}, content=b"not json"
        ).status_code
        == 400
    )
    huge = {**base, "messages": [{"role": "user", "content": "x" * (proxy.settings.ai_max_body_bytes + 10)}]}
    assert proxy.http.post("/v1/generate", headers=h, json=huge).status_code == 413
    assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,))[0][0] == 0


def test_healthz_and_cors_allow_list(proxy: Proxy) -> None:
    assert proxy.http.get("/healthz").json() == {"ok": True}
    pre = proxy.http.options(
        "/v1/generate",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
    evil = proxy.http.options(
        "/v1/generate", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in evil.headers


def test_no_secrets_or_prompts_in_logs(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    _, h = proxy.user()
    key_id = add_key(proxy, h, "openai", key="sk-very-secret-value-9876")
    proxy.http.post(
        "/v1/generate",
        headers=h,
        json={
            "provider": "openai",
            "model": "gpt-4o-mini",
            "key_id": key_id,
            "messages": [{"role": "user", "content": "my-private-prompt-text"}],
        },
    )
    proxy.http.post(
        "/v1/generate",
        headers=h,
        json={
            "provider": "openai",
            "model": "gpt-fail500",
            "key_id": key_id,
            "messages": [{"role": "user", "content": "my-private-prompt-text"}],
        },
    )
    text = caplog.text
    assert "ai call" in text  # something was logged
    for secret in ("sk-very-secret-value-9876", "my-private-prompt-text", h["authorization"][7:]):
        assert secret not in text


def test_billing_webhook_is_mounted_and_refuses_a_forged_signature(proxy_factory: Any) -> None:
    proxy = proxy_factory(stripe_webhook_secrets=("whsec_test_secret",))
    before = proxy.sql("select count(*) from private.billing_events")[0][0]
    resp = proxy.http.post(
        "/v1/billing/stripe",
        content=b'{"id": "evt_1", "type": "invoice.payment_failed"}',
        headers={"stripe-signature": "t=1,v1=deadbeef", "content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert proxy.sql("select count(*) from private.billing_events")[0][0] == before


def test_unreachable_provider_is_retried_once_then_502(proxy_factory: Any) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proxy = proxy_factory(ai_anthropic_base_url=dead)
    uid, h = proxy.user()
    key = add_key(proxy, h, "anthropic")
    resp = proxy.http.post(
        "/v1/generate",
        headers=h,
        json={"provider": "anthropic", "model": "claude-3-5-haiku-latest", "key_id": key, "messages": MSGS},
    )
    assert resp.status_code == 502 and "cannot reach anthropic" in resp.json()["error"]["message"]
    assert proxy.sql("select status, error from public.ai_usage where user_id = %s", (uid,)) == [
        ("error", "anthropic unreachable: cannot reach anthropic")
    ]
    assert proxy.sql("select reserved_usd from private.ai_budget_months where user_id = %s", (uid,)) == [(0,)]


def test_openai_compatible_local_server_needs_no_key(proxy: Proxy) -> None:
    _, h = proxy.user()
    resp = proxy.http.post(
        "/v1/generate", headers=h, json={"provider": "openai_compat", "model": "llama3", "messages": MSGS}
    )
    assert resp.status_code == 200 and resp.json()["text"] == "Hello from the fake provider."
    assert proxy.fake.requests[-1]["path"] == "/v1/chat/completions"
    # Hosted providers without a stored or server key: a clear 400, nothing called.
    n = len(proxy.fake.requests)
    resp = proxy.http.post(
        "/v1/generate", headers=h, json={"provider": "openai", "model": "m", "messages": MSGS}
    )
    assert resp.status_code == 400 and "no openai key" in resp.json()["error"]["message"]
    assert len(proxy.fake.requests) == n


@pytest.mark.parametrize("route", ROUTES)
def test_client_leaving_before_the_body_starts_settles_the_call(proxy: Proxy, route: str) -> None:
    """The client disconnects after admission while the provider has not sent its first token:
    the call is settled as interrupted at once (not left pending for the hourly cleanup)."""
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    path, data, extra = request_for(
        route, provider="openai", model="gpt-latestart", key_id=key_id, messages=MSGS, stream=True
    )
    body = json.dumps(data).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in {**h, **extra}.items())
    host, port = proxy.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nhost: proxy\r\ncontent-type: application/json\r\n".encode()
        + f"{head}content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    deadline = time.time() + 5
    while not proxy.sql("select 1 from public.ai_usage where user_id = %s", (uid,)):
        assert time.time() < deadline, "never admitted"
        time.sleep(0.01)
    sock.close()  # admitted, provider still silent (0.8 s), no response byte sent yet
    left_at = time.time()
    proxy.settled(uid)
    assert time.time() - left_at < 3
    status, error, tout, reserved, finished = proxy.sql(
        "select status, error, output_tokens, reserved_usd, finished_at from public.ai_usage"
        " where user_id = %s",
        (uid,),
    )[0]
    assert (status, error, reserved) == ("interrupted", "client disconnected", 0) and finished is not None
    assert tout >= 1  # the first chunk the provider produced is counted
    assert proxy.sql("select reserved_usd from private.ai_budget_months where user_id = %s", (uid,)) == [(0,)]
    tickets = "select count(*) from private.ai_usage_tickets t join public.ai_usage u on u.id = t.usage_id"
    assert proxy.sql(tickets + " where u.user_id = %s", (uid,)) == [(0,)]


def test_provider_cookies_are_not_replayed_for_other_users(proxy: Proxy) -> None:
    for _ in range(2):
        _, h = proxy.user()
        key_id = add_key(proxy, h, "openai")
        resp = proxy.http.post(
            "/v1/generate",
            headers=h,
            json={"provider": "openai", "model": "gpt-4o-mini", "key_id": key_id, "messages": MSGS},
        )
        assert resp.status_code == 200
    assert "set-cookie" not in resp.headers  # not passed on to the frontend either
    assert "cookie" not in proxy.fake.requests[-1]["headers"]


TRAVERSALS = [
    "../../v1beta/cachedContents?x=",  # the reported escape: another API method with the operator key
    "gemini-2.0-flash/../../../v1beta/files",
    "..",
    "tunedModels/x",  # any "/" leaves models/<model> for Gemini
    "gemini-2.0-flash:countTokens?",
    "gemini%2F..%2Fx",
    "gemini 2",
    "-gemini",
    "x" * 201,
]


@pytest.mark.parametrize("stream", [False, True])
def test_model_names_that_could_leave_the_provider_path_are_refused(proxy_factory: Any, stream: bool) -> None:
    """Anonymous callers use the operator's Gemini key: a model name must never reach another API
    method. Refused with a 400 before admission; the provider sees no request, nothing is recorded."""
    proxy = proxy_factory(ai_operator_keys={"gemini": "op-gemini-key", "openai": "op-openai-key"})
    uid, h = proxy.user(anonymous=True)
    seen = len(proxy.fake.requests)
    for model in TRAVERSALS:
        resp = proxy.http.post(
            "/v1/generate",
            headers=h,
            json={"provider": "gemini", "model": model, "messages": MSGS, "stream": stream},
        )
        assert resp.status_code == 400, (model, resp.text)
        assert "model" in resp.json()["error"]["message"], resp.text
    # A dot segment is refused for every provider, also as a fallback target.
    for body in (
        {"provider": "openai", "model": "a/../b", "messages": MSGS},
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": MSGS,
            "fallback": {"provider": "gemini", "model": "tunedModels/x"},
        },
    ):
        resp = proxy.http.post("/v1/generate", headers=h, json={**body, "stream": stream})
        assert resp.status_code == 400, resp.text
    message = resp.json()["error"]["message"]
    assert message.startswith("fallback.model") and "'/'" in message
    assert len(proxy.fake.requests) == seen
    assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,))[0][0] == 0
    # Names with "/", ":" or "@" stay usable where the model travels in the body (OpenAI-compatible).
    resp = proxy.http.post(
        "/v1/generate",
        headers=h,
        json={"provider": "openai", "model": "meta-llama/Llama-3.1-8B@v1:q4", "messages": MSGS},
    )
    assert resp.status_code == 200, resp.text
    assert proxy.fake.requests[-1]["body"]["model"] == "meta-llama/Llama-3.1-8B@v1:q4"
    # And a plain Gemini model still works with the operator key.
    resp = proxy.http.post(
        "/v1/generate", headers=h, json={"provider": "gemini", "model": "gemini-2.0-flash", "messages": MSGS}
    )
    assert resp.status_code == 200, resp.text
    assert proxy.fake.requests[-1]["path"].endswith("/v1beta/models/gemini-2.0-flash:generateContent")


def test_gemini_adapter_refuses_a_model_that_escapes_its_path_segment() -> None:
    """Defence in depth below the API checks: the adapter never builds a URL outside models/<model>."""
    import asyncio

    from workers.ai.providers.base import ChatRequest, ProviderError, Tally
    from workers.ai.providers.gemini import GeminiProvider

    gemini = GeminiProvider("gemini", "http://127.0.0.1:9")
    for model in ("../../v1beta/cachedContents", "a/b", ".."):
        req = ChatRequest(model, [{"role": "user", "content": "hi"}], 5, "k")
        with pytest.raises(ProviderError) as info:
            asyncio.run(gemini.complete(None, req, Tally()))  # type: ignore[arg-type]
        assert info.value.status == 400
    url = gemini._url(ChatRequest("gemini-2.0-flash", [], 5, "k"), "generateContent")
    assert url == "http://127.0.0.1:9/v1beta/models/gemini-2.0-flash:generateContent"


def test_fallback_proceeds_when_settling_the_failed_primary_fails(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The fallback is admitted (committed) before the primary is settled: a failing primary
    settlement must not replace the fallback (whose reservation would wait an hour for cleanup)."""
    from workers.ai.store import StoreError

    service = proxy.app.state.proxy.service
    real_settle = service.settle

    async def settle(*args: Any, **kwargs: Any) -> Any:
        if args[5] == "error":  # (caller, adm, target, tally, latency_ms, status, ...)
            raise StoreError(500, "database error")
        return await real_settle(*args, **kwargs)

    monkeypatch.setattr(service, "settle", settle)
    uid, h = proxy.user()
    body = {
        "provider": "openai",
        "model": "gpt-fail500",
        "key_id": add_key(proxy, h, "openai"),
        "messages": MSGS,
        "fallback": {
            "provider": "anthropic",
            "model": "claude-3-5-haiku-latest",
            "key_id": add_key(proxy, h, "anthropic"),
        },
    }
    with caplog.at_level(logging.WARNING, logger="backline.ai"):
        resp = proxy.http.post("/v1/generate", headers=h, json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["fallback_used"] is True and resp.json()["provider"] == "anthropic"
        with proxy.http.stream("POST", "/v1/generate", headers=h, json={**body, "stream": True}) as sresp:
            events = sse_events(sresp)
        assert events[0][1]["fallback_used"] is True and events[-1][1] == "[DONE]"
    deadline = time.time() + 5
    while (
        proxy.sql(
            "select count(*) from public.ai_usage"
            " where user_id = %s and provider = 'anthropic' and status = 'ok'",
            (uid,),
        )[0][0]
        < 2
    ):
        assert time.time() < deadline, "the fallback calls were not settled"
        time.sleep(0.02)
    rows = proxy.sql(
        "select provider, status from public.ai_usage where user_id = %s order by created_at", (uid,)
    )
    # Only the primaries (whose settlement failed) stay pending, for cleanup.
    assert sorted(rows) == [
        ("anthropic", "ok"),
        ("anthropic", "ok"),
        ("openai", "pending"),
        ("openai", "pending"),
    ]
    warnings = [r.getMessage() for r in caplog.records if "settle of failed primary" in r.getMessage()]
    assert len(warnings) == 2 and all("database error" in w and "sk-" not in w for w in warnings)
