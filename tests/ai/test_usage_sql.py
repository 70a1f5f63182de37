"""SQL side of usage and admission: RLS both ways, grants per role, bad input changes nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.helpers import act_as


def begin(cur: psycopg.Cursor[Any], model: str = "gpt-4o") -> Any:
    """(outcome, usage_id, ticket) of one admission as the current user."""
    cur.execute("select outcome, usage_id, ticket from private.ai_begin('openai', %s, 100, 100)", (model,))
    return cur.fetchone()


def test_usage_rows_owner_reads_stranger_and_anon_do_not(db: psycopg.Connection[Any], make_user: Any) -> None:
    owner, stranger = make_user(), make_user()
    with act_as(db, owner) as cur:
        outcome, usage_id, ticket = begin(cur)
        assert outcome == "ok"
        cur.execute("select private.ai_finish(%s, 'ok', 100, 50, 0, 12, p_ticket => %s)", (usage_id, ticket))
        cost = cur.fetchone()[0]  # type: ignore[index]
        assert float(cost) == pytest.approx((2.5 * 100 + 10 * 50) / 1_000_000)
        cur.execute("select status, input_tokens, output_tokens from public.ai_usage")
        assert cur.fetchall() == [("ok", 100, 50)]
        with act_as(db, stranger) as c2:
            c2.execute("select count(*) from public.ai_usage")
            assert c2.fetchone() == (0,)
        with pytest.raises(psycopg.Error) as err, act_as(db, stranger) as c3:
            c3.execute("select private.ai_finish(%s, 'ok', 1, 1, 0, 1, p_ticket => %s)", (usage_id, ticket))
        assert err.value.sqlstate == "PT404"
        # Users cannot write usage rows directly.
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, owner) as c4:
            c4.execute("update public.ai_usage set cost_usd = 0")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, owner) as c5:
            c5.execute(
                "insert into public.ai_usage (user_id, provider, model) values (%s, 'openai', 'x')", (owner,)
            )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, None, "anon") as cur:
        cur.execute("select * from public.ai_usage")
    with act_as(db, None, "service_role") as cur:
        cur.execute("select count(*) from public.ai_usage")  # operators read everything
        assert cur.fetchone() is not None


def test_admission_functions_not_callable_by_anon_or_service_role(
    db: psycopg.Connection[Any], make_user: Any
) -> None:
    uid = make_user()
    for role in ("anon", "service_role"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid, role) as cur:
            begin(cur)
    for role in ("anon", "authenticated"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid, role) as cur:
            cur.execute("select * from private.cleanup_ai_keys(10, true)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid) as cur:
        cur.execute("select * from private.ai_budget_months")


def test_bad_admission_input_changes_nothing(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid = make_user()
    with pytest.raises(psycopg.errors.InvalidParameterValue), act_as(db, uid) as cur:
        cur.execute("select * from private.ai_begin('openai', '', 1, 1)")
    with pytest.raises(psycopg.errors.InvalidParameterValue), act_as(db, uid) as cur:
        _, usage_id, ticket = begin(cur)
        cur.execute("select private.ai_finish(%s, 'bogus', 1, 1, 0, 1, p_ticket => %s)", (usage_id, ticket))
    assert db.execute("select count(*) from public.ai_usage where user_id = %s", (uid,)).fetchone() == (0,)
    assert db.execute(
        "select count(*) from private.rate_limit_events where key = %s", (f"ai:{uid}",)
    ).fetchone() == (0,)


def test_prices_readable_by_everyone_writable_by_service_role_only(db: psycopg.Connection[Any]) -> None:
    with act_as(db, None, "anon") as cur:
        cur.execute("select count(*) from public.ai_prices where model = '*'")
        assert cur.fetchone() == (4,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, None, "anon") as cur:
        cur.execute("update public.ai_prices set input_usd_per_mtok = 0")
    with act_as(db, None, "service_role") as cur:
        cur.execute(
            "update public.ai_prices set input_usd_per_mtok = 1 where provider = 'gemini' and model = '*'"
        )
        assert cur.rowcount == 1
