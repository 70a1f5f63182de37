"""Admission and settlement cannot be abused by a signed-in user calling the private functions
directly (migration 20261125081000): no skipping the rate limit, no settling someone's (or the
proxy's) call without its ticket, no re-pricing a call; the proxy's fallback still works."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.ai.conftest import Proxy
from tests.ai.test_generate import MSGS, add_key
from tests.helpers import act_as

BEGIN = "select outcome, usage_id, ticket from private.ai_begin"


def events(db: psycopg.Connection[Any], uid: uuid.UUID) -> int:
    row = db.execute(
        "select count(*) from private.rate_limit_events where key = %s", (f"ai:{uid}",)
    ).fetchone()
    assert row is not None
    return int(row[0])


def usage(db: psycopg.Connection[Any], usage_id: Any) -> tuple[Any, ...]:
    row = db.execute(
        "select status, provider, model, cost_usd, reserved_usd from public.ai_usage where id = %s",
        (usage_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def admit(db: psycopg.Connection[Any], uid: uuid.UUID, args: str = "('openai', 'gpt-4o', 100, 100)") -> Any:
    """(outcome, usage_id, ticket), committed to the test's transaction."""
    with act_as(db, uid, rollback=False) as cur:
        cur.execute(BEGIN + args)
        return cur.fetchone()


