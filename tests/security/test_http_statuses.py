"""HTTP statuses a client can act on (issue #12): no API-reachable function answers 5xx for a mistake.

1. A catalog-driven list: every errcode raised explicitly in the body of a
   PL/pgSQL function in `public` (every one is an RPC) or `private` (the helpers
   RPCs, triggers and policies run), with the HTTP status PostgREST 12 gives it
   (workers.check.postgrest_status). None may be 5xx. A new function is listed
   the day it is added.
2. The refusals the issue found answering HTTP 500, called the way PostgREST
   calls them (act_as): each gives its 4xx SQLSTATE and changes nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from workers.check.postgrest_status import http_status
from workers.check.raise_statements import raised_codes

Conn = psycopg.Connection[Any]

# -- 1. every errcode our functions raise, with its HTTP status ------------------------


def sqlstate_of(db: Conn, code: str) -> str:
    """A SQLSTATE as is; a condition name as the server resolves it (RAISE name)."""
    if re.fullmatch(r"[0-9A-Z]{5}", code):
        return code
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", code):
        raise AssertionError(f"errcode {code!r} is not a literal; the test cannot judge it")
    with pytest.raises(psycopg.Error) as caught, db.transaction():
        db.execute(f"do $$ begin raise {code}; end $$")
    assert caught.value.sqlstate and caught.value.sqlstate != "42704", f"unknown condition {code}"
    return caught.value.sqlstate


def api_errors(db: Conn) -> list[tuple[str, str, str, int]]:
    """(function, errcode as written, SQLSTATE, HTTP status) for every raise in public and private."""
    rows = db.execute(
        """
        select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               p.prosrc
          from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
          join pg_language l on l.oid = p.prolang
         where n.nspname in ('public', 'private') and l.lanname = 'plpgsql'
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
         order by 1
        """
    ).fetchall()
    listing = []
    resolved: dict[str, str] = {}
    for function, body in rows:
        for code in dict.fromkeys(raised_codes(body)):
            if code not in resolved:
                resolved[code] = sqlstate_of(db, code)
            listing.append((function, code, resolved[code], http_status(resolved[code])))
    return listing


def test_every_errcode_an_api_function_raises_maps_to_4xx(db: Conn) -> None:
    listing = api_errors(db)
    print("\n".join(f"{status}  {state:5}  {code:24}  {fn}" for fn, code, state, status in listing))
    by_function: dict[str, set[str]] = {}
    for function, _code, state, _status in listing:
        by_function.setdefault(function.split("(")[0], set()).add(state)
    # The listing really reads the bodies (so an empty answer cannot pass): known refusals are there.
    assert {"PT404", "22023"} <= by_function["public.leave_room"]
    assert {"42501", "PT404", "PT410"} <= by_function["private.accept_room_invite"]
    assert {"PT404", "PT409"} <= by_function["private.job_retry"]
    assert "PT429" in by_function["private.rate_limit_enforce"]
    assert len(listing) > 100
    server_errors = [row for row in listing if row[3] >= 500]
    assert not server_errors, "PostgREST answers these with 5xx:\n" + "\n".join(
        f"{fn}: {code} ({state}) -> HTTP {status}" for fn, code, state, status in server_errors
    )


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        ("begin raise exception 'x' using errcode = 'P0002'; end", ["P0002"]),
        ("begin raise sqlstate 'PT404' using message = 'x'; end", ["PT404"]),
        ("begin raise no_data_found; end", ["no_data_found"]),
        ("begin if true then raise exception 'a; b'; end if; end", ["P0001"]),
        ("begin raise 'x %', 1; end", ["P0001"]),
        ("begin raise notice 'x' using errcode = 'P0002'; end", []),
        ("begin -- raise sqlstate 'XX000';\n perform 1; end", []),
        ("begin perform 1; exception when no_data_found then raise; end", []),
        ("begin raise exception 'say raise too_many_rows' using errcode = '22023'; end", ["22023"]),
        ("declare c text := 'P0002'; begin raise exception 'x' using errcode = c; end", ["?"]),
        ("declare v int; begin select 1 into strict v; end", ["no_data_found"]),
    ],
)
def test_the_listing_reads_raise_statements(body: str, codes: list[str]) -> None:
    assert raised_codes(body) == codes


# -- 2. the refusals the issue found, as PostgREST calls them ------------------------------

Factory = Callable[..., uuid.UUID]


def room_with_owner(db: Conn, make_user: Factory) -> tuple[uuid.UUID, uuid.UUID]:
    owner = make_user()
    with keep_as(db, owner) as cur:
        row = cur.execute("insert into public.rooms (title) values ('Ideas') returning id").fetchone()
    assert row is not None
    return row[0], owner


def invite(db: Conn, room_id: uuid.UUID, owner: uuid.UUID, max_uses: int = 1) -> tuple[uuid.UUID, str]:
    with keep_as(db, owner) as cur:
        row = cur.execute(
            "select invite_id, token from public.create_room_invite(%s, 'editor', '7 days', %s)",
            (room_id, max_uses),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def refusal(
    db: Conn, user: uuid.UUID | None, query: str, params: tuple[Any, ...], role: str = "authenticated"
) -> psycopg.Error:
    """Run one request as PostgREST would; return the error it ends with (there must be one)."""
    with pytest.raises(psycopg.Error) as caught, act_as(db, user, role) as cur:
        cur.execute(query, params)
    return caught.value


def snapshot(db: Conn, room_id: uuid.UUID) -> tuple[Any, ...]:
    return (
        db.execute(
            "select user_id, role from public.room_members where room_id = %s order by user_id", (room_id,)
        ).fetchall(),
        db.execute(
            "select id, use_count, max_uses, expires_at from public.room_invites"
            " where room_id = %s order by id",
            (room_id,),
        ).fetchall(),
        db.execute("select count(*) from public.room_elements where room_id = %s", (room_id,)).fetchone(),
    )


@pytest.mark.parametrize("token", ["garbage", "", None])
def test_accept_room_invite_with_a_garbage_token_is_404(
    db: Conn, make_user: Factory, token: str | None
) -> None:
    room_id, owner = room_with_owner(db, make_user)
    invite(db, room_id, owner)
    before = snapshot(db, room_id)
    err = refusal(db, make_user(), "select public.accept_room_invite(%s)", (token,))
    assert err.sqlstate == "PT404" and http_status(err.sqlstate) == 404
    assert err.diag.message_primary == "invite not found" and err.diag.message_hint
    assert snapshot(db, room_id) == before


def test_accept_room_invite_with_a_used_up_token_is_410(db: Conn, make_user: Factory) -> None:
    room_id, owner = room_with_owner(db, make_user)
    _, token = invite(db, room_id, owner, max_uses=1)
    with keep_as(db, make_user()) as cur:
        assert cur.execute("select public.accept_room_invite(%s)", (token,)).fetchone() == (room_id,)
    before = snapshot(db, room_id)
    late = make_user()
    err = refusal(db, late, "select public.accept_room_invite(%s)", (token,))
    assert err.sqlstate == "PT410" and http_status(err.sqlstate) == 410
    assert "used up" in (err.diag.message_primary or "") and err.diag.message_hint
    assert snapshot(db, room_id) == before


def test_accept_room_invite_with_an_expired_token_is_410(db: Conn, make_user: Factory) -> None:
    room_id, owner = room_with_owner(db, make_user)
    invite_id, token = invite(db, room_id, owner)
    db.execute(
        "update public.room_invites set expires_at = now() - interval '1 minute' where id = %s", (invite_id,)
    )
    before = snapshot(db, room_id)
    err = refusal(db, make_user(), "select public.accept_room_invite(%s)", (token,))
    assert err.sqlstate == "PT410" and "expired" in (err.diag.message_primary or "")
    assert snapshot(db, room_id) == before


def test_leave_room_you_are_not_in_is_404_and_says_nothing_about_the_room(
    db: Conn, make_user: Factory
) -> None:
    room_id, _owner = room_with_owner(db, make_user)
    stranger = make_user()
    before = snapshot(db, room_id)
    existing = refusal(db, stranger, "select public.leave_room(%s)", (room_id,))
    unknown = refusal(db, stranger, "select public.leave_room(%s)", (uuid.uuid4(),))
    assert existing.sqlstate == unknown.sqlstate == "PT404" and http_status("PT404") == 404
    # Someone else's room and no room at all answer the same: no existence oracle.
    assert existing.diag.message_primary == unknown.diag.message_primary
    assert existing.diag.message_hint
    assert snapshot(db, room_id) == before


def test_leave_room_as_anon_is_401(db: Conn, make_user: Factory) -> None:
    room_id, _owner = room_with_owner(db, make_user)
    err = refusal(db, None, "select public.leave_room(%s)", (room_id,), role="anon")
    assert err.sqlstate == "42501" and http_status(err.sqlstate, authenticated=False) == 401


def test_apply_template_with_an_unknown_template_is_404(db: Conn, make_user: Factory) -> None:
    room_id, owner = room_with_owner(db, make_user)
    before = snapshot(db, room_id)
    err = refusal(db, owner, "select * from public.apply_template(%s, %s)", (room_id, uuid.uuid4()))
    assert err.sqlstate == "PT404" and http_status(err.sqlstate) == 404
    assert err.diag.message_primary == "template not found" and err.diag.message_hint
    assert snapshot(db, room_id) == before


def test_the_owner_still_joins_leaves_and_applies(db: Conn, make_user: Factory) -> None:
    """The other direction: the same calls with good input succeed."""
    room_id, owner = room_with_owner(db, make_user)
    _, token = invite(db, room_id, owner)
    member = make_user()
    with keep_as(db, member) as cur:
        assert cur.execute("select public.accept_room_invite(%s)", (token,)).fetchone() == (room_id,)
        cur.execute("select public.leave_room(%s)", (room_id,))
    template = db.execute("select id from public.room_templates where owner_id is null limit 1").fetchone()
    assert template is not None
    with keep_as(db, owner) as cur:
        created = cur.execute(
            "select * from public.apply_template(%s, %s)", (room_id, template[0])
        ).fetchall()
    assert created and snapshot(db, room_id)[2] == (len(created),)


# -- the service-role RPCs (workers without a database URL call them through PostgREST) ----


def service_refusal(db: Conn, query: str, params: tuple[Any, ...]) -> psycopg.Error:
    return refusal(db, None, query, params, role="service_role")


def test_unknown_job_schedule_and_cleanup_task_are_404(db: Conn) -> None:
    for query, params in [
        ("select public.job_retry(%s)", (uuid.uuid4(),)),
        ("select public.job_complete(%s, 'w1', null)", (uuid.uuid4(),)),
        ("select public.cron_run_now(%s)", ("no-such-schedule",)),
        ("select * from public.run_cleanup(%s, 10, true)", ("no_such_task",)),
    ]:
        err = service_refusal(db, query, params)
        assert err.sqlstate == "PT404", (query, err.sqlstate)
        assert err.diag.message_hint, query


def test_a_lost_lease_and_a_job_not_retryable_are_409(db: Conn) -> None:
    job = db.execute("select private.job_enqueue('echo', '{}'::jsonb)").fetchone()
    assert job is not None
    db.execute("select * from private.job_claim_id(%s, 'w1', '1 minute')", (job[0],))
    before = db.execute("select status, locked_by, attempts from public.jobs where id = %s", job).fetchone()
    lost = service_refusal(db, "select public.job_complete(%s, 'intruder', null)", (job[0],))
    running = service_refusal(db, "select public.job_retry(%s)", (job[0],))
    assert lost.sqlstate == running.sqlstate == "PT409" and http_status("PT409") == 409
    assert (
        db.execute("select status, locked_by, attempts from public.jobs where id = %s", job).fetchone()
        == before
    )


def test_settling_an_unknown_ai_call_is_404(db: Conn, make_user: Factory) -> None:
    err = refusal(
        db, make_user(), "select private.ai_finish(%s, 'ok', 1, 1, 0, 1, p_ticket => 'x')", (uuid.uuid4(),)
    )
    assert err.sqlstate == "PT404" and err.diag.message_hint


def test_admitting_with_an_unknown_ai_key_is_404(db: Conn, make_user: Factory) -> None:
    user = make_user()
    err = refusal(
        db,
        user,
        "select * from private.ai_begin('openai', 'gpt-4o', 10, 10, p_key_id => %s)",
        (uuid.uuid4(),),
    )
    assert err.sqlstate == "PT404"
    slots = db.execute("select count(*) from public.ai_usage where user_id = %s", (user,)).fetchone()
    assert slots == (0,)
