"""API rate limits in PostgREST's pre-request hook, called exactly the way PostgREST calls it."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import create_user
from tests.library.postgrest import concurrent_requests, events, request, request_error


@pytest.fixture
def conn(clone_url: str) -> Any:
    with psycopg.connect(clone_url, autocommit=True) as c:
        yield c


@pytest.fixture
def user(conn: psycopg.Connection[Any]) -> uuid.UUID:
    conn.execute("update public.plans set api_writes_per_hour = 3, api_reads_per_hour = 4 where id = 'free'")
    return create_user(conn)


def test_hook_is_registered_for_postgrest(conn):
    settings = conn.execute(
        "select s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole"
        " where r.rolname = 'authenticator'"
    ).fetchall()
    assert any("pgrst.db_pre_request=private.api_pre_request" in cfg for row in settings for cfg in row[0])


def test_writes_limited_per_plan_with_retry_message(conn, user):
    assert [request(conn, user, m) for m in ("POST", "PATCH", "DELETE")] == [None, None, None]
    refused = request_error(conn, user, "PUT")
    assert refused is not None and refused.sqlstate == "PT429"  # PostgREST answers HTTP 429 with this message
    assert "at most 3 per 01:00:00; retry in" in str(refused) and "seconds" in str(refused)
    assert refused.diag.message_hint.startswith("Retry after ")
    # reads have their own budget
    assert request(conn, user, "POST", "/rpc/sync_pull") is None
    assert events(conn, f"api:write:{user}") == 3 and events(conn, f"api:read:{user}") == 1


def test_get_in_read_only_transaction_is_checked_not_recorded(conn, user):
    assert request(conn, user, "GET") is None  # must never break reads
    assert events(conn, f"api:read:{user}") == 0
    for _ in range(4):
        assert request(conn, user, "POST", "/rpc/explore") is None
    assert request(conn, user, "GET") == "PT429"
    assert request(conn, user, "HEAD") == "PT429"
    assert request(conn, user, "POST", "/rpc/open_share") == "PT429"


def test_window_slides(conn, user):
    for _ in range(3):
        assert request(conn, user, "POST") is None
    assert request(conn, user, "POST") == "PT429"
    # the oldest request leaves the hour: exactly one more fits
    key = f"api:write:{user}"
    conn.execute(
        "update private.rate_limit_events set at = at - interval '61 minutes' where id = ("
        " select min(id) from private.rate_limit_events where key = %s)",
        (key,),
    )
    # Moved back by hand, it is older than the limiter's last cutoff, where no take looks
    # again (a take's events are always newer); forgetting the cutoff lets the next take see it.
    conn.execute("update private.rate_limit_counts set purged_until = null where key = %s", (key,))
    assert request(conn, user, "POST") is None
    assert request(conn, user, "POST") == "PT429"


def test_service_role_unlimited_anon_counted_per_real_address(conn, user):
    for _ in range(5):
        assert request(conn, None, "POST", role="service_role") is None
    # The client wrote the first X-Forwarded-For entry; the trusted proxy appended the last one.
    spoofed = {"x-forwarded-for": "203.0.113.9, 198.51.100.7"}
    assert [request(conn, None, "POST", role="anon", headers=spoofed) for _ in range(4)] == [None] * 3 + [
        "PT429"
    ]
    assert events(conn, "api:write:ip:198.51.100.7") == 3
    assert events(conn, "api:write:ip:203.0.113.9") == 0
    # Changing the spoofed part does not buy a fresh budget.
    other = {"x-forwarded-for": "1.2.3.4, 198.51.100.7"}
    assert request(conn, None, "POST", role="anon", headers=other) == "PT429"
    # An address set by the edge (Cloudflare / x-real-ip) wins over X-Forwarded-For.
    edge = {"cf-connecting-ip": "192.0.2.1", "x-forwarded-for": "198.51.100.7"}
    assert request(conn, None, "POST", role="anon", headers=edge) is None
    assert events(conn, "api:write:ip:192.0.2.1") == 1
    # No address at all: one shared bucket, still limited (never unlimited).
    assert [request(conn, None, "POST", role="anon") for _ in range(4)] == [None] * 3 + ["PT429"]
    assert events(conn, "api:write:ip:unknown") == 3


def test_pro_plan_gets_its_own_limits(conn, user):
    conn.execute("update public.plans set api_writes_per_hour = 5 where id = 'pro'")
    conn.execute("update public.profiles set plan = 'pro' where id = %s", (user,))
    assert [request(conn, user, "POST") for _ in range(6)] == [None] * 5 + ["PT429"]


def test_fifty_concurrent_requests_at_limit_ten_let_exactly_ten_through(clone_url, conn):
    conn.execute("update public.plans set api_writes_per_hour = 10 where id = 'free'")
    uid = create_user(conn)
    results = concurrent_requests(clone_url, uid, "POST", 50)
    assert len(results) == 50
    assert results.count(None) == 10 and results.count("PT429") == 40
    assert events(conn, f"api:write:{uid}") == 10


def test_non_uuid_subject_gets_free_limits_instead_of_an_error(conn, user):
    assert [request(conn, "device-42", "POST") for _ in range(4)] == [None] * 3 + ["PT429"]  # type: ignore[arg-type]