def test_direct_calls_always_take_the_rate_limit(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid = make_user()
    db.execute("update public.plans set ai_requests_per_window = 2 where id = 'free'")
    # The old bypass flag no longer exists.
    with pytest.raises(psycopg.errors.UndefinedFunction), act_as(db, uid) as cur:
        cur.execute(BEGIN + "('openai', 'gpt-4o', 1, 1, 0, 'generate', false, false)")
    assert admit(db, uid)[0] == "ok" and admit(db, uid)[0] == "ok"
    assert events(db, uid) == 2
    assert admit(db, uid)[0] == "rate_limited"
    # Claiming to be a fallback or a queue request without the server's ticket is refused.
    (primary,) = db.execute(
        "select id from public.ai_usage where user_id = %s limit 1", (uid,)
    ).fetchone() or (0,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute(BEGIN + "('openai', 'gpt-4o', 1, 1, p_fallback_of => %s)", (primary,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute(
            BEGIN + "('openai', 'gpt-4o', 1, 1, p_fallback_of => %s, p_fallback_ticket => 'guess')",
            (primary,),
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute(
            BEGIN + "('openai', 'gpt-4o', 1, 1, p_request_id => %s, p_request_ticket => 'x')", (uuid.uuid4(),)
        )
    assert events(db, uid) == 2
    row = db.execute("select count(*) from public.ai_usage where user_id = %s", (uid,)).fetchone()
    assert row == (2,)


def test_fallback_admission_is_verified_and_single_use(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid, stranger = make_user(), make_user()
    outcome, primary, ticket = admit(
        db, uid, "('openai', 'gpt-4o', 100, 100, p_fallback_provider => 'anthropic', "
        "p_fallback_model => 'claude-3-5-haiku-latest')",
    )  # fmt: skip
    assert outcome == "ok" and events(db, uid) == 1
    fb = "('{}', '{}', 100, 100, p_fallback_of => %s, p_fallback_ticket => %s)"
    # Not the recorded fallback target, or someone else holding the ticket: refused.
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute(BEGIN + fb.format("gemini", "gemini-2.0-flash"), (primary, ticket))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, stranger) as cur:
        cur.execute(BEGIN + fb.format("anthropic", "claude-3-5-haiku-latest"), (primary, ticket))
    with act_as(db, uid, rollback=False) as cur:
        cur.execute(BEGIN + fb.format("anthropic", "claude-3-5-haiku-latest"), (primary, ticket))
        outcome, fallback, fb_ticket = cur.fetchone() or (None, None, None)
    assert outcome == "ok" and events(db, uid) == 1  # the fallback took no second slot
    assert usage(db, fallback)[:3] == ("pending", "anthropic", "claude-3-5-haiku-latest")
    assert usage(db, fallback)[4] > 0  # but its cost is reserved against the budget
    # Once only, and no chains: the fallback row allows no fallback of its own.
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute(BEGIN + fb.format("anthropic", "claude-3-5-haiku-latest"), (primary, ticket))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute(BEGIN + fb.format("anthropic", "claude-3-5-haiku-latest"), (fallback, fb_ticket))
    with pytest.raises(psycopg.errors.InvalidParameterValue), act_as(db, uid) as cur:
        cur.execute(
            BEGIN + "('openai', 'gpt-4o', 1, 1, p_fallback_provider => 'openai', p_fallback_model => 'x',"
            " p_fallback_of => %s, p_fallback_ticket => %s)",
            (fallback, fb_ticket),
        )
    assert events(db, uid) == 1


def test_settlement_needs_the_ticket_and_happens_once(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid = make_user()
    _, usage_id, ticket = admit(db, uid)
    reserved = usage(db, usage_id)[4]
    assert reserved > 0
    settle = "select private.ai_finish(%s, 'ok', 0, 0, 0, 1, p_ticket => %s)"
    for wrong in (None, "guess", ticket[:-1]):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
            cur.execute(settle, (usage_id, wrong))
    assert usage(db, usage_id) == ("pending", "openai", "gpt-4o", 0, reserved)  # unchanged
    with act_as(db, uid, rollback=False) as cur:
        cur.execute(
            "select private.ai_finish(%s, 'ok', 1000, 1000, 0, 1, p_ticket => %s)", (usage_id, ticket)
        )
        cost = (cur.fetchone() or (None,))[0]
    assert cost == Decimal("0.0125") and usage(db, usage_id) == ("ok", "openai", "gpt-4o", cost, 0)
    with pytest.raises(psycopg.Error) as err, act_as(db, uid) as cur:
        cur.execute(settle, (usage_id, ticket))
    assert err.value.sqlstate == "PT404"  # settled already: HTTP 404
    budget = db.execute(
        "select spent_usd, reserved_usd from private.ai_budget_months where user_id = %s", (uid,)
    ).fetchone()
    assert budget == (cost, 0)


def test_settlement_records_the_admitted_model_and_cannot_relabel_it(
    db: psycopg.Connection[Any], make_user: Any
) -> None:
    """ai_finish takes no provider/model: a row (even one declaring a fallback) is settled as
    what was admitted, at the admission prices; the fallback is always its own usage row."""
    uid = make_user()
    _, with_fb, fb_ticket = admit(
        db,
        uid,
        "('openai', 'gpt-4o', 100, 100, p_fallback_provider => 'openai_compat', p_fallback_model => 'llama')",
    )
    relabel = "select private.ai_finish(%s, 'ok', 1000, 1000, 0, 1, %s, %s, %s, %s)"
    with pytest.raises(psycopg.errors.UndefinedFunction), act_as(db, uid) as cur:
        cur.execute(relabel, (with_fb, None, "llama", "openai_compat", fb_ticket))
    assert usage(db, with_fb)[0] == "pending"
    with act_as(db, uid, rollback=False) as cur:
        cur.execute(
            "select private.ai_finish(%s, 'ok', 1000, 1000, 0, 1, p_ticket => %s)", (with_fb, fb_ticket)
        )
    assert usage(db, with_fb)[:4] == ("ok", "openai", "gpt-4o", Decimal("0.0125"))


def test_queue_admission_needs_the_claim_ticket(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid = make_user()
    with act_as(db, uid, rollback=False) as cur:
        cur.execute(
            "insert into public.ai_requests (provider, model, messages) values ('openai', 'gpt-4o', %s)"
            " returning id",
            ('[{"role": "user", "content": "hi"}]',),
        )
        request_id = (cur.fetchone() or (None,))[0]
    assert events(db, uid) == 1  # the insert took the slot
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute("select * from private.ai_request_claim(%s)", (request_id,))
    queued = BEGIN + "('openai', 'gpt-4o', 1, 1, p_request_id => %s, p_request_ticket => %s)"
    db.execute("update public.ai_requests set status = 'running' where id = %s", (request_id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute(queued, (request_id, "guess"))
    with act_as(db, None, "service_role", rollback=False) as cur:  # what the worker does
        cur.execute("select user_id, ticket from private.ai_request_claim(%s)", (request_id,))
        owner, ticket = cur.fetchone() or (None, None)
    assert owner == uid and ticket
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:  # not its target
        cur.execute(queued.replace("'gpt-4o'", "'gpt-4o-mini'"), (request_id, ticket))
    with act_as(db, uid, rollback=False) as cur:
        cur.execute(queued, (request_id, ticket))
        assert (cur.fetchone() or ("",))[0] == "ok"
    assert events(db, uid) == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:  # once per claim
        cur.execute(queued, (request_id, ticket))


def test_tickets_are_readable_by_no_api_role(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid = make_user()
    admit(db, uid)
    for role in ("anon", "authenticated", "service_role"):
        for table in ("private.ai_usage_tickets", "private.ai_request_tickets"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid, role) as cur:
                cur.execute(f"select * from {table}")


def test_fallback_end_to_end_takes_one_slot_and_settles_both(proxy: Proxy) -> None:
    uid, h = proxy.user()
    proxy.sql("update public.plans set ai_requests_per_window = 2 where id = 'free'")
    openai_key, anthropic_key = add_key(proxy, h, "openai"), add_key(proxy, h, "anthropic")
    body = {
        "provider": "openai",
        "model": "gpt-fail500",
        "key_id": openai_key,
        "messages": MSGS,
        "fallback": {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "key_id": anthropic_key},
    }
    first = proxy.http.post("/v1/generate", headers=h, json=body)
    assert first.status_code == 200 and first.json()["fallback_used"] is True
    with proxy.http.stream("POST", "/v1/generate", headers=h, json={**body, "stream": True}) as resp:
        assert resp.status_code == 200 and '"fallback_used":true' in resp.read().decode()
    third = proxy.http.post("/v1/generate", headers=h, json=body)
    assert third.status_code == 429  # two calls, four provider attempts, two slots
    proxy.settled(uid)
    rows = proxy.sql(
        "select provider, status, cost_usd from public.ai_usage where user_id = %s order by created_at",
        (uid,),
    )
    assert [r[:2] for r in rows] == [("openai", "error"), ("anthropic", "ok")] * 2
    assert Decimal(str(first.json()["usage"]["cost_usd"])) == rows[1][2]
    assert proxy.sql("select count(*) from private.rate_limit_events where key = %s", (f"ai:{uid}",)) == [
        (2,)
    ]
    tickets = "select count(*) from private.ai_usage_tickets t join public.ai_usage u on u.id = t.usage_id"
    assert proxy.sql(tickets + " where u.user_id = %s", (uid,)) == [(0,)]
    assert proxy.sql("select reserved_usd from private.ai_budget_months where user_id = %s", (uid,)) == [(0,)]
