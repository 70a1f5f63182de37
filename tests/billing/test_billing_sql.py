"""Billing tables and functions in SQL: RLS matrix, privileges, exactly-once under real concurrency."""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg
import pytest

from tests.billing.stripe_events import checkout_completed, new_customer, new_subscription, subscription_event
from tests.helpers import act_as, create_user

PROCESS = "select outcome from private.billing_process_event(%s::jsonb, 'pro')"


def _process(db, body):
    """Run the webhook's function as the service role, keeping its effects in the test transaction."""
    with act_as(db, None, "service_role", rollback=False) as cur:
        outcome = cur.execute(PROCESS, (json.dumps(body),)).fetchone()[0]
    return outcome


@pytest.fixture
def billed(db, make_user):
    """Alice has a linked customer and an active subscription; Bob has nothing."""
    alice, bob = make_user(), make_user()
    cus, sub = new_customer(), new_subscription()
    assert _process(db, checkout_completed(alice, cus, sub)) == "applied"
    return alice, bob, cus, sub


@pytest.mark.parametrize("table", ["public.billing_customers", "public.billing_subscriptions"])
def test_owner_reads_own_rows_other_user_sees_none_anon_refused(db, billed, table):
    alice, bob, cus, _ = billed
    q = f"select customer_id, user_id from {table}"
    with act_as(db, alice) as cur:
        assert cur.execute(q).fetchall() == [(cus, alice)]
    with act_as(db, bob) as cur:
        assert cur.execute(q).fetchall() == []
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(q)
    with act_as(db, None, "service_role") as cur:
        assert (cus, alice) in cur.execute(q).fetchall()


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
@pytest.mark.parametrize(
    "statement",
    [
        "insert into public.billing_customers (customer_id, user_id, linked_by_event)"
        " values ('cus_stolen', '{user}', 'evt_x')",
        "update public.billing_customers set user_id = '{user}'",
        "delete from public.billing_customers",
        "update public.billing_subscriptions set status = 'active', plan_id = 'pro'",
        "insert into public.billing_subscriptions (subscription_id, customer_id, user_id, status, plan_id,"
        " state_source, state_at, state_event_id) values ('sub_x', 'cus_x', '{user}', 'active', 'pro',"
        " 'subscription', now(), 'evt_x')",
        "delete from public.billing_subscriptions",
    ],
)
def test_no_api_role_writes_billing_tables(db, billed, role, statement):
    _, bob, _, _ = billed
    with act_as(db, bob, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(statement.format(user=bob))


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "statement",
    [
        "select * from private.billing_events",
        "select * from private.billing_prices",
        "select * from private.billing_process_event('{}'::jsonb, 'pro')",
        "select private.billing_refresh_plan(auth.uid(), 'evt_x')",
        "select * from private.cleanup_billing_events(10, true)",
        "select private.billing_link_customer('cus_mine', auth.uid())",
    ],
)
def test_users_cannot_reach_private_billing_objects(db, billed, role, statement):
    _, bob, _, _ = billed
    with act_as(db, bob, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(statement)


def test_service_role_reads_events_but_cannot_forge_them(db, billed):
    with act_as(db, None, "service_role") as cur:
        assert cur.execute("select count(*) from private.billing_events").fetchone()[0] >= 1
    for statement in (
        "insert into private.billing_events (event_id, type, stripe_created_at)"
        " values ('evt_forged', 'x', now())",
        "delete from private.billing_events",
        "insert into private.billing_prices values ('price_x', 'pro')",
    ):
        with act_as(db, None, "service_role") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute(statement)


def test_users_cannot_change_their_own_plan(db, billed):
    _, bob, _, _ = billed
    with act_as(db, bob) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("update public.profiles set plan = 'pro' where id = %s", (bob,))


def test_account_erasure_leaves_no_billing_row_with_the_user(db, billed):
    alice, _, cus, sub = billed
    db.execute("delete from auth.users where id = %s", (alice,))
    assert db.execute(
        "select count(*) from public.billing_customers where customer_id = %s", (cus,)
    ).fetchone() == (0,)
    assert db.execute(
        "select count(*) from public.billing_subscriptions where subscription_id = %s", (sub,)
    ).fetchone() == (0,)
    assert db.execute(
        "select count(*) from private.billing_events where user_id = %s", (alice,)
    ).fetchone() == (0,)


def test_malformed_event_raises_22023_and_writes_nothing(db, billed):
    before = db.execute("select count(*) from private.billing_events").fetchone()
    for body in (
        {},
        {"id": "evt_1", "type": "x", "created": 1},
        {"id": "bad", "type": "x", "created": 1, "data": {"object": {}}},
    ):
        with act_as(db, None, "service_role") as cur, pytest.raises(psycopg.errors.InvalidParameterValue):
            cur.execute(PROCESS, (json.dumps(body),))
    assert db.execute("select count(*) from private.billing_events").fetchone() == before


def test_unknown_default_plan_is_refused(db, billed):
    body = subscription_event("updated", new_subscription(), new_customer(), "active")
    with act_as(db, None, "service_role") as cur, pytest.raises(psycopg.errors.InvalidParameterValue):
        cur.execute("select * from private.billing_process_event(%s::jsonb, 'gold')", (json.dumps(body),))


def test_cleanup_removes_only_old_events_and_dry_run_keeps_them(db, billed):
    db.execute(
        "insert into private.billing_events (event_id, type, stripe_created_at, received_at, outcome)"
        " values ('evt_old1', 'x', now(), now() - interval '91 days', 'ignored'),"
        " ('evt_old2', 'x', now(), now() - interval '100 days', 'ignored')"
    )
    listed = db.execute("select item from private.cleanup_billing_events(10, true)").fetchall()
    assert len(listed) == 2 and all("evt_old" in r[0] for r in listed)
    old = "select count(*) from private.billing_events where event_id like 'evt_old%'"
    assert db.execute(old).fetchone() == (2,)
    assert len(db.execute("select * from private.cleanup_billing_events(1, false)").fetchall()) == 1
    assert len(db.execute("select * from private.cleanup_billing_events(10, false)").fetchall()) == 1
    assert db.execute("select count(*) from private.billing_events").fetchone()[0] >= 1  # recent one kept


def test_concurrent_duplicate_waits_for_the_first_and_changes_nothing(clone_url):
    """Two real connections deliver the same event; the second blocks on the first and then sees it."""
    with psycopg.connect(clone_url) as setup:
        user = create_user(setup)
    body = checkout_completed(user, new_customer(), new_subscription())
    first = psycopg.connect(clone_url)
    second = psycopg.connect(clone_url)
    results: dict[str, str] = {}
    try:
        tx = first.transaction()
        tx.__enter__()
        first.execute("set local role service_role")
        results["first"] = first.execute(PROCESS, (json.dumps(body),)).fetchone()[0]

        def deliver_again() -> None:
            with second.transaction():
                second.execute("set local role service_role")
                results["second"] = second.execute(PROCESS, (json.dumps(body),)).fetchone()[0]

        thread = threading.Thread(target=deliver_again)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the duplicate must wait for the first delivery's transaction"
        tx.__exit__(None, None, None)  # commit
        thread.join(10)
        assert not thread.is_alive()
    finally:
        first.close()
        second.close()
    assert results == {"first": "applied", "second": "duplicate"}
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select action from public.audit_log where user_id = %s order by id", (user,)
        ).fetchall() == [("billing.customer_linked",), ("billing.plan_changed",)]


