"""private.ai_begin's plan lookup and budget reservation, pinned down for whoever makes the
admission cheaper (issue #17 tried a one-statement upsert: docs/benchmarks.md): the plan's limits
apply ('free' without a profile), reservations add up to the budget exactly, settled costs count,
and a refused reservation changes nothing (no budget row, usage row, ticket or rate-limit slot)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as

# gpt-4o costs 2.5 USD / 10 USD per million input / output tokens (seeded prices):
# an admission estimating 100 + 100 tokens reserves 0.00125 USD.
ESTIMATE = Decimal("0.00125")
BEGIN = (
    "select outcome, usage_id, ticket, remaining, budget_left_usd"
    " from private.ai_begin('openai', 'gpt-4o', 100, 100)"
)


def _counts(db: psycopg.Connection[Any], uid: uuid.UUID) -> tuple[int, int, int, int]:
    """(budget rows, usage rows, tickets, rate-limit events) of this user."""
    row = db.execute(
        "select (select count(*) from private.ai_budget_months where user_id = %(u)s),"
        " (select count(*) from public.ai_usage where user_id = %(u)s),"
        " (select count(*) from private.ai_usage_tickets t join public.ai_usage u on u.id = t.usage_id"
        "   where u.user_id = %(u)s),"
        " (select count(*) from private.rate_limit_events where key = 'ai:' || %(u)s)",
        {"u": uid},
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def _reserved(db: psycopg.Connection[Any], uid: uuid.UUID) -> tuple[Decimal, Decimal]:
    row = db.execute(
        "select spent_usd, reserved_usd from private.ai_budget_months where user_id = %s", (uid,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_first_call_over_the_budget_is_refused_and_changes_nothing(
    db: psycopg.Connection[Any], make_user: Any
) -> None:
    uid, other = make_user(), make_user()
    db.execute("update public.plans set ai_monthly_budget_usd = %s where id = 'free'", (ESTIMATE / 2,))
    with pytest.raises(psycopg.Error) as err, act_as(db, uid) as cur:
        cur.execute(BEGIN)
    assert err.value.sqlstate == "PT402"
    assert _counts(db, uid) == (0, 0, 0, 0)
    # The budget is the plan's: the same estimate fits a plan with room for it.
    db.execute("update public.plans set ai_monthly_budget_usd = %s where id = 'pro'", (ESTIMATE,))
    db.execute("update public.profiles set plan = 'pro' where id = %s", (other,))
    with act_as(db, other, rollback=False) as cur:
        assert cur.execute(BEGIN).fetchone()[0] == "ok"  # type: ignore[index]
    assert _counts(db, other) == (1, 1, 1, 1)


def test_reservations_add_up_to_the_budget_exactly(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid = make_user()
    db.execute("update public.plans set ai_monthly_budget_usd = %s where id = 'free'", (ESTIMATE * 2,))
    with act_as(db, uid, rollback=False) as cur:
        first = cur.execute(BEGIN).fetchone()
    with act_as(db, uid, rollback=False) as cur:
        second = cur.execute(BEGIN).fetchone()
    assert first is not None and second is not None
    assert (first[0], first[4]) == ("ok", ESTIMATE)  # budget left after the first reservation
    assert (second[0], second[4]) == ("ok", Decimal(0))
    assert _reserved(db, uid) == (0, ESTIMATE * 2)
    with pytest.raises(psycopg.Error) as err, act_as(db, uid) as cur:
        cur.execute(BEGIN)
    assert err.value.sqlstate == "PT402"
    assert _counts(db, uid) == (1, 2, 2, 2)  # the refused third took no slot, row or ticket
    # Settled costs count as spent: the first call settles at 0.00025 USD, so a new
    # reservation still does not fit next to the second's; once the second settles at 0, it does.
    with act_as(db, uid, rollback=False) as cur:
        cost = cur.execute(
            "select private.ai_finish(%s, 'ok', 100, 0, 0, 5, p_ticket => %s)", (first[1], first[2])
        ).fetchone()[0]  # type: ignore[index]
    assert cost == Decimal("0.00025")
    assert _reserved(db, uid) == (Decimal("0.00025"), ESTIMATE)
    with pytest.raises(psycopg.Error) as err, act_as(db, uid) as cur:
        cur.execute(BEGIN)
    assert err.value.sqlstate == "PT402"
    with act_as(db, uid, rollback=False) as cur:
        cur.execute("select private.ai_finish(%s, 'ok', 0, 0, 0, 5, p_ticket => %s)", (second[1], second[2]))
    with act_as(db, uid) as cur:
        third = cur.execute(BEGIN).fetchone()
    assert third is not None and (third[0], third[4]) == ("ok", ESTIMATE * 2 - Decimal("0.00025") - ESTIMATE)


def test_the_profile_plan_sets_the_rate_limit_and_free_applies_without_one(
    db: psycopg.Connection[Any], make_user: Any
) -> None:
    free_user, pro_user, no_profile = make_user(), make_user(), make_user()
    db.execute("update public.profiles set plan = 'pro' where id = %s", (pro_user,))
    db.execute("delete from public.profiles where id = %s", (no_profile,))
    windows = dict(db.execute("select id, ai_requests_per_window from public.plans").fetchall())
    for uid, plan in ((free_user, "free"), (pro_user, "pro"), (no_profile, "free")):
        with act_as(db, uid) as cur:
            outcome, *_, remaining, _left = cur.execute(BEGIN).fetchone()  # type: ignore[misc]
        assert (outcome, remaining) == ("ok", windows[plan] - 1), plan
