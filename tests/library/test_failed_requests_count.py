"""A request the API rate limiter admitted stays counted when it fails (issue #12).

Each request here is run the way PostgREST runs it: BEGIN (READ ONLY for
reads), role, claims and request settings, the pre-request hook, then the
request's own statement; an error there rolls the whole transaction back.
Before migration 20261206090700 the hook's count was rolled back with it, so
failing requests were free. Now the hook counts in the meter session
(committed on its own); without a working meter it counts in the request's
transaction as before, and the API keeps working.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.helpers import create_user
from tests.library.bodies import loop_body
from tests.library.postgrest import HOOK, concurrent_requests, events
from workers.db import read_meter

BACKOFF_LOCK = 1112364132  # private.api_meter_count's back-off marker (session advisory lock key 1)
UNREACHABLE = "host=127.0.0.1 port=1 user=backline_api_meter"
INSERT_LOOP = "insert into public.documents (kind, title, body) values ('loop', %s, %s)"


def api(
    conn: psycopg.Connection[Any],
    user: uuid.UUID | None,
    method: str,
    path: str,
    statement: str,
    params: tuple[Any, ...] = (),
    *,
    role: str = "authenticated",
    headers: dict[str, str] | None = None,
    read_only: bool | None = None,
) -> str | None:
    """One PostgREST request with its own statement; the SQLSTATE it failed with, or None.

    The hook and the statement share one transaction, committed when both succeed and
    rolled back (as PostgREST does) when either fails.
    """
    claims: dict[str, Any] = {"role": role}
    if user is not None:
        claims["sub"] = str(user)
    if read_only is None:
        read_only = method in ("GET", "HEAD")
    try:
        conn.execute(f"begin isolation level read committed {'read only' if read_only else 'read write'}")
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute(
            "select set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
            " set_config('request.path', %s, true), set_config('request.headers', %s, true)",
            (json.dumps(claims), method, path, json.dumps(headers or {})),
        )
        conn.execute(HOOK)
        conn.execute(statement, params)
        conn.execute("commit")
        return None
    except psycopg.Error as exc:
        conn.execute("rollback")
        return exc.sqlstate


def bad_write(conn: psycopg.Connection[Any], user: uuid.UUID) -> str | None:
    """POST /documents with a 201-character title: the table's check constraint refuses it (23514)."""
    return api(conn, user, "POST", "/documents", INSERT_LOOP, ("x" * 201, json.dumps(loop_body())))


def good_write(conn: psycopg.Connection[Any], user: uuid.UUID, title: str = "ok") -> str | None:
    return api(conn, user, "POST", "/documents", INSERT_LOOP, (title, json.dumps(loop_body())))


def documents_of(conn: psycopg.Connection[Any], user: uuid.UUID) -> int:
    return conn.execute("select count(*) from public.documents where owner_id = %s", (user,)).fetchone()[0]


def meter_sessions(conn: psycopg.Connection[Any]) -> int:
    return conn.execute(
        "select count(*) from pg_stat_activity"
        " where usename = 'backline_api_meter' and datname = current_database()"
    ).fetchone()[0]


@pytest.fixture
def conn(clone_url: str) -> Any:
    with psycopg.connect(clone_url, autocommit=True) as c:
        c.execute("update public.plans set api_writes_per_hour = 5, api_reads_per_hour = 5 where id = 'free'")
        yield c


