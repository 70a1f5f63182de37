"""The shared sliding-window limiter: exact under concurrency, sliding, clear errors."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.helpers import act_as

TAKE = "select allowed, remaining, retry_after_seconds from private.rate_limit_take(%s, %s, %s::interval)"


def test_fifty_concurrent_requests_at_limit_ten_let_exactly_ten_through(clone_url):
    barrier = threading.Barrier(50)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def request() -> None:
        with psycopg.connect(clone_url, autocommit=True) as conn:
            barrier.wait()
            allowed = conn.execute(TAKE, ("user:1:api", 10, "1 hour")).fetchone()[0]
            with lock:
                outcomes.append(bool(allowed))

    threads = [threading.Thread(target=request) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 50
    assert outcomes.count(True) == 10
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select count(*) from private.rate_limit_events where key = 'user:1:api'"
        ).fetchone() == (10,)


def test_window_slides(db):
    db.autocommit = True  # each take is its own transaction, as in production
    key = f"slide:{time.time_ns()}"
    assert [db.execute(TAKE, (key, 2, "0.6 seconds")).fetchone()[0] for _ in range(3)] == [True, True, False]
    refused = db.execute(TAKE, (key, 2, "0.6 seconds")).fetchone()
    assert refused[:2] == (False, 0) and refused[2] >= 1
    time.sleep(0.7)
    assert db.execute(TAKE, (key, 2, "0.6 seconds")).fetchone()[:2] == (True, 1)
    db.execute("delete from private.rate_limit_events where key = %s", (key,))
    db.execute("delete from private.rate_limit_counts where key = %s", (key,))


def test_keys_are_independent_and_cost_counts(db):
    assert db.execute(TAKE.replace("::interval)", "::interval, 3)"), ("a", 3, "1 hour")).fetchone()[:2] == (
        True,
        0,
    )
    assert db.execute(TAKE, ("a", 3, "1 hour")).fetchone()[0] is False
    assert db.execute(TAKE, ("b", 3, "1 hour")).fetchone()[:2] == (True, 2)


def test_enforce_raises_pt429_with_retry_hint(db, make_user):
    user = make_user()
    with act_as(db, user, "service_role") as cur:
        cur.execute("select private.rate_limit_enforce(%s, 1, '1 hour')", (f"user:{user}",))
        with pytest.raises(psycopg.Error) as info:
            cur.execute("select private.rate_limit_enforce(%s, 1, '1 hour')", (f"user:{user}",))
    assert info.value.sqlstate == "PT429"
    assert "rate limit exceeded" in info.value.diag.message_primary
    assert info.value.diag.message_hint.startswith("Retry after ")


@pytest.mark.parametrize(
    ("key", "limit", "window"),
    [(None, 1, "1 hour"), ("", 1, "1 hour"), ("k", -1, "1 hour"), ("k", 1, "0 seconds"), ("k", 1, "-1 hour")],
)
def test_bad_input_is_rejected_and_counts_nothing(db, key, limit, window):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute(TAKE, (key, limit, window))
    db.rollback()
    assert db.execute("select count(*) from private.rate_limit_events where key = 'k'").fetchone() == (0,)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_users_cannot_spend_someone_elses_limit(db, make_user, role):
    victim = make_user()
    with act_as(db, make_user(), role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(TAKE, (f"ai:{victim}", 100000, "15 minutes"))
    with act_as(db, make_user(), role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select private.rate_limit_enforce(%s, 1, '1 hour')", (f"import:{victim}",))


def test_limiter_internals_are_not_reachable_by_api_roles(db, make_user):
    user = make_user()
    with act_as(db, user) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select * from private.rate_limit_events")
    with act_as(db, user) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select private.rate_limit_purge()")


def test_retry_after_accounts_for_the_cost(db):
    db.autocommit = True
    key = f"cost:{time.time_ns()}"
    db.execute(TAKE, (key, 3, "1 hour"))
    time.sleep(0.01)
    db.execute(TAKE, (key, 3, "1 hour"))
    refused = db.execute(TAKE.replace("::interval)", "::interval, 3)"), (key, 3, "1 hour")).fetchone()
    assert refused[0] is False
    # Two counted requests must leave before 3 fit: the wait is about a whole window.
    assert refused[2] >= 3599
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute(TAKE.replace("::interval)", "::interval, 4)"), (key, 3, "1 hour"))
    db.execute("delete from private.rate_limit_events where key = %s", (key,))
    db.execute("delete from private.rate_limit_counts where key = %s", (key,))
