"""Rate limit and budget: exact under real concurrency (real HTTP, real DB), 429/402, no overspend."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.ai.conftest import Proxy
from tests.ai.routes import ROUTES, request_for
from tests.ai.test_generate import MSGS, add_key


def fire(
    proxy: Proxy, n: int, headers: dict[str, str], body: dict[str, Any], path: str = "/v1/generate"
) -> list[httpx.Response]:
    """n requests released at the same instant from n threads, each with its own connection."""
    barrier = threading.Barrier(n)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=proxy.url, timeout=30) as client:
            barrier.wait()
            resp = client.post(path, headers=headers, json=body)
            resp.read()
            with lock:
                results.append(resp)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("route", ROUTES)
def test_fifty_concurrent_requests_at_limit_ten_exactly_ten_pass(proxy: Proxy, route: str) -> None:
    proxy.sql("update public.plans set ai_requests_per_window = 10 where id = 'free'")
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    path, body, extra = request_for(
        route, provider="openai", model="gpt-4o-mini", key_id=key_id, messages=MSGS
    )
    results = fire(proxy, 50, {**h, **extra}, body, path)
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 10 and codes.count(429) == 40, codes
    limited = [r for r in results if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert all("rate limit" in r.json()["error"]["message"] for r in limited)
    assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,))[0][0] == 10
    # Another user has their own window.
    _, h2 = proxy.user()
    k2 = add_key(proxy, h2, "openai")
    assert (
        proxy.http.post(
            "/v1/generate",
            headers=h2,
            json={"provider": "openai", "model": "gpt-4o-mini", "key_id": k2, "messages": MSGS},
        ).status_code
        == 200
    )


def test_queue_inserts_share_the_same_limit(proxy: Proxy) -> None:
    import psycopg

    from tests.helpers import act_as

    proxy.sql("update public.plans set ai_requests_per_window = 2 where id = 'free'")
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    assert (
        proxy.http.post(
            "/v1/generate",
            headers=h,
            json={"provider": "openai", "model": "gpt-4o-mini", "key_id": key_id, "messages": MSGS},
        ).status_code
        == 200
    )
    with psycopg.connect(proxy.db_url) as conn:
        with act_as(conn, uid, rollback=False) as cur:
            cur.execute(
                "insert into public.ai_requests (provider, model, messages) values"
                ' (\'openai\', \'gpt-4o-mini\', \'[{"role": "user", "content": "hi"}]\')'
            )
        try:
            with act_as(conn, uid, rollback=False) as cur:
                cur.execute(
                    "insert into public.ai_requests (provider, model, messages) values"
                    ' (\'openai\', \'gpt-4o-mini\', \'[{"role": "user", "content": "hi"}]\')'
                )
            raise AssertionError("third request in the window was accepted")
        except psycopg.Error as exc:
            assert exc.sqlstate == "PT429"
    assert proxy.sql("select count(*) from public.ai_requests")[0][0] == 1
    resp = proxy.http.post(
        "/v1/generate",
        headers=h,
        json={"provider": "openai", "model": "gpt-4o-mini", "key_id": key_id, "messages": MSGS},
    )
    assert resp.status_code == 429 and "retry-after" in resp.headers


@pytest.mark.parametrize("route", ROUTES)
def test_parallel_requests_never_overspend_the_budget(proxy: Proxy, route: str) -> None:
    # $0.001 per output token; max_tokens 10 -> each request reserves $0.01 (+ tiny input, priced 0).
    proxy.sql("insert into public.ai_prices values ('openai', 'budget-slow', 0, 1000, 0)")
    proxy.sql("update public.plans set ai_monthly_budget_usd = 0.05 where id = 'free'")
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    path, body, extra = request_for(
        route,
        provider="openai",
        model="budget-slow",
        key_id=key_id,
        messages=MSGS,
        max_tokens=10,
        stream=True,
    )
    results = fire(proxy, 20, {**h, **extra}, body, path)
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 5 and codes.count(402) == 15, codes
    refused = next(r for r in results if r.status_code == 402)
    assert "monthly AI budget" in refused.json()["error"]["message"]
    proxy.settled(uid)
    spent, reserved = proxy.sql(
        "select spent_usd, reserved_usd from private.ai_budget_months where user_id = %s", (uid,)
    )[0]
    assert spent == Decimal("0.05") and reserved == 0
    total = proxy.sql("select sum(cost_usd) from public.ai_usage where user_id = %s", (uid,))[0][0]
    assert total <= Decimal("0.05")
    # Budget refusals did not use up rate-limit slots.
    assert (
        proxy.sql("select count(*) from private.rate_limit_events where key = %s", (f"ai:{uid}",))[0][0] == 5
    )


def test_pending_reservations_are_released_by_cleanup(proxy: Proxy) -> None:
    import psycopg

    from tests.helpers import act_as

    uid, _ = proxy.user()

    with psycopg.connect(proxy.db_url) as conn, act_as(conn, uid, rollback=False) as cur:
        cur.execute("select usage_id from private.ai_begin('openai', 'gpt-4o', 1000, 1000)")
        (usage_id,) = cur.fetchone() or (None,)
    reserved = proxy.sql("select reserved_usd from private.ai_budget_months where user_id = %s", (uid,))[0][0]
    assert reserved > 0
    proxy.sql("update public.ai_usage set created_at = now() - interval '2 hours' where id = %s", (usage_id,))
    assert len(proxy.sql("select * from private.cleanup_ai_usage_pending(10, true)")) == 1
    assert len(proxy.sql("select * from private.cleanup_ai_usage_pending(10, false)")) == 1
    assert (
        proxy.sql("select reserved_usd from private.ai_budget_months where user_id = %s", (uid,))[0][0] == 0
    )
    assert proxy.sql("select status from public.ai_usage where id = %s", (usage_id,))[0][0] == "abandoned"