def test_a_rolled_back_first_delivery_lets_the_retry_apply(clone_url):
    with psycopg.connect(clone_url) as setup:
        user = create_user(setup)
    body = checkout_completed(user, new_customer(), new_subscription())
    with psycopg.connect(clone_url) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("set local role service_role")
            assert conn.execute(PROCESS, (json.dumps(body),)).fetchone()[0] == "applied"
        with conn.transaction():
            conn.execute("set local role service_role")
            assert conn.execute(PROCESS, (json.dumps(body),)).fetchone()[0] == "applied"
        assert conn.execute("select plan from public.profiles where id = %s", (user,)).fetchone() == ("pro",)
    assert uuid.UUID(str(user))


def test_concurrent_events_of_two_customers_of_one_user_leave_the_right_plan(clone_url):
    """The plan is computed under the profile's row lock, so the last writer sees the other's change.

    The user has subscription A (active) and B (incomplete) under two customers. One transaction
    activates B and stays open; another cancels A meanwhile. Without the lock-then-read order the
    second would compute 'free' from a snapshot that misses B and overwrite the plan.
    """
    with psycopg.connect(clone_url) as setup:
        user = create_user(setup)
    cus_a, sub_a, cus_b, sub_b = new_customer(), new_subscription(), new_customer(), new_subscription()
    now = int(time.time())
    with psycopg.connect(clone_url) as conn:
        for body in (
            checkout_completed(user, cus_a, sub_a, created=now - 10),
            checkout_completed(user, cus_b, sub_b, payment_status="unpaid", created=now - 10),
        ):
            with conn.transaction():
                conn.execute("set local role service_role")
                assert conn.execute(PROCESS, (json.dumps(body),)).fetchone()[0] == "applied"
    first, second = psycopg.connect(clone_url), psycopg.connect(clone_url)
    results: dict[str, str] = {}
    try:
        tx = first.transaction()
        tx.__enter__()
        first.execute("set local role service_role")
        activate_b = subscription_event("updated", sub_b, cus_b, "active", created=now)
        results["first"] = first.execute(PROCESS, (json.dumps(activate_b),)).fetchone()[0]

        def cancel_a() -> None:
            with second.transaction():
                second.execute("set local role service_role")
                body = subscription_event("deleted", sub_a, cus_a, "canceled", created=now)
                results["second"] = second.execute(PROCESS, (json.dumps(body),)).fetchone()[0]

        thread = threading.Thread(target=cancel_a)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the second event must wait for the user's profile lock"
        tx.__exit__(None, None, None)
        thread.join(10)
    finally:
        first.close()
        second.close()
    assert results == {"first": "applied", "second": "applied"}
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select plan from public.profiles where id = %s", (user,)).fetchone() == ("pro",)


