"""Per-user, per-plan row caps (issue #12): every user-writable table is capped or exempt for a reason.

Every write goes through act_as as the affected persona, by the path a frontend uses
(PostgREST insert or the RPC). Caps are lowered per test (rolled back with the test)
so a test writes a handful of rows; the seeded values are checked separately.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, create_user, keep_as

# Tables users can write that deliberately have no row cap (the migration's header says why).
UNCAPPED = {
    "documents": "per-kind live-document limit (document_kind_limits, plans.documents_per_kind)",
    "room_elements": "capped per room by plans.room_elements_max; rooms are capped per owner",
    "backups": "pruned to plans.backup_versions_kept on every upload",
    "jobs": "per-row daily limit per kind (job_kinds.plan_limit_column) and 7/30-day retention",
    "telemetry_events": "per-event hourly limit (plans.telemetry_events_per_hour) and 90-day retention",
    "privacy_consents": "one row per user",
    "profiles": "one row per user, created by the database",
    "ai_usage": "one ledger row per admitted AI request (rate limit and monthly budget)",
    "audit_log": "written only by the database",
    "audit_changes": "written only by the database (audit triggers), deleted after the retention",
    "notifications": "written only by the database (moderation decisions)",
}

CAPPED = {
    "rooms",
    "room_members",
    "room_invites",
    "room_element_connections",
    "room_chat_messages",
    "room_templates",
    "share_links",
    "sync_conflicts",
    "sync_receipts",
    "file_links",
    "abuse_reports",
    "ai_requests",
    "ai_keys",
}

LOOP = json.dumps({"name": "Intro", "bars": 4, "color": "#FFAA00", "chords": ["C"], "icons": []})


# == helpers ==


def set_cap(
    db: psycopg.Connection[Any], table: str, max_rows: int, plan: str = "free", anonymous: int | None = None
) -> None:
    """Lower (or raise) a cap inside the test transaction, as an operator would."""
    cur = db.execute(
        "update public.plan_row_caps set max_rows = %s, max_rows_anonymous = %s"
        " where table_name = %s and plan = %s",
        (max_rows, anonymous, table, plan),
    )
    assert cur.rowcount == 1


def counted(db: psycopg.Connection[Any], table: str, user: uuid.UUID) -> int:
    """The rows of `table` that count against `user`'s cap (the registry's column and predicate)."""
    owner_column, predicate = db.execute(
        "select owner_column, coalesce(counted_rows, 'true') from private.row_cap_tables"
        " where table_name = %s",
        (table,),
    ).fetchone()  # type: ignore[misc]
    row = db.execute(
        psycopg.sql.SQL("select count(*) from public.{} where {} = %s and ({})").format(
            psycopg.sql.Identifier(table), psycopg.sql.Identifier(owner_column), psycopg.sql.SQL(predicate)
        ),
        (user,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def refused(db: psycopg.Connection[Any], user: uuid.UUID, write: Callable[[psycopg.Cursor[Any]], Any]) -> Any:
    """Run `write` as the user in a rolled-back request; the error it raised (it must raise)."""
    with act_as(db, user) as cur, pytest.raises(psycopg.Error) as exc:
        write(cur)
    return exc.value


def assert_cap_error(err: Any, noun: str, limit: int, who: str = "per user on the free plan") -> None:
    assert err.sqlstate == "PT403", (err.sqlstate, str(err))
    message = err.diag.message_primary or ""
    assert message.startswith(f"plan limit reached: at most {limit} {noun} {who}"), message
    assert err.diag.message_hint, "a refusal says what to do"


def noun_of(db: psycopg.Connection[Any], table: str) -> str:
    row = db.execute("select noun from private.row_cap_tables where table_name = %s", (table,)).fetchone()
    assert row is not None
    return str(row[0])


def new_room(db: psycopg.Connection[Any], owner: uuid.UUID, title: str = "Ideas") -> uuid.UUID:
    with keep_as(db, owner) as cur:
        row = cur.execute("insert into public.rooms (title) values (%s) returning id", (title,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def new_doc(db: psycopg.Connection[Any], owner: uuid.UUID, visibility: str = "private") -> uuid.UUID:
    with keep_as(db, owner) as cur:
        return cur.execute(  # type: ignore[index,no-any-return]
            "insert into public.documents (kind, title, body, visibility)"
            " values ('loop', 't', %s, %s) returning id",
            (LOOP, visibility),
        ).fetchone()[0]


def new_element(
    db: psycopg.Connection[Any], owner: uuid.UUID, room: uuid.UUID, kind: str = "note"
) -> uuid.UUID:
    with keep_as(db, owner) as cur:
        return cur.execute(  # type: ignore[index,no-any-return]
            "insert into public.room_elements (room_id, kind) values (%s, %s) returning id", (room, kind)
        ).fetchone()[0]


# == one case per capped table: set up, then add one row through the API path ==


@dataclass(frozen=True)
class Case:
    table: str
    setup: Callable[[psycopg.Connection[Any], uuid.UUID, Callable[..., uuid.UUID]], dict[str, Any]]
    add: Callable[[psycopg.Cursor[Any], dict[str, Any], int], Any]


def _no_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    return {"user": user}


def _members_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    host = make_user()
    tokens = []
    for i in range(3):
        room = new_room(db, host, f"room {i}")
        with keep_as(db, host) as cur:
            tokens.append(
                cur.execute("select token from public.create_room_invite(%s, 'editor')", (room,)).fetchone()[
                    0
                ]
            )  # type: ignore[index]
    return {"tokens": tokens}


def _room_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    return {"room": new_room(db, user)}


def _connections_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    room = new_room(db, user)
    return {"room": room, "elements": [new_element(db, user, room) for _ in range(5)]}


def _chat_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    room = new_room(db, user)
    return {"room": room, "chat": new_element(db, user, room, "chat")}


def _doc_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    return {"user": user, "doc": new_doc(db, user)}


def _file_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    name = f"{user}/kick.wav"
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id, metadata)"
        ' values (\'samples\', %s, %s, \'{"size": 10, "mimetype": "audio/wav"}\')',
        (name, str(user)),
    )
    return {"user": user, "name": name, "docs": [new_doc(db, user) for _ in range(3)]}


def _reports_setup(db: Any, user: uuid.UUID, make_user: Any) -> dict[str, Any]:
    author = make_user()
    return {"user": user, "docs": [new_doc(db, author, "public") for _ in range(3)]}


CASES = [
    Case("rooms", _no_setup, lambda cur, c, i: cur.execute("insert into public.rooms (title) values ('r')")),
    Case(
        "room_members",
        _members_setup,
        lambda cur, c, i: cur.execute("select public.accept_room_invite(%s)", (c["tokens"][i],)),
    ),
    Case(
        "room_invites",
        _room_setup,
        lambda cur, c, i: cur.execute("select * from public.create_room_invite(%s, 'viewer')", (c["room"],)),
    ),
    Case(
        "room_element_connections",
        _connections_setup,
        lambda cur, c, i: cur.execute(
            "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
            " values (%s, %s, %s)",
            (c["room"], c["elements"][0], c["elements"][i + 1]),
        ),
    ),
    Case(
        "room_chat_messages",
        _chat_setup,
        lambda cur, c, i: cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content)"
            " values (%s, %s, 'user', 'hi')",
            (c["room"], c["chat"]),
        ),
    ),
    Case(
        "room_templates",
        _no_setup,
        lambda cur, c, i: cur.execute(
            "insert into public.room_templates (name, owner_id) values ('t', %s)", (c["user"],)
        ),
    ),
    Case(
        "share_links",
        _doc_setup,
        lambda cur, c, i: cur.execute("select public.create_share_link(%s)", (c["doc"],)),
    ),
    Case(
        "sync_conflicts",
        _doc_setup,
        # What sync_push records a conflict through (clients cannot insert conflicts).
        lambda cur, c, i: cur.execute(
            "select private.sync_record_conflict(%s, %s, 'manual', 1, 't', null, false)",
            (c["doc"], f"c{i}"),
        ),
    ),
    Case(
        "sync_receipts",
        _no_setup,
        lambda cur, c, i: cur.execute(
            "insert into public.sync_receipts (owner_id, change_id, result) values (%s, %s, '{}')",
            (c["user"], f"c{i}"),
        ),
    ),
    Case(
        "file_links",
        _file_setup,
        lambda cur, c, i: cur.execute(
            "insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)"
            " values (%s, 'samples', %s, 'document', %s)",
            (c["user"], c["name"], c["docs"][i]),
        ),
    ),
    Case(
        "abuse_reports",
        _reports_setup,
        lambda cur, c, i: cur.execute(
            "insert into public.abuse_reports (document_id, reporter_id, reason) values (%s, %s, 'spam')",
            (c["docs"][i], c["user"]),
        ),
    ),
    Case(
        "ai_requests",
        _no_setup,
        lambda cur, c, i: cur.execute(
            "insert into public.ai_requests (provider, model, messages)"
            ' values (\'openai\', \'gpt-4o-mini\', \'[{"role": "user", "content": "hi"}]\')'
        ),
    ),
    Case(
        "ai_keys",
        _no_setup,
        lambda cur, c, i: cur.execute(
            "select private.ai_key_store('openai', 'l', 'abcd', null, 'k1', '\\x00', '\\x00')"
        ),
    ),
]


def test_every_case_and_every_registered_table_agree(db):
    registered = {r[0] for r in db.execute("select table_name from private.row_cap_tables")}
    assert registered == CAPPED == {c.table for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.table)
def test_cap_allows_the_limit_and_refuses_one_past_it(db, make_user, case):
    user = make_user()
    ctx = case.setup(db, user, make_user)
    set_cap(db, case.table, 2)
    for i in range(2):
        with keep_as(db, user) as cur:
            case.add(cur, ctx, i)
    assert counted(db, case.table, user) == 2
    err = refused(db, user, lambda cur: case.add(cur, ctx, 2))
    assert_cap_error(err, noun_of(db, case.table), 2)
    assert counted(db, case.table, user) == 2  # nothing half-applied
    # the cap is the plan's: on pro (default caps) the same write passes
    db.execute("update public.profiles set plan = 'pro' where id = %s", (user,))
    with keep_as(db, user) as cur:
        case.add(cur, ctx, 2)
    assert counted(db, case.table, user) == 3


# A single INSERT of several rows that crosses the cap fails whole.
MULTI_ROW = {
    "rooms": "insert into public.rooms (title) select 'r' || g from generate_series(1, %(n)s) g",
    "room_templates": "insert into public.room_templates (name, owner_id)"
    " select 't' || g, %(user)s from generate_series(1, %(n)s) g",
    "room_chat_messages": "insert into public.room_chat_messages (room_id, element_id, role, content)"
    " select %(room)s, %(chat)s, 'user', 'm' || g from generate_series(1, %(n)s) g",
    "ai_requests": "insert into public.ai_requests (provider, model, messages)"
    " select 'openai', 'gpt-4o-mini', %(messages)s from generate_series(1, %(n)s) g",
    "sync_receipts": "insert into public.sync_receipts (owner_id, change_id, result)"
    " select %(user)s, gen_random_uuid()::text, '{}' from generate_series(1, %(n)s) g",
}


@pytest.mark.parametrize("table", sorted(MULTI_ROW))
def test_one_multi_row_insert_crossing_the_cap_is_refused_whole(db, make_user, table):
    user = make_user()
    ctx: dict[str, Any] = {"user": user, "messages": json.dumps([{"role": "user", "content": "hi"}])}
    if table == "room_chat_messages":
        ctx.update(_chat_setup(db, user, make_user))
    set_cap(db, table, 4)
    with keep_as(db, user) as cur:
        cur.execute(MULTI_ROW[table], {**ctx, "n": 1})
    err = refused(db, user, lambda cur: cur.execute(MULTI_ROW[table], {**ctx, "n": 4}))
    assert_cap_error(err, noun_of(db, table), 4)
    assert err.diag.message_primary.endswith("(this would make 5)")
    assert counted(db, table, user) == 1  # not even the first three rows of the statement stayed
    with keep_as(db, user) as cur:
        cur.execute(MULTI_ROW[table], {**ctx, "n": 3})
    assert counted(db, table, user) == 4


def test_a_300_row_bulk_post_cannot_slip_past_a_cap_of_300(db, make_user):
    alice, bob = make_user(), make_user()
    set_cap(db, "room_templates", 300)
    bulk = MULTI_ROW["room_templates"]
    with keep_as(db, alice) as cur:
        cur.execute(bulk, {"user": alice, "n": 300})
    err = refused(db, alice, lambda cur: cur.execute(bulk, {"user": alice, "n": 1}))
    assert_cap_error(err, "room templates", 300)
    err = refused(db, bob, lambda cur: cur.execute(bulk, {"user": bob, "n": 301}))
    assert_cap_error(err, "room templates", 300)
    assert err.diag.message_primary.endswith("(this would make 301)")
    assert (counted(db, "room_templates", alice), counted(db, "room_templates", bob)) == (300, 0)


def test_caps_are_per_user(db, make_user):
    alice, bob = make_user(), make_user()
    set_cap(db, "rooms", 1)
    new_room(db, alice)
    assert_cap_error(
        refused(db, alice, lambda cur: cur.execute("insert into public.rooms (title) values ('x')")),
        "rooms",
        1,
    )
    new_room(db, bob)  # alice's rooms do not count against bob
    assert counted(db, "rooms", bob) == 1


def test_deleting_rows_frees_slots(db, make_user):
    user = make_user()
    set_cap(db, "rooms", 1)
    room = new_room(db, user)
    with keep_as(db, user) as cur:
        cur.execute("delete from public.rooms where id = %s", (room,))
    new_room(db, user)
    assert counted(db, "rooms", user) == 1


def test_plan_change_raises_the_cap_and_pro_has_its_own(db, make_user):
    user = make_user()
    set_cap(db, "rooms", 2)
    set_cap(db, "rooms", 3, plan="pro")
    new_room(db, user)
    new_room(db, user)
    insert = "insert into public.rooms (title) values ('r')"
    assert_cap_error(refused(db, user, lambda cur: cur.execute(insert)), "rooms", 2)
    db.execute("update public.profiles set plan = 'pro' where id = %s", (user,))
    new_room(db, user)
    assert_cap_error(
        refused(db, user, lambda cur: cur.execute(insert)), "rooms", 3, "per user on the pro plan"
    )
    # a downgrade keeps what exists and refuses new rows
    db.execute("update public.profiles set plan = 'free' where id = %s", (user,))
    err = refused(db, user, lambda cur: cur.execute(insert))
    assert_cap_error(err, "rooms", 2)
    assert err.diag.message_primary.endswith("(this would make 4)")
    assert counted(db, "rooms", user) == 3


def test_a_plan_without_its_own_caps_gets_the_free_plans(db, make_user):
    user = make_user()
    db.execute(
        "insert into public.plans"
        " (id, name, storage_bytes, documents_per_kind, ai_requests_per_window, exports_per_day)"
        " values ('team', 'Team', 1, 1, 1, 1)"
    )
    db.execute("update public.profiles set plan = 'team' where id = %s", (user,))
    set_cap(db, "rooms", 1)
    new_room(db, user)
    assert_cap_error(
        refused(db, user, lambda cur: cur.execute("insert into public.rooms (title) values ('r')")),
        "rooms",
        1,
        "per user on the team plan",
    )


def test_anonymous_users_have_the_seeded_lower_caps_until_they_sign_up(db):
    anon_user = create_user(db, anonymous=True)
    caps = dict(
        db.execute("select plan, max_rows_anonymous from public.plan_row_caps where table_name = 'rooms'")
    )
    assert caps["free"] == 3
    for i in range(3):
        new_room(db, anon_user, f"r{i}")
    err = refused(db, anon_user, lambda cur: cur.execute("insert into public.rooms (title) values ('r')"))
    assert_cap_error(err, "rooms", 3, "for an anonymous user")
    assert "Create an account" in err.diag.message_hint
    # converting the account (Supabase Auth clears is_anonymous) gives the free plan's caps
    db.execute(
        "update auth.users set is_anonymous = false, email = 'me@example.test' where id = %s", (anon_user,)
    )
    new_room(db, anon_user, "r3")
    assert counted(db, "rooms", anon_user) == 4


def test_seeded_caps_are_ordered_anonymous_free_pro(db):
    rows = db.execute(
        "select f.table_name, f.max_rows_anonymous, f.max_rows, p.max_rows"
        " from public.plan_row_caps f"
        " join public.plan_row_caps p on p.table_name = f.table_name and p.plan = 'pro'"
        " where f.plan = 'free'"
    ).fetchall()
    assert {r[0] for r in rows} == CAPPED
    for table, anonymous, free, pro in rows:
        assert 0 < anonymous <= free <= pro, table


def test_transferring_a_room_to_a_user_at_the_cap_is_refused(db, make_user):
    owner, member = make_user(), make_user()
    room = new_room(db, owner)
    with keep_as(db, owner) as cur:
        token = cur.execute("select token from public.create_room_invite(%s, 'editor')", (room,)).fetchone()[
            0
        ]
    with keep_as(db, member) as cur:
        cur.execute("select public.accept_room_invite(%s)", (token,))
    set_cap(db, "rooms", 1)
    new_room(db, member)
    err = refused(
        db, owner, lambda cur: cur.execute("select public.transfer_room_ownership(%s, %s)", (room, member))
    )
    assert_cap_error(err, "rooms", 1)
    assert db.execute("select owner_id from public.rooms where id = %s", (room,)).fetchone() == (owner,)
    set_cap(db, "rooms", 2)
    with keep_as(db, owner) as cur:
        cur.execute("select public.transfer_room_ownership(%s, %s)", (room, member))
    assert counted(db, "rooms", member) == 2


def test_only_user_messages_count_and_the_ai_reply_is_never_refused(db, make_user):
    user = make_user()
    ctx = _chat_setup(db, user, make_user)
    set_cap(db, "room_chat_messages", 1)
    add = CASES[[c.table for c in CASES].index("room_chat_messages")].add
    with keep_as(db, user) as cur:
        add(cur, ctx, 0)
    # the AI worker appends the assistant reply as service_role with the user's claims
    with act_as(db, user, "service_role", rollback=False) as cur:
        cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content)"
            " values (%s, %s, 'assistant', 'a')",
            (ctx["room"], ctx["chat"]),
        )
    assert db.execute(
        "select count(*) from public.room_chat_messages where author_id = %s", (user,)
    ).fetchone() == (2,)
    assert_cap_error(refused(db, user, lambda cur: add(cur, ctx, 1)), "chat messages", 1)


def test_reviewed_abuse_reports_free_a_slot(db, make_user):
    user = make_user()
    ctx = _reports_setup(db, user, make_user)
    add = CASES[[c.table for c in CASES].index("abuse_reports")].add
    set_cap(db, "abuse_reports", 1)
    with keep_as(db, user) as cur:
        add(cur, ctx, 0)
    assert_cap_error(refused(db, user, lambda cur: add(cur, ctx, 1)), "open abuse reports", 1)
    db.execute("update public.abuse_reports set status = 'reviewed' where reporter_id = %s", (user,))
    with keep_as(db, user) as cur:
        add(cur, ctx, 1)


def test_room_element_file_links_do_not_count(db, make_user):
    """Links the database records for room images are bounded by the element cap, not the user's."""
    user = make_user()
    room = new_room(db, user)
    set_cap(db, "file_links", 0)
    path = f"rooms/{room}/pic.png"
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id, metadata)"
        ' values (\'images\', %s, %s, \'{"size": 10, "mimetype": "image/png"}\')',
        (path, str(user)),
    )
    with keep_as(db, user) as cur:
        cur.execute(
            "insert into public.room_elements (room_id, kind, image_path) values (%s, 'image', %s)",
            (room, path),
        )
    assert db.execute("select count(*) from public.file_links where owner_id = %s", (user,)).fetchone() == (
        1,
    )
    assert counted(db, "file_links", user) == 0


