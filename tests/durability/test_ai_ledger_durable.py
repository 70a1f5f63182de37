"""The AI ledger commits durably; a call never settled is charged its reservation, not nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg

from tests.helpers import act_as

BEGIN = "select usage_id, ticket from private.ai_begin('openai', 'gpt-4o', 1000, 1000)"


def _budget(db: psycopg.Connection[Any], user: uuid.UUID) -> tuple[Decimal, Decimal]:
    row = db.execute(
        "select spent_usd, reserved_usd from private.ai_budget_months where user_id = %s", (user,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_admission_and_settlement_leave_the_transaction_durable(
    db: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]
) -> None:
    user = make_user()
    # The durable default a cluster now has (the shared test server may still run an older conf).
    db.execute("select set_config('synchronous_commit', 'on', true)")
    with act_as(db, user, rollback=False) as cur:
        usage_id, ticket = cur.execute(BEGIN).fetchone() or (None, None)
        # What the caller's COMMIT will use: before #18 this was 'off' (asynchronous commit).
        assert cur.execute("select current_setting('synchronous_commit')").fetchone() == ("on",)
    with act_as(db, user, rollback=False) as cur:
        cur.execute(
            "select private.ai_finish(%s, 'ok', 10, 10, 0, 5, null, %s)", (usage_id, ticket)
        ).fetchone()
        assert cur.execute("select current_setting('synchronous_commit')").fetchone() == ("on",)
    for signature in (
        "private.ai_begin(text, text, integer, integer, integer, text, boolean, uuid, text, text, uuid,"
        " text, uuid, text)",
        "private.ai_finish(uuid, text, integer, integer, integer, integer, text, text)",
    ):
        config = db.execute("select proconfig from pg_proc where oid = %s::regprocedure", (signature,))
        assert "synchronous_commit=on" in (config.fetchone() or [[]])[0], signature


def test_a_call_never_settled_is_charged_its_reservation(
    db: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]
) -> None:
    user, other = make_user(), make_user()
    with act_as(db, user, rollback=False) as cur:
        usage_id, _ = cur.execute(BEGIN).fetchone() or (None, None)
    with act_as(db, other, rollback=False) as cur:
        fresh_id, _ = cur.execute(BEGIN).fetchone() or (None, None)  # pending, but not stale yet
    spent, reserved = _budget(db, user)
    assert spent == 0 and reserved > 0
    db.execute(
        "update public.ai_usage set created_at = now() - interval '2 hours' where id = %s", (usage_id,)
    )
    items = [r[0] for r in db.execute("select * from private.cleanup_ai_usage_pending(10, false)")]
    assert items == [f"ai usage {usage_id} abandoned (charged its reservation of {reserved} USD)"]
    # The served-but-unsettled call still counts: as spent now, no longer as reserved.
    assert _budget(db, user) == (reserved, 0)
    row = db.execute("select status, cost_usd, reserved_usd from public.ai_usage where id = %s", (usage_id,))
    assert row.fetchone() == ("abandoned", reserved, 0)
    assert db.execute(
        "select count(*) from private.ai_usage_tickets where usage_id = %s", (usage_id,)
    ).fetchone() == (0,)
    other_row = db.execute("select status from public.ai_usage where id = %s", (fresh_id,)).fetchone()
    assert other_row == ("pending",) and _budget(db, other)[0] == 0  # a recent call is left alone


def test_cleanup_rejects_a_bad_batch_size_and_changes_nothing(db: psycopg.Connection[Any]) -> None:
    import pytest

    before = db.execute("select count(*) from public.ai_usage where status = 'abandoned'").fetchone()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch size"), db.transaction():
        db.execute("select * from private.cleanup_ai_usage_pending(0, false)")
    assert db.execute("select count(*) from public.ai_usage where status = 'abandoned'").fetchone() == before
