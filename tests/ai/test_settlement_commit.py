"""How each settlement commits (workers/ai/service.py, AIService.settle): the one that runs
after a JSON answer was sent does not wait for the WAL flush; every other one does.

A deferred constraint trigger on public.ai_usage runs inside COMMIT, so it sees the
`synchronous_commit` that this COMMIT uses.
"""

from __future__ import annotations

import uuid

import pytest

from tests.ai.conftest import Proxy
from tests.ai.routes import request_for
from tests.ai.test_generate import add_key

MSGS = [{"role": "user", "content": "say hello"}]


def log_settlement_commits(proxy: Proxy, user: uuid.UUID) -> None:
    proxy.sql(
        "create table public.test_settle_log (status text, synchronous_commit text);"
        "grant insert on public.test_settle_log to authenticated;"
        "create function public.test_at_settle() returns trigger language plpgsql as $$"
        " begin"
        f"  if new.user_id = '{user}' and new.status <> 'pending' then"
        "    insert into public.test_settle_log values (new.status, current_setting('synchronous_commit'));"
        "  end if;"
        "  return null;"
        " end $$;"
        "create constraint trigger test_at_settle after update on public.ai_usage"
        " deferrable initially deferred for each row execute function public.test_at_settle();"
    )


def settled_user(proxy: Proxy) -> tuple[uuid.UUID, dict[str, str], str]:
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    log_settlement_commits(proxy, uid)
    return uid, h, key_id


@pytest.mark.parametrize("route", ["generate", "openai", "anthropic", "gemini"])
def test_a_json_answer_is_settled_without_waiting_for_the_flush(proxy: Proxy, route: str) -> None:
    uid, h, key_id = settled_user(proxy)
    path, body, extra = request_for(
        route, provider="openai", model="gpt-4o-mini", key_id=key_id, messages=MSGS
    )
    resp = proxy.http.post(path, headers={**h, **extra}, json=body)
    assert resp.status_code == 200, resp.text
    proxy.settled(uid)
    assert proxy.sql("select status, synchronous_commit from public.test_settle_log") == [("ok", "off")]
    # Settled exactly as a durable settlement would be: the reservation is gone, the cost spent.
    assert proxy.sql(
        "select reserved_usd = 0 and spent_usd > 0 from private.ai_budget_months where user_id = %s",
        (uid,),
    ) == [(True,)]


def test_a_stream_is_settled_durably_before_its_last_event(proxy: Proxy) -> None:
    _, h, key_id = settled_user(proxy)
    path, body, extra = request_for(
        "openai", provider="openai", model="gpt-4o-mini", key_id=key_id, messages=MSGS, stream=True
    )
    with proxy.http.stream("POST", path, headers={**h, **extra}, json=body) as resp:
        assert resp.status_code == 200
        events = list(resp.iter_lines())
    assert "data: [DONE]" in events
    assert proxy.sql("select status, synchronous_commit from public.test_settle_log") == [("ok", "on")]


def test_a_failed_call_is_settled_durably(proxy: Proxy) -> None:
    _, h, key_id = settled_user(proxy)
    path, body, extra = request_for(
        "generate", provider="openai", model="gpt-4o-fail500", key_id=key_id, messages=MSGS
    )
    resp = proxy.http.post(path, headers={**h, **extra}, json=body)  # the fake answers 500
    assert resp.status_code == 502, resp.text
    assert proxy.sql("select status, synchronous_commit from public.test_settle_log") == [("error", "on")]