# == rows the database writes for the user: sync_push never drops a change silently ==


def _push(cur: psycopg.Cursor[Any], changes: list[dict[str, Any]], strategy: str = "server_wins") -> Any:
    return cur.execute("select public.sync_push(%s, %s)", (json.dumps(changes), strategy)).fetchone()[0]


@pytest.mark.parametrize("strategy", ["server_wins", "client_wins", "manual"])
def test_sync_push_reports_a_conflict_it_cannot_keep_and_keeps_it_on_retry(db, make_user, strategy):
    user = make_user()
    doc = new_doc(db, user)
    with keep_as(db, user) as cur:
        cur.execute("update public.documents set title = 'server' where id = %s", (doc,))  # now version 2
    set_cap(db, "sync_conflicts", 1)
    stale = [
        {"change_id": f"c{i}", "id": str(doc), "kind": "loop", "title": f"mine {i}", "base_version": 1}
        for i in range(2)
    ]
    with keep_as(db, user) as cur:
        results = _push(cur, stale, strategy)["results"]
    assert results[0]["status"] != "rejected"
    assert results[1]["status"] == "rejected"
    assert results[1]["code"] == "PT403"
    assert "at most 1 sync conflicts" in results[1]["error"]
    assert counted(db, "sync_conflicts", user) == 1
    # the refused change left no trace: no receipt (a retry is applied), the document as before it
    receipts = {
        r[0] for r in db.execute("select change_id from public.sync_receipts where owner_id = %s", (user,))
    }
    assert receipts == {"c0"}
    expected_title = "mine 0" if strategy == "client_wins" else "server"
    assert db.execute("select title from public.documents where id = %s", (doc,)).fetchone() == (
        expected_title,
    )
    # once there is room again, the same change is kept
    set_cap(db, "sync_conflicts", 5)
    with keep_as(db, user) as cur:
        retry = _push(cur, [stale[1]], strategy)["results"][0]
    assert retry["status"] != "rejected" and "duplicate" not in retry
    assert counted(db, "sync_conflicts", user) == 2