@pytest.fixture
def metered(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    read_meter.enable(conn)
    return conn


@pytest.fixture
def notices(conn: psycopg.Connection[Any]) -> list[str]:
    seen: list[str] = []
    conn.add_notice_handler(lambda d: seen.append(str(d.message_primary)))
    return seen


def test_ten_failing_writes_use_up_a_write_limit_of_five(metered, notices):
    user = create_user(metered)
    outcomes = [bad_write(metered, user) for _ in range(10)]
    # five were admitted and failed in the database, then the limiter refused the rest
    assert outcomes == ["23514"] * 5 + ["PT429"] * 5
    assert events(metered, f"api:write:{user}") == 5  # committed in the meter session, not rolled back
    assert good_write(metered, user) == "PT429"
    assert documents_of(metered, user) == 0
    assert meter_sessions(metered) == 1  # the requests' rollbacks did not close the meter session
    assert notices == []


def test_under_the_limit_a_valid_write_after_failing_ones_passes(metered):
    """The other direction: failures take exactly one slot each, a valid write still fits."""
    user = create_user(metered)
    assert [bad_write(metered, user) for _ in range(4)] == ["23514"] * 4
    assert good_write(metered, user) is None
    assert documents_of(metered, user) == 1
    assert events(metered, f"api:write:{user}") == 5
    assert good_write(metered, user, "one too many") == "PT429"
    assert documents_of(metered, user) == 1
    # reads have their own budget
    assert api(metered, user, "GET", "/documents", "select count(*) from public.documents") is None


@pytest.mark.parametrize("persona", ["user", "anon"])
def test_ten_failing_read_rpcs_use_up_a_read_limit_of_five(metered, persona):
    """Guessing share tokens: open_share (a read RPC, run read-write) fails with PT404 each time."""
    user = create_user(metered) if persona == "user" else None
    role = "authenticated" if user else "anon"
    headers = {"x-forwarded-for": "198.51.100.23"}
    key = f"api:read:{user}" if user else "api:read:ip:198.51.100.23"

    def call(statement: str, params: tuple[Any, ...], path: str) -> str | None:
        return api(metered, user, "POST", path, statement, params, role=role, headers=headers)

    guesses = [
        call("select public.open_share(%s)", (uuid.uuid4().hex,), "/rpc/open_share") for _ in range(10)
    ]
    assert guesses == ["PT404"] * 5 + ["PT429"] * 5
    assert events(metered, key) == 5
    assert call("select public.explore('loop')", (), "/rpc/explore") == "PT429"
    assert api(metered, user, "GET", "/documents", "select 1", role=role, headers=headers) == "PT429"
    assert events(metered, key) == 5  # refused requests take no slot


def test_a_failing_plain_read_stays_counted(metered):
    """A GET that fails after the hook (here: a bad filter value) keeps its read slot."""
    user = create_user(metered)
    bad_filter = "select * from public.documents where id = 'not-a-uuid'::uuid"
    assert [api(metered, user, "GET", "/documents", bad_filter) for _ in range(5)] == ["22P02"] * 5
    assert events(metered, f"api:read:{user}") == 5
    assert api(metered, user, "GET", "/documents", "select 1") == "PT429"


def test_fifty_concurrent_writes_at_limit_ten_through_the_meter_let_exactly_ten_through(clone_url, metered):
    metered.execute("update public.plans set api_writes_per_hour = 10 where id = 'free'")
    user = create_user(metered)
    results = concurrent_requests(clone_url, user, "POST", 50)
    assert len(results) == 50
    assert results.count(None) == 10 and results.count("PT429") == 40
    assert events(metered, f"api:write:{user}") == 10


def test_without_a_meter_writes_are_counted_in_their_transaction(conn, notices):
    """Not configured (hosted until `backline db read-meter enable`): the earlier behaviour, documented
    in docs/rate-limits.md: a valid write is counted, a failing one is rolled back with its count."""
    user = create_user(conn)
    assert read_meter.status(conn).enabled is False
    assert good_write(conn, user) is None
    assert events(conn, f"api:write:{user}") == 1
    assert bad_write(conn, user) == "23514"
    assert events(conn, f"api:write:{user}") == 1
    assert [good_write(conn, user, f"d{i}") for i in range(5)] == [None] * 4 + ["PT429"]
    assert notices == []  # not configured is not an outage


def test_an_unreachable_meter_does_not_block_the_api(metered, notices):
    user = create_user(metered)
    metered.execute("update private.api_read_meter set conninfo = %s", (UNREACHABLE,))
    # the first request notices the outage, and fails itself: the back-off must survive its rollback
    assert bad_write(metered, user) == "23514"
    assert len(notices) == 1 and notices[0].startswith("api meter unavailable for 10 s")
    assert good_write(metered, user) is None  # writes work, counted in their own transaction
    assert documents_of(metered, user) == 1
    assert events(metered, f"api:write:{user}") == 1
    assert api(metered, user, "GET", "/documents", "select 1") is None  # reads work, checked only
    assert events(metered, f"api:read:{user}") == 0
    assert [bad_write(metered, user) for _ in range(3)] == ["23514"] * 3
    bad_filter = "select * from public.documents where id = 'not-a-uuid'::uuid"
    assert [api(metered, user, "GET", "/documents", bad_filter) for _ in range(2)] == ["22P02"] * 2
    assert len(notices) == 1  # backing off: no connect attempt, no warning per (failing) request
    # the limit still holds: four more valid writes fill the window of five
    assert [good_write(metered, user, f"d{i}") for i in range(5)] == [None] * 4 + ["PT429"]
    assert documents_of(metered, user) == 5 and len(notices) == 1


def test_after_the_back_off_a_recovered_meter_counts_again(metered, notices):
    user = create_user(metered)
    working = metered.execute("select conninfo from private.api_read_meter").fetchone()[0]
    metered.execute("update private.api_read_meter set conninfo = %s", (UNREACHABLE,))
    assert good_write(metered, user) is None and len(notices) == 1
    metered.execute("update private.api_read_meter set conninfo = %s", (working,))
    assert good_write(metered, user) is None  # still backing off: counted in its transaction
    assert meter_sessions(metered) == 0
    # let the back-off expire (this connection is the request's: move its marker into the past)
    markers = metered.execute(
        "select objid::bigint from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"
        " and classid = %s::oid and objsubid = 2",
        (BACKOFF_LOCK,),
    ).fetchall()
    assert len(markers) == 1  # one marker per session, however often it backed off
    metered.execute("select pg_advisory_unlock(%s, %s)", (BACKOFF_LOCK, markers[0][0]))
    metered.execute("select pg_advisory_lock(%s, 1)", (BACKOFF_LOCK,))
    assert [bad_write(metered, user) for _ in range(4)] == ["23514", "23514", "23514", "PT429"]
    assert meter_sessions(metered) == 1 and len(notices) == 1
    assert events(metered, f"api:write:{user}") == 5


def test_a_refusing_meter_counts_that_request_in_its_transaction(metered, notices):
    user = create_user(metered)
    assert good_write(metered, user) is None  # opens the meter session
    metered.execute(
        "revoke execute on function private.api_meter_take(text, integer) from backline_api_meter"
    )
    try:
        assert good_write(metered, user) is None
    finally:
        metered.execute(
            "grant execute on function private.api_meter_take(text, integer) to backline_api_meter"
        )
    assert len(notices) == 1 and notices[0].startswith("api meter refused a slot")
    assert events(metered, f"api:write:{user}") == 2  # one in the meter, one in the request
    assert bad_write(metered, user) == "23514"  # no back-off: the open session is used at once
    assert events(metered, f"api:write:{user}") == 3 and len(notices) == 1


def test_the_meter_refusal_is_the_limiters_429_with_its_retry_time(metered):
    user = create_user(metered)
    for _ in range(5):
        bad_write(metered, user)
    metered.execute("begin read write")
    metered.execute("set local role authenticated")
    metered.execute(
        "select set_config('request.jwt.claims', %s, true), set_config('request.method', 'POST', true),"
        " set_config('request.path', '/documents', true)",
        (json.dumps({"role": "authenticated", "sub": str(user)}),),
    )
    with pytest.raises(psycopg.Error) as refused:
        metered.execute(HOOK)
    metered.execute("rollback")
    assert refused.value.sqlstate == "PT429"
    assert "at most 5 per 01:00:00; retry in" in str(refused.value)
    assert refused.value.diag.message_hint.startswith("Retry after ")


def test_only_the_hook_reaches_the_meter(conn):
    for role in ("anon", "authenticated", "service_role"):
        for function in ("private.api_meter_count(text, integer)", "private.api_meter_take(text, integer)"):
            allowed = conn.execute("select has_function_privilege(%s, %s, 'execute')", (role, function))
            assert allowed.fetchone() == (False,), (role, function)
    gone = conn.execute("select to_regprocedure('private.api_meter_read(text, integer)')").fetchone()
    assert gone == (None,)  # replaced by api_meter_count