def test_operator_links_a_customer_whose_checkout_had_no_user(db, make_user):
    carol, dave = make_user(), make_user()
    cus, sub = new_customer(), new_subscription()
    assert _process(db, checkout_completed(None, cus, sub)) == "unknown_user"
    assert _process(db, subscription_event("updated", sub, cus, "active")) == "unknown_customer"
    assert db.execute("select plan from public.profiles where id = %s", (carol,)).fetchone() == ("free",)
    assert db.execute("select private.billing_link_customer(%s, %s)", (cus, carol)).fetchone() == ("linked",)
    assert db.execute("select plan from public.profiles where id = %s", (carol,)).fetchone() == ("pro",)
    assert db.execute(
        "select user_id from public.billing_subscriptions where subscription_id = %s", (sub,)
    ).fetchone() == (carol,)
    assert db.execute("select private.billing_link_customer(%s, %s)", (cus, carol)).fetchone() == (
        "already_linked",
    )
    assert db.execute("select private.billing_link_customer(%s, %s)", (cus, dave)).fetchone() == (
        "customer_conflict",
    )
    assert db.execute("select plan from public.profiles where id = %s", (dave,)).fetchone() == ("free",)
    for args in (("not-a-customer", carol), (cus, uuid.uuid4())):
        with db.transaction(force_rollback=True), pytest.raises(psycopg.errors.InvalidParameterValue):
            db.execute("select private.billing_link_customer(%s, %s)", args)
