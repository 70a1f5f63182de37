"""The admission commits while the provider is called, and nothing of a call is released
before that commit is on disk (workers/ai/ledger.py; issue #17's latency, issue #18's promise).

A deferred constraint trigger on public.ai_usage runs at COMMIT: it makes one user's admission
commit slow (or fail), so the tests can see what happens while the commit is still running.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.ai.conftest import Proxy
from tests.ai.routes import request_for, text_of_event
from tests.ai.test_generate import add_key

MSGS = [{"role": "user", "content": "say hello"}]
SLOW = 0.6  # seconds the slow commit takes


def slow_commit_for(proxy: Proxy, user: uuid.UUID, *, fail: bool = False) -> None:
    """Make `user`'s admissions take SLOW seconds to commit (or fail at commit), logging when
    the commit started."""
    action = (
        "raise exception 'commit refused by the test' using errcode = '40001'"
        if fail
        else f"perform pg_sleep({SLOW})"
    )
    proxy.sql(
        "create table public.test_commit_log (usage_id uuid, started double precision);"
        "grant insert on public.test_commit_log to authenticated;"
        "create function public.test_at_commit() returns trigger language plpgsql as $$"
        " begin"
        f"  if new.user_id = '{user}' then"
        "    insert into public.test_commit_log values (new.id, extract(epoch from clock_timestamp()));"
        f"   {action};"
        "  end if;"
        "  return null;"
        " end $$;"
        "create constraint trigger test_at_commit after insert on public.ai_usage"
        " deferrable initially deferred for each row execute function public.test_at_commit();"
    )


def user_with_slow_commit(proxy: Proxy, *, fail: bool = False) -> tuple[uuid.UUID, dict[str, str], str]:
    """A user with a stored OpenAI key whose admissions commit slowly (or fail at commit)."""
    uid, h = proxy.user()
    key_id = add_key(proxy, h, "openai")
    slow_commit_for(proxy, uid, fail=fail)
    return uid, h, key_id


@pytest.mark.parametrize("route", ["generate", "openai"])
def test_the_answer_waits_for_the_admission_commit_that_overlaps_the_provider_call(
    proxy: Proxy, route: str
) -> None:
    _, h, key_id = user_with_slow_commit(proxy)
    path, body, extra = request_for(
        route, provider="openai", model="gpt-4o-mini", key_id=key_id, messages=MSGS
    )
    sent = time.time()
    resp = proxy.http.post(path, headers={**h, **extra}, json=body)
    answered = time.time()
    assert resp.status_code == 200, resp.text
    [(usage_id, commit_started)] = proxy.sql("select usage_id, started from public.test_commit_log")
    provider_called = proxy.fake.requests[-1]["at"]
    # The provider was called while the admission was still committing ...
    assert provider_called < commit_started + SLOW, (provider_called - sent, commit_started - sent)
    # ... and the answer left only after the commit had finished.
    assert answered - commit_started >= SLOW
    assert proxy.sql("select count(*) from public.ai_usage where id = %s", (usage_id,)) == [(1,)]


def test_the_first_streamed_chunk_waits_for_the_admission_commit(proxy: Proxy) -> None:
    uid, h, key_id = user_with_slow_commit(proxy)
    path, body, extra = request_for(
        "openai", provider="openai", model="gpt-4o-mini", key_id=key_id, messages=MSGS, stream=True
    )
    with proxy.http.stream("POST", path, headers={**h, **extra}, json=body) as resp:
        assert resp.status_code == 200
        first_text = None
        for line in resp.iter_lines():
            if text_of_event("openai", line):
                first_text = time.time()
                break
    assert first_text is not None
    [(commit_started,)] = proxy.sql("select started from public.test_commit_log")
    assert first_text - commit_started >= SLOW
    proxy.settled(uid)


@pytest.mark.parametrize("route", ["generate", "openai"])
def test_an_admission_that_cannot_commit_releases_nothing_and_records_nothing(
    proxy: Proxy, route: str
) -> None:
    uid, h, key_id = user_with_slow_commit(proxy, fail=True)
    calls_before = len(proxy.fake.requests)
    path, body, extra = request_for(
        route, provider="openai", model="gpt-4o-mini", key_id=key_id, messages=MSGS
    )
    resp = proxy.http.post(path, headers={**h, **extra}, json=body)
    assert resp.status_code == 503, resp.text
    assert "Hello" not in resp.text  # the provider's answer is withheld
    assert "could not be recorded" in resp.text
    assert len(proxy.fake.requests) == calls_before + 1  # the provider was called meanwhile
    # Rolled back: no usage row, no reservation, no rate-limit slot.
    assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,)) == [(0,)]
    assert proxy.sql(
        "select coalesce(sum(reserved_usd + spent_usd), 0) from private.ai_budget_months where user_id = %s",
        (uid,),
    ) == [(0,)]
    assert proxy.sql("select count(*) from private.rate_limit_events where key = %s", (f"ai:{uid}",)) == [
        (0,)
    ]
    # The next call (commit fixed) goes through: the connection went back to the pool clean.
    proxy.sql("drop trigger test_at_commit on public.ai_usage")
    resp = proxy.http.post(path, headers={**h, **extra}, json=body)
    assert resp.status_code == 200, resp.text
    proxy.settled(uid)
