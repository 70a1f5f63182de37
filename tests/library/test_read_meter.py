"""The read meter: GET/HEAD requests (READ ONLY transactions in PostgREST) are counted exactly."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.helpers import backline, create_user, one_line_error
from tests.library.postgrest import concurrent_requests, events, request, request_error
from workers.db import read_meter
from workers.errors import BacklineError


@pytest.fixture
def conn(clone_url: str) -> Any:
    with psycopg.connect(clone_url, autocommit=True) as c:
        yield c


@pytest.fixture
def metered(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    read_meter.enable(conn)
    conn.execute(
        "update public.plans set api_reads_per_hour = 4, api_writes_per_hour = 100 where id = 'free'"
    )
    return conn


def role_password(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("select rolpassword from pg_authid where rolname = 'backline_api_meter'").fetchone()
    return row[0] if row else None


def meter_sessions(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "select pid from pg_stat_activity"
        " where usename = 'backline_api_meter' and datname = current_database()"
    ).fetchall()
    return [r[0] for r in rows]


def test_gets_are_counted_and_refused_past_the_limit(metered):
    user = create_user(metered)
    assert [request(metered, user, m) for m in ("GET", "HEAD", "GET", "GET")] == [None] * 4
    assert events(metered, f"api:read:{user}") == 4
    assert request(metered, user, "GET") == "PT429"
    assert events(metered, f"api:read:{user}") == 4  # a refused read takes no slot
    # reads and writes keep separate budgets
    assert request(metered, user, "POST") is None
    assert events(metered, f"api:write:{user}") == 1


def test_the_refusal_says_when_to_retry(metered):
    user = create_user(metered)
    for _ in range(4):
        request(metered, user, "GET")
    refused = request_error(metered, user, "GET")
    assert refused is not None and refused.sqlstate == "PT429"
    assert "at most 4 per 01:00:00; retry in" in str(refused)
    assert refused.diag.message_hint.startswith("Retry after ")


def test_anonymous_gets_are_counted_per_client_address(metered):
    headers = {"x-forwarded-for": "198.51.100.7"}
    outcomes = [request(metered, None, "GET", role="anon", headers=headers) for _ in range(5)]
    assert outcomes == [None] * 4 + ["PT429"]
    assert events(metered, "api:read:ip:198.51.100.7") == 4


def test_post_to_a_stable_function_is_a_counted_read(metered):
    """PostgREST runs rpc('my_profile') (STABLE) read-only: it is a read, and metering keeps working."""
    user = create_user(metered)
    notices: list[str] = []
    metered.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
    assert request(metered, user, "POST", "/rpc/my_profile", read_only=True) is None
    assert [request(metered, user, "GET") for _ in range(4)] == [None, None, None, "PT429"]
    assert events(metered, f"api:read:{user}") == 4 and events(metered, f"api:write:{user}") == 0
    assert notices == []


def test_a_long_client_address_is_hashed_not_an_outage(metered):
    notices: list[str] = []
    metered.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
    headers = {"x-real-ip": "9" * 300}
    assert [request(metered, None, "GET", role="anon", headers=headers) for _ in range(5)] == [None] * 4 + [
        "PT429"
    ]
    keys = metered.execute("select distinct key from private.rate_limit_events").fetchall()
    assert len(keys) == 1 and keys[0][0].startswith("api:read:sha256:") and len(keys[0][0]) < 100
    assert notices == []


def test_a_refusing_meter_skips_one_read_without_backing_off(metered):
    user = create_user(metered)
    notices: list[str] = []
    metered.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
    metered.execute(
        "revoke execute on function private.api_meter_take(text, integer) from backline_api_meter"
    )
    try:
        assert request(metered, user, "GET") is None
    finally:
        metered.execute(
            "grant execute on function private.api_meter_take(text, integer) to backline_api_meter"
        )
    assert len(notices) == 1 and notices[0].startswith("api meter refused a slot")
    assert events(metered, f"api:read:{user}") == 0
    assert request(metered, user, "GET") is None  # the session is still open and used at once
    assert events(metered, f"api:read:{user}") == 1 and len(notices) == 1


def test_fifty_concurrent_gets_at_limit_ten_let_exactly_ten_through(clone_url, metered):
    metered.execute("update public.plans set api_reads_per_hour = 10 where id = 'free'")
    user = create_user(metered)
    results = concurrent_requests(clone_url, user, "GET", 50)
    assert len(results) == 50
    assert results.count(None) == 10 and results.count("PT429") == 40
    assert events(metered, f"api:read:{user}") == 10


def test_one_meter_session_per_connection_reopened_when_it_breaks(metered):
    user = create_user(metered)
    assert request(metered, user, "GET") is None
    assert request(metered, user, "GET") is None
    sessions = meter_sessions(metered)
    assert len(sessions) == 1  # reused, not one per request
    metered.execute("select pg_terminate_backend(%s)", (sessions[0],))
    assert request(metered, user, "GET") is None
    assert events(metered, f"api:read:{user}") == 3  # the read after the break was counted too
    assert meter_sessions(metered) not in ([], sessions)


def test_unreachable_meter_falls_back_to_checking(metered):
    user = create_user(metered)
    metered.execute(
        "update private.api_read_meter set conninfo = 'host=127.0.0.1 port=1 user=backline_api_meter'"
    )
    notices: list[str] = []
    metered.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
    assert request(metered, user, "GET") is None  # reads are never broken by a limiter outage
    assert request(metered, user, "GET") is None
    assert events(metered, f"api:read:{user}") == 0
    # one warning: after a failure the connection skips the meter for 10 s instead of
    # paying a connect timeout on every read
    assert len(notices) == 1 and notices[0].startswith("api meter unavailable")
    # the window is still checked
    for _ in range(4):
        assert request(metered, user, "POST", "/rpc/explore") is None
    assert request(metered, user, "GET") == "PT429"


def test_the_meter_role_can_only_take_api_slots(metered):
    user = create_user(metered)
    metered.execute("begin")
    try:
        metered.execute("set local role backline_api_meter")
        metered.execute("select private.api_meter_take(%s, 5)", (f"api:read:{user}",))
        metered.execute("select private.api_meter_take(%s, 5)", (f"api:write:{user}",))
        metered.execute("reset role")
        # the slots were taken (writes too, so that a failing write stays counted)
        assert events(metered, f"api:read:{user}") == 1 and events(metered, f"api:write:{user}") == 1
        metered.execute("set local role backline_api_meter")
        for statement in (
            "select * from private.api_meter_take('import:someone', 5)",
            "select * from private.api_meter_take('ai:someone', 5)",
            "select * from private.rate_limit_take('api:read:x', 5, interval '1 hour')",
            "select count(*) from public.documents",
            "select count(*) from private.rate_limit_events",
            "select conninfo from private.api_read_meter",
        ):
            metered.execute("savepoint s")
            with pytest.raises(psycopg.Error) as exc:
                metered.execute(statement)
            metered.execute("rollback to savepoint s")
            assert exc.value.sqlstate in ("42501", "22023"), statement
    finally:
        metered.execute("rollback")


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_api_roles_cannot_reach_the_meter(conn, role):
    for function in (
        "extensions.dblink(text, text)",
        "extensions.dblink_connect(text, text)",
        "extensions.dblink_exec(text, text)",
        "private.api_meter_count(text, integer)",
        "private.api_meter_take(text, integer)",
        "private.api_meter_probe(text)",
        "private.api_meter_conninfo(text)",
    ):
        allowed = conn.execute(
            "select has_function_privilege(%s, %s, 'execute')", (role, function)
        ).fetchone()
        assert allowed == (False,), (role, function)
    readable = conn.execute("select has_table_privilege(%s, 'private.api_read_meter', 'select')", (role,))
    assert readable.fetchone() == (False,)


def test_enable_refuses_a_connection_that_does_not_work_and_stores_nothing(conn):
    with pytest.raises(BacklineError, match=r"could not open the meter session at 127\.0\.0\.1:1"):
        read_meter.enable(conn, host="127.0.0.1", port=1)
    assert read_meter.status(conn).enabled is False
    for bad in ({"port": 0}, {"host": " "}, {"password": ""}):
        with pytest.raises(BacklineError):
            read_meter.enable(conn, **bad)  # type: ignore[arg-type]
    assert read_meter.status(conn).enabled is False


def test_a_failed_enable_leaves_the_roles_password_alone(conn):
    read_meter.enable(conn, password="first-pass")
    before = conn.execute("select rolpassword from pg_authid where rolname = 'backline_api_meter'").fetchone()
    with pytest.raises(BacklineError, match="could not open the meter session"):
        read_meter.enable(conn, host="127.0.0.1", port=1, password="other-pass")
    after = conn.execute("select rolpassword from pg_authid where rolname = 'backline_api_meter'").fetchone()
    assert after == before
    assert read_meter.status(conn).port != 1  # the working configuration stays


def test_conninfo_never_names_a_database(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("insert into private.api_read_meter (conninfo) values ('host=/tmp dbname=other')")


def test_meter_follows_the_database_it_runs_in(make_database):
    """The stored parameters never carry a database: the meter connects to the one it serves."""
    first = make_database()
    with psycopg.connect(first, autocommit=True) as c:
        read_meter.enable(c)
        name = c.execute("select current_database()").fetchone()[0]
        info = c.execute(
            "select private.api_meter_conninfo(conninfo) from private.api_read_meter"
        ).fetchone()[0]
    assert f"dbname='{name}'" in info


def test_cli_enable_status_disable_json(clone_url):
    enabled = backline("db", "read-meter", "enable", "--database-url", clone_url, "--json")
    assert enabled.returncode == 0, enabled.stderr
    state = json.loads(enabled.stdout)
    assert state["enabled"] is True and state["user"] == "backline_api_meter"
    assert state["has_password"] is False
    shown = backline("db", "read-meter", "status", "--json", env={"DATABASE_URL": clone_url})
    assert json.loads(shown.stdout) == state
    disabled = backline("db", "read-meter", "disable", "--database-url", clone_url, "--json")
    assert json.loads(disabled.stdout)["enabled"] is False
    with psycopg.connect(clone_url) as c:
        assert c.execute("select count(*) from private.api_read_meter").fetchone() == (0,)


def test_cli_bad_input_is_one_line_and_exit_one(clone_url):
    unreachable = backline("db", "read-meter", "enable", "--database-url", clone_url, "--port", "1")
    assert unreachable.returncode == 1
    assert "could not open the meter session" in one_line_error(unreachable)
    out_of_range = backline("db", "read-meter", "enable", "--database-url", clone_url, "--port", "70000")
    assert out_of_range.returncode == 1 and "--port must be 1-65535" in one_line_error(out_of_range)
    with psycopg.connect(clone_url) as c:
        assert c.execute("select count(*) from private.api_read_meter").fetchone() == (0,)


def test_enable_with_a_password_sets_it_only_where_the_server_refused_it(conn):
    """Over TCP the embedded server asks for SCRAM passwords (the CI's PostgreSQL 15 trusts 127.0.0.1)."""
    conn.execute("alter role backline_api_meter password 'an-older-password'")
    verifier_before = role_password(conn)
    port = conn.execute("select current_setting('port')::integer").fetchone()[0]
    state = read_meter.enable(conn, host="127.0.0.1", port=port, password="s3cret-meter-pass")
    assert state.enabled and state.has_password and state.host == "127.0.0.1"
    assert "s3cret-meter-pass" in conn.execute("select conninfo from private.api_read_meter").fetchone()[0]
    assert "s3cret-meter-pass" not in json.dumps(state.as_dict())
    method = conn.execute(
        "select auth_method from pg_hba_file_rules where type = 'host' and address = '127.0.0.1'"
        " order by line_number limit 1"
    ).fetchone()[0]
    if method == "trust":
        assert role_password(conn) == verifier_before  # accepted as it was: nothing to change
    else:
        verifier = role_password(conn)
        assert verifier != verifier_before and verifier.startswith("SCRAM-SHA-256$")  # hashed client-side
        user = create_user(conn)
        assert request(conn, user, "GET") is None  # the hook's session logs in with it
        assert events(conn, f"api:read:{user}") == 1
