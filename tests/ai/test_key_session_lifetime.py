"""Provider keys are held for the session by default; keeping one is an explicit choice (#13 item 7).

The ideas canvas tells users their key is "stored temporarily, only used for the session
duration": a key stored without a lifetime expires after plans.ai_key_session_hours (12 by
default), `keep: true` keeps it until deleted, and an expired key is never used and is removed
by the cron cleanup.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.ai.conftest import Proxy
from tests.ai.test_keys import SECRET_KEY, generate, store
from tests.helpers import act_as, keep_as
from workers.cleanup.runner import run_cleanups
from workers.cleanup.tasks import CleanupContext
from workers.jobs.queue_sql import SqlQueue
from workers.settings import Settings

LIFETIME = "select expires_at - created_at from public.ai_keys where id = %s"


def test_key_without_a_lifetime_lasts_the_session_default(proxy: Proxy) -> None:
    _, h = proxy.user()
    row = store(proxy, h)
    assert row["expires_at"] is not None
    assert proxy.sql(LIFETIME, (row["id"],)) == [(timedelta(hours=12),)]


def test_the_session_lifetime_is_a_plan_setting(proxy: Proxy) -> None:
    proxy.sql("update public.plans set ai_key_session_hours = 2 where id = 'free'")
    try:
        _, h_free = proxy.user()
        _, h_pro = proxy.user(plan="pro")
        assert proxy.sql(LIFETIME, (store(proxy, h_free)["id"],)) == [(timedelta(hours=2),)]
        assert proxy.sql(LIFETIME, (store(proxy, h_pro)["id"],)) == [(timedelta(hours=12),)]
    finally:
        proxy.sql("update public.plans set ai_key_session_hours = 12 where id = 'free'")


def test_keeping_a_key_is_explicit(proxy: Proxy) -> None:
    _, h = proxy.user()
    kept = store(proxy, h, keep=True)
    assert kept["expires_at"] is None
    timed = store(proxy, h, expires_in_hours=48)
    assert proxy.sql(LIFETIME, (timed["id"],))[0][0] > timedelta(hours=47)
    assert generate(proxy, h, kept["id"]).status_code == 200


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"keep": "yes"}, "keep must be true or false"),
        ({"keep": 1}, "keep must be true or false"),
        ({"keep": True, "expires_in_hours": 3}, "give either keep or expires_in_hours, not both"),
    ],
)
def test_bad_keep_is_refused_and_nothing_stored(proxy: Proxy, extra: dict[str, Any], message: str) -> None:
    _, h = proxy.user()
    resp = proxy.http.post("/v1/keys", json={"provider": "openai", "key": SECRET_KEY, **extra}, headers=h)
    assert resp.status_code == 400 and resp.json()["error"]["message"] == message
    assert proxy.sql("select count(*) from public.ai_keys") == [(0,)]


def test_a_session_key_past_its_lifetime_is_never_used_and_cleaned_up(proxy: Proxy) -> None:
    _, h = proxy.user()
    session = store(proxy, h)
    kept = store(proxy, h, keep=True)
    assert generate(proxy, h, session["id"]).status_code == 200
    # The session ends: its lifetime has passed.
    proxy.sql(
        "update public.ai_keys set expires_at = now() - interval '1 second' where id = %s", (session["id"],)
    )
    n = len(proxy.fake.requests)
    resp = generate(proxy, h, session["id"])
    assert resp.status_code == 404 and "expired" in resp.json()["error"]["message"]
    assert len(proxy.fake.requests) == n
    # The cron cleanup (private.cleanup_ai_keys, discovered by the runner) removes it and its secret.
    queue = SqlQueue(proxy.db_url)
    try:
        [result] = run_cleanups(
            queue, CleanupContext(Settings(), proxy.db_url), ["ai_keys"], batch_size=10, dry_run=False
        )
    finally:
        queue.close()
    assert result.count == 1 and session["id"] in result.items[0]
    assert proxy.sql("select id::text from public.ai_keys") == [(kept["id"],)]
    assert proxy.sql("select count(*) from private.ai_key_secrets") == [(1,)]


def test_sql_store_default_and_infinity(db: psycopg.Connection[Any], make_user: Any) -> None:
    alice = make_user()
    store_sql = "select private.ai_key_store('openai', null, 'abcd', %s::timestamptz, 'a', '\\x00', '\\x00')"
    with keep_as(db, alice) as cur:
        (session,) = cur.execute(store_sql, (None,)).fetchone()
        (kept,) = cur.execute(store_sql, ("infinity",)).fetchone()
    assert db.execute(LIFETIME, (session,)).fetchone() == (timedelta(hours=12),)
    assert db.execute("select expires_at from public.ai_keys where id = %s", (kept,)).fetchone() == (None,)
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        cur.execute(store_sql, ("-infinity",))
    assert "key expiry must be in the future" in str(err.value)


def test_session_hours_is_bounded_and_not_user_writable(db: psycopg.Connection[Any], make_user: Any) -> None:
    with pytest.raises(psycopg.errors.CheckViolation), db.transaction(force_rollback=True):
        db.execute("update public.plans set ai_key_session_hours = 0 where id = 'free'")
    with act_as(db, make_user()) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("update public.plans set ai_key_session_hours = 9999 where id = 'free'")
