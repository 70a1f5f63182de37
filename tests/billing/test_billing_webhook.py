"""POST /v1/billing/stripe end to end: signature, exactly-once, ordering, plan changes.

Each test gets its own committed database (the webhook commits), a tiny
Starlette app built from the billing routes, and httpx's ASGI transport.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
import pytest

from tests.billing.stripe_events import (
    OLD_SECRET,
    SECRET,
    Webhook,
    checkout_completed,
    event,
    new_customer,
    new_subscription,
    payment_failed,
    subscription_event,
)
from tests.helpers import create_user
from workers.billing.signature import signature_header


@pytest.fixture
def url(clone_url: str) -> str:
    return clone_url


@pytest.fixture
def hook(url: str) -> Webhook:
    return Webhook(url)


def make_user(url: str) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        return create_user(conn)


def plan_of(url: str, user: uuid.UUID) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("select plan from public.profiles where id = %s", (user,)).fetchone()[0]


def snapshot(url: str) -> dict[str, Any]:
    """Everything billing may write, to prove that a refused request wrote nothing."""
    with psycopg.connect(url) as conn:

        def rows(q: str) -> list[Any]:
            return conn.execute(q).fetchall()

        return {
            "events": rows("select event_id, outcome from private.billing_events order by 1"),
            "customers": rows("select customer_id, user_id from public.billing_customers order by 1"),
            "subs": rows(
                "select subscription_id, status, plan_id, user_id, state_at"
                " from public.billing_subscriptions order by 1"
            ),
            "plans": rows("select id, plan from public.profiles order by 1"),
            "audit": rows("select user_id, action, details from public.audit_log order by id"),
        }


def audit_actions(url: str, user: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select action, details from public.audit_log where user_id = %s order by id", (user,)
        ).fetchall()


def subscriber(url: str, hook: Webhook) -> tuple[uuid.UUID, str, str]:
    """A user who completed checkout: linked customer, active subscription, plan pro."""
    user, cus, sub = make_user(url), new_customer(), new_subscription()
    now = int(time.time())
    assert hook.post(subscription_event("created", sub, cus, "active", created=now - 20)).status_code == 200
    response = hook.post(checkout_completed(user, cus, sub, created=now - 10))
    assert response.json()["outcome"] == "applied"
    assert plan_of(url, user) == "pro"
    return user, cus, sub


# -- signature -----------------------------------------------------------------


def test_forged_signature_is_refused_and_writes_nothing(url, hook):
    user = make_user(url)
    before = snapshot(url)
    body = checkout_completed(user, new_customer(), new_subscription())
    response = hook.post(body, secrets=["whsec_attacker_guess"])
    assert response.status_code == 400
    assert response.json()["error"] == "bad_signature"
    assert snapshot(url) == before


def test_tampered_body_with_a_genuine_signature_is_refused(url, hook):
    user, other = make_user(url), make_user(url)
    original = json.dumps(checkout_completed(user, new_customer(), new_subscription())).encode()
    header = signature_header(original, [SECRET])
    tampered = original.replace(str(user).encode(), str(other).encode())
    before = snapshot(url)
    response = hook.post(tampered, header=header)
    assert response.status_code == 400
    assert snapshot(url) == before


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=00", "v1=" + "0" * 64, "t=1700000000"])
def test_missing_or_malformed_header_is_refused(url, hook, header):
    before = snapshot(url)
    body = checkout_completed(make_user(url), new_customer(), new_subscription())
    response = hook.post(body, header=header)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_signature"
    assert snapshot(url)["events"] == before["events"] == []


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_or_future_timestamp_is_refused(url, hook, skew):
    user = make_user(url)
    before = snapshot(url)
    response = hook.post(
        checkout_completed(user, new_customer(), new_subscription()), timestamp=int(time.time()) + skew
    )
    assert response.status_code == 400
    assert "tolerance" in response.json()["message"]
    assert snapshot(url)["events"] == before["events"] == []


def test_timestamp_inside_the_window_is_accepted(url, hook):
    response = hook.post(
        event("customer.created", {"id": new_customer(), "object": "customer"}),
        timestamp=int(time.time()) - 290,
    )
    assert response.status_code == 200


def test_rotation_any_v1_may_match_any_configured_secret(url):
    # During a roll Stripe signs with both secrets; we may know only the old or only the new one.
    body = event("customer.created", {"id": new_customer(), "object": "customer"})
    new_only = Webhook(url, secrets=[SECRET])
    assert new_only.post(body, secrets=[OLD_SECRET, SECRET]).status_code == 200
    both = Webhook(url, secrets=[OLD_SECRET, SECRET])
    other = event("customer.created", {"id": new_customer(), "object": "customer"})
    assert both.post(other, secrets=[OLD_SECRET]).status_code == 200
    assert both.post(other, secrets=["whsec_unknown"]).status_code == 400


def test_no_secret_configured_refuses_everything(url):
    hook = Webhook(url, secrets=[])
    response = hook.post(event("customer.created", {"id": new_customer()}), secrets=[""])
    assert response.status_code == 503
    assert snapshot(url)["events"] == []


def test_malformed_json_is_400_and_writes_nothing(url, hook):
    for body in (
        b"{not json",
        b"[1, 2]",
        b'{"id": "evt_1", "type": "x"}',
        "\xff".encode("latin-1"),
        json.dumps({"id": "nope", "type": "x", "created": 1, "data": {"object": {}}}).encode(),
    ):
        response = hook.post(body)
        assert response.status_code == 400, body
        assert response.json()["error"] == "malformed_event"
    assert snapshot(url)["events"] == []


def test_signed_subscription_event_without_status_is_400_and_writes_nothing(url, hook):
    body = subscription_event("updated", new_subscription(), new_customer(), "active")
    del body["data"]["object"]["status"]
    response = hook.post(body)
    assert response.status_code == 400
    assert "known status" in response.json()["message"]
    assert snapshot(url)["events"] == []


def test_oversized_body_is_413(url, hook):
    body = event("customer.created", {"id": new_customer(), "pad": "x" * (1024 * 1024)})
    assert hook.post(body).status_code == 413
    assert snapshot(url)["events"] == []


# -- plan mapping --------------------------------------------------------------


def test_checkout_links_customer_and_grants_pro(url, hook):
    user, cus, sub = make_user(url), new_customer(), new_subscription()
    response = hook.post(checkout_completed(user, cus, sub))
    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"
    assert plan_of(url, user) == "pro"
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "select user_id from public.billing_customers where customer_id = %s", (cus,)
        ).fetchone() == (user,)
        assert conn.execute(
            "select status, state_source from public.billing_subscriptions where subscription_id = %s", (sub,)
        ).fetchone() == ("active", "checkout")
    actions = audit_actions(url, user)
    assert [a for a, _ in actions] == ["billing.customer_linked", "billing.plan_changed"]
    assert actions[1][1]["from"] == "free" and actions[1][1]["to"] == "pro"


def test_subscription_before_checkout_is_parked_then_applied(url, hook):
    """Stripe often sends customer.subscription.created before checkout.session.completed."""
    user, cus, sub = make_user(url), new_customer(), new_subscription()
    now = int(time.time())
    before = snapshot(url)
    response = hook.post(subscription_event("created", sub, cus, "trialing", created=now - 5))
    assert response.json()["outcome"] == "unknown_customer"
    after = snapshot(url)
    assert after["plans"] == before["plans"] and after["audit"] == before["audit"]
    assert after["customers"] == []
    assert hook.post(checkout_completed(user, cus, sub, created=now)).json()["outcome"] == "applied"
    assert plan_of(url, user) == "pro"
    with psycopg.connect(url) as conn:  # the real state was kept, not replaced by the provisional one
        assert conn.execute(
            "select status, state_source, user_id from public.billing_subscriptions"
            " where subscription_id = %s",
            (sub,),
        ).fetchone() == ("trialing", "subscription", user)


def test_price_mapping_table_decides_the_plan(url, hook):
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into public.plans (id, name, storage_bytes, documents_per_kind,"
            " ai_requests_per_window, exports_per_day) values ('backup', 'Backup', 1, 1, 1, 1)"
        )
        conn.execute(
            "insert into private.billing_prices (price_ref, plan_id) values ('backup_yearly', 'backup')"
        )
    user, cus, sub = make_user(url), new_customer(), new_subscription()
    now = int(time.time())
    hook.post(checkout_completed(user, cus, sub, created=now - 10))
    assert plan_of(url, user) == "pro"  # the checkout does not name the price: default paid plan
    hook.post(
        subscription_event(
            "updated", sub, cus, "active", price="price_123", lookup_key="backup_yearly", created=now
        )
    )
    assert plan_of(url, user) == "backup"


def test_deleted_subscription_returns_user_to_free(url, hook):
    user, cus, sub = subscriber(url, hook)
    response = hook.post(subscription_event("deleted", sub, cus, "canceled"))
    assert response.json()["outcome"] == "applied"
    assert plan_of(url, user) == "free"
    assert audit_actions(url, user)[-1][1]["to"] == "free"


@pytest.mark.parametrize(
    "status,plan",
    [("past_due", "pro"), ("unpaid", "free"), ("canceled", "free"), ("paused", "free"), ("trialing", "pro")],
)
def test_subscription_status_maps_to_plan(url, hook, status, plan):
    user, cus, sub = subscriber(url, hook)
    hook.post(subscription_event("updated", sub, cus, status))
    assert plan_of(url, user) == plan


def test_user_keeps_pro_while_another_subscription_is_active(url, hook):
    user, cus, sub = subscriber(url, hook)
    second = new_subscription()
    hook.post(subscription_event("created", second, cus, "active"))
    hook.post(subscription_event("deleted", sub, cus, "canceled"))
    assert plan_of(url, user) == "pro"


def test_payment_failed_is_recorded_and_plan_kept(url, hook):
    user, cus, sub = subscriber(url, hook)
    response = hook.post(payment_failed(cus, sub))
    assert response.json()["outcome"] == "recorded"
    assert plan_of(url, user) == "pro"
    with psycopg.connect(url) as conn:
        failed_at = conn.execute(
            "select last_payment_failed_at from public.billing_subscriptions where subscription_id = %s",
            (sub,),
        ).fetchone()[0]
    assert failed_at is not None
    action, details = audit_actions(url, user)[-1]
    assert action == "billing.payment_failed" and details["subscription_id"] == sub
    # Stripe then moves the subscription to past_due (plan kept) and, after the retries, unpaid.
    hook.post(subscription_event("updated", sub, cus, "past_due"))
    assert plan_of(url, user) == "pro"
    hook.post(subscription_event("updated", sub, cus, "unpaid", created=int(time.time()) + 1))
    assert plan_of(url, user) == "free"


def test_unknown_event_type_is_200_and_recorded_as_ignored(url, hook):
    body = event("charge.refunded", {"id": "ch_1", "object": "charge", "customer": new_customer()})
    response = hook.post(body)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert snapshot(url)["events"] == [(body["id"], "ignored")]


def test_unknown_customer_changes_no_user_and_is_logged(url, hook, caplog):
    user = make_user(url)
    before = snapshot(url)
    with caplog.at_level("INFO", logger="backline.billing"):
        response = hook.post(payment_failed(new_customer(), new_subscription()))
    assert response.status_code == 200 and response.json()["outcome"] == "unknown_customer"
    after = snapshot(url)
    assert after["plans"] == before["plans"] and after["audit"] == before["audit"]
    assert after["subs"] == before["subs"] == []
    assert any("unknown_customer" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert plan_of(url, user) == "free"


@pytest.mark.parametrize("reference", [None, "not-a-uuid", "6f1c2a4e-0000-4000-8000-000000000001"])
def test_checkout_without_a_real_user_links_nothing(url, hook, reference):
    response = hook.post(checkout_completed(reference, new_customer(), new_subscription()))
    assert response.status_code == 200 and response.json()["outcome"] == "unknown_user"
    assert snapshot(url)["customers"] == []


def test_customer_is_never_moved_to_another_user(url, hook):
    owner, cus, _ = subscriber(url, hook)
    thief = make_user(url)
    response = hook.post(checkout_completed(thief, cus, new_subscription()))
    assert response.json()["outcome"] == "customer_conflict"
    assert plan_of(url, thief) == "free"
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "select user_id from public.billing_customers where customer_id = %s", (cus,)
        ).fetchone() == (owner,)


def test_payment_mode_checkout_is_ignored(url, hook):
    user = make_user(url)
    response = hook.post(checkout_completed(user, new_customer(), new_subscription(), mode="payment"))
    assert response.json()["outcome"] == "ignored"
    assert plan_of(url, user) == "free"


# -- exactly once and ordering -------------------------------------------------


def test_replayed_event_changes_nothing(url, hook):
    user, cus, sub = subscriber(url, hook)
    deleted = subscription_event("deleted", sub, cus, "canceled")
    assert hook.post(deleted).json()["outcome"] == "applied"
    # The user subscribes again; a replay of the old deletion must not cancel the new state.
    hook.post(subscription_event("created", new_subscription(), cus, "active"))
    assert plan_of(url, user) == "pro"
    before = snapshot(url)
    response = hook.post(deleted)
    assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert snapshot(url) == before


def test_concurrent_duplicates_apply_once(url, hook):
    user, cus, sub = make_user(url), new_customer(), new_subscription()
    body = json.dumps(checkout_completed(user, cus, sub)).encode()
    responses = hook.post_many([body] * 8)
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["applied"] + ["duplicate"] * 7
    assert [a for a, _ in audit_actions(url, user)] == ["billing.customer_linked", "billing.plan_changed"]


def test_older_update_does_not_downgrade_newer_state(url, hook):
    user, cus, sub = subscriber(url, hook)
    now = int(time.time())
    newer = subscription_event("updated", sub, cus, "active", created=now + 2)
    older = subscription_event("updated", sub, cus, "unpaid", created=now + 1)
    assert hook.post(newer).json()["outcome"] == "applied"
    assert hook.post(older).json()["outcome"] == "stale"
    assert plan_of(url, user) == "pro"
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "select status, state_event_id from public.billing_subscriptions where subscription_id = %s",
            (sub,),
        ).fetchone() == ("active", newer["id"])
        assert conn.execute(
            "select outcome from private.billing_events where event_id = %s", (older["id"],)
        ).fetchone() == ("stale",)


def test_canceled_subscription_is_not_revived_by_a_late_update(url, hook):
    user, cus, sub = subscriber(url, hook)
    now = int(time.time())
    hook.post(subscription_event("deleted", sub, cus, "canceled", created=now + 1))
    revived = hook.post(subscription_event("updated", sub, cus, "active", created=now + 5))
    assert revived.json()["outcome"] == "stale"
    assert plan_of(url, user) == "free"


def test_same_second_events_never_step_back_in_the_lifecycle(url, hook):
    user, cus, sub = make_user(url), new_customer(), new_subscription()
    now = int(time.time())
    hook.post(checkout_completed(user, cus, sub, created=now))
    # subscription.created (incomplete) and checkout happened in the same second, delivered late.
    late = subscription_event("created", sub, cus, "incomplete", created=now, price="price_x")
    assert hook.post(late).json()["outcome"] == "stale"
    assert plan_of(url, user) == "pro"
    with psycopg.connect(url) as conn:  # the stale event still taught us the price
        assert conn.execute(
            "select status, price_ref from public.billing_subscriptions where subscription_id = %s", (sub,)
        ).fetchone() == ("active", "price_x")


def test_module_routes_read_settings(monkeypatch, url):
    """The exported `routes` (what the AI service mounts) take their secret from the environment."""
    import workers.ai.billing as billing
    from workers.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", f"whsec_other,{SECRET}")
    get_settings.cache_clear()
    billing.config_from_settings.cache_clear()
    try:
        assert [r.path for r in billing.routes] == ["/v1/billing/stripe"]
        assert billing.config_from_settings().webhook_secrets == ("whsec_other", SECRET)
        from starlette.applications import Starlette

        hook = Webhook(url)
        hook.app = Starlette(routes=billing.routes)
        assert hook.post(event("customer.created", {"id": new_customer()})).status_code == 200
        assert (
            hook.post(event("customer.created", {"id": new_customer()}), secrets=["whsec_wrong"]).status_code
            == 400
        )
    finally:
        get_settings.cache_clear()
        billing.config_from_settings.cache_clear()