def test_sync_push_whose_receipts_do_not_fit_is_refused_whole(db, make_user):
    user = make_user()
    set_cap(db, "sync_receipts", 2)
    changes = [
        {
            "change_id": f"n{i}",
            "id": str(uuid.uuid4()),
            "kind": "loop",
            "title": "t",
            "body": json.loads(LOOP),
        }
        for i in range(3)
    ]
    err = refused(db, user, lambda cur: _push(cur, changes))
    assert_cap_error(err, "sync push receipts", 2)
    assert db.execute("select count(*) from public.documents where owner_id = %s", (user,)).fetchone() == (0,)
    with keep_as(db, user) as cur:
        results = _push(cur, changes[:2])["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]


def test_apply_template_counts_its_connections(db, make_user):
    user = make_user()
    room = new_room(db, user)
    brainstorm = db.execute("select id from public.room_templates where name = 'Brainstorm'").fetchone()[0]
    set_cap(db, "room_element_connections", 3)  # Brainstorm has four connections
    err = refused(
        db, user, lambda cur: cur.execute("select * from public.apply_template(%s, %s)", (room, brainstorm))
    )
    assert_cap_error(err, "element connections", 3)
    assert db.execute("select count(*) from public.room_elements where room_id = %s", (room,)).fetchone() == (
        0,
    )
    set_cap(db, "room_element_connections", 4)
    with keep_as(db, user) as cur:
        cur.execute("select * from public.apply_template(%s, %s)", (room, brainstorm))
    assert counted(db, "room_element_connections", user) == 4


# == the limits table: everyone reads it, only operators change it, bad values are refused ==


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_everyone_reads_the_caps_and_no_api_user_changes_them(db, make_user, role):
    user = make_user() if role == "authenticated" else None
    with act_as(db, user, role) as cur:
        assert cur.execute("select count(*) from public.plan_row_caps").fetchone()[0] == 2 * len(CAPPED)
    for statement in (
        "update public.plan_row_caps set max_rows = 1000000",
        "delete from public.plan_row_caps",
        "insert into public.plan_row_caps (table_name, plan, max_rows) values ('rooms', 'free', 1)",
    ):
        with act_as(db, user, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute(statement)
    with act_as(db, user, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select * from private.row_cap_tables")
    assert db.execute("select max(max_rows) from public.plan_row_caps").fetchone() == (200000,)


def test_operators_change_caps_and_bad_values_change_nothing(db):
    with act_as(db, None, "service_role") as cur:
        cur.execute(
            "update public.plan_row_caps set max_rows = 30 where table_name = 'rooms' and plan = 'free'"
        )
        assert cur.rowcount == 1
    bad = [
        (
            "update public.plan_row_caps set max_rows = -1 where table_name = 'rooms'",
            psycopg.errors.CheckViolation,
        ),
        ("update public.plan_row_caps set max_rows_anonymous = -1", psycopg.errors.CheckViolation),
        (
            "insert into public.plan_row_caps (table_name, plan, max_rows) values ('profiles', 'free', 1)",
            psycopg.errors.ForeignKeyViolation,
        ),
        (
            "insert into public.plan_row_caps (table_name, plan, max_rows) values ('rooms', 'gold', 1)",
            psycopg.errors.ForeignKeyViolation,
        ),
        (
            "insert into public.plan_row_caps (table_name, plan, max_rows) values ('rooms', 'free', 1)",
            psycopg.errors.UniqueViolation,
        ),
    ]
    for statement, error in bad:
        with act_as(db, None, "service_role") as cur, pytest.raises(error):
            cur.execute(statement)
    assert db.execute(
        "select max_rows from public.plan_row_caps where table_name = 'rooms' and plan = 'free'"
    ).fetchone() == (20,)


def test_no_api_role_executes_the_cap_functions(db):
    for role in ("anon", "authenticated", "service_role"):
        for fn in (
            "private.row_caps_enforce(text, uuid)",
            "private.row_caps_after_insert()",
            "private.row_caps_after_owner_change()",
        ):
            assert db.execute("select has_function_privilege(%s, %s, 'execute')", (role, fn)).fetchone() == (
                False,
            )


# == the catalog: a table users can write is capped or exempt on purpose, and capped means triggered ==


def test_every_user_writable_table_is_capped_or_exempt(db):
    """Tables with an insert policy for API users, or written by a function API users may execute."""
    by_policy = {
        r[0]
        for r in db.execute(
            "select tablename from pg_policies where schemaname = 'public' and cmd in ('INSERT', 'ALL')"
            " and roles && array['anon', 'authenticated', 'public']::name[]"
        )
    }
    by_function = {
        table
        for (src,) in db.execute(
            "select p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('public', 'private')"
            " and (has_function_privilege('authenticated', p.oid, 'execute')"
            "      or has_function_privilege('anon', p.oid, 'execute'))"
        )
        for table in re.findall(r"(?i)insert\s+into\s+public\.(\w+)", src)
    }
    writable = by_policy | by_function
    assert writable - CAPPED - set(UNCAPPED) == set(), (
        "decide: cap it (row_cap_tables) or exempt it with a reason"
    )
    assert writable | {"room_members"} >= CAPPED


def test_every_capped_table_has_both_triggers(db):
    rows = db.execute(
        "select c.relname, array_agg(t.tgname::text order by t.tgname) from pg_trigger t"
        " join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and t.tgname like 'row_caps_%%' group by 1"
    ).fetchall()
    assert dict(rows) == {t: ["row_caps_after_insert", "row_caps_after_owner_change"] for t in CAPPED}


# == concurrency: two committed requests cannot both take the last slot ==


def test_two_concurrent_requests_cannot_exceed_the_cap(clone_url):
    with psycopg.connect(clone_url, autocommit=True) as admin:
        admin.execute(
            "update public.plan_row_caps set max_rows = 1 where table_name = 'rooms' and plan = 'free'"
        )
        uid = create_user(admin)
    claims = json.dumps({"sub": str(uid), "role": "authenticated"})
    outcome: dict[str, str | None] = {}

    def request(conn: psycopg.Connection[Any], name: str) -> None:
        try:
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
            conn.execute("insert into public.rooms (title) values (%s)", (name,))
            conn.commit()
            outcome[name] = None
        except psycopg.Error as exc:
            conn.rollback()
            outcome[name] = exc.sqlstate

    with (
        psycopg.connect(clone_url) as a,
        psycopg.connect(clone_url) as b,
        psycopg.connect(clone_url, autocommit=True) as watch,
    ):
        a.execute("set local role authenticated")
        a.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        a.execute(
            "insert into public.rooms (title) values ('a')"
        )  # holds the (rooms, user) lock, uncommitted
        b_pid = b.info.backend_pid
        second = threading.Thread(target=request, args=(b, "b"))
        second.start()
        deadline = time.monotonic() + 30
        while watch.execute(
            "select wait_event_type from pg_stat_activity where pid = %s", (b_pid,)
        ).fetchone() != ("Lock",):
            if not second.is_alive():
                break  # it did not wait for the first request: the outcome below shows what it did
            assert time.monotonic() < deadline, "the second request never waited for the first"
            time.sleep(0.05)
        a.commit()
        second.join(30)
    assert outcome == {"b": "PT403"}
    with psycopg.connect(clone_url) as c:
        assert c.execute("select title from public.rooms where owner_id = %s", (uid,)).fetchall() == [("a",)]
