"""Merging an anonymous account into a permanent one: every owned row moves, collisions are reported.

The catalog decides what "owned" means (workers/export/catalog.py: a foreign
key to auth.users, any schema but auth), exactly as export and erasure do. The
anonymous user gets a row in every such table (the attack suite's seed_world,
with A anonymous, plus the private tables), a permanent user gets colliding
rows, and after claim_merge_ticket nothing but the audit trail and the emptied
profile references the anonymous user. A new owned table without a seed row,
or with a unique key on its user column and no merge rule, fails here.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, claims_for, create_user
from tests.library.bodies import settle
from tests.security.test_attack_suite import seed_world
from workers.export.catalog import UserTable, user_tables

Conn = psycopg.Connection[Any]
# Rows the merge leaves on purpose: the audit trail (append-only) and the
# anonymous profile itself (1:1 with the auth user; emptied, deleted with it).
STAYS = {"public.audit_log", "public.profiles"}
BUDGET_ROW = (
    "insert into private.ai_budget_months (user_id, month, spent_usd)"
    " values (%s, date_trunc('month', now()), %s)"
)
FOLDER = (
    "insert into public.documents (owner_id, kind, title, body)"
    " values (%s, 'folder', 'x', '{\"name\": \"x\"}')"
)


def as_user(db: Conn, user: uuid.UUID, anonymous: bool, rollback: bool = False) -> Any:
    claims = claims_for(user, extra={"is_anonymous": anonymous})
    return act_as(db, user, "authenticated", claims=claims, rollback=rollback)


def create_ticket(db: Conn, anonymous_user: uuid.UUID) -> str:
    with as_user(db, anonymous_user, True) as cur:
        row = cur.execute("select public.create_merge_ticket()").fetchone()
    assert row is not None
    return str(row[0]["ticket"])


def claim(db: Conn, permanent_user: uuid.UUID, ticket: str) -> dict[str, Any]:
    with as_user(db, permanent_user, False) as cur:
        row = cur.execute("select public.claim_merge_ticket(%s)", (ticket,)).fetchone()
    assert row is not None
    return dict(row[0])


def _count(db: Conn, table: UserTable, user: uuid.UUID) -> int:
    row = db.execute(table.count_rows(), {"uid": user}).fetchone()
    return int(row[0]) if row else 0


def seed_private_rows(db: Conn, user: uuid.UUID) -> None:
    """The private tables seed_world (public only) does not cover."""
    db.execute(
        "insert into private.image_uploads (object_id, bucket_id, object_name, owner_id)"
        " values (gen_random_uuid(), 'images', %s, %s)",
        (f"{user}/a.png", user),
    )
    db.execute(
        BUDGET_ROW,
        (user, 0.5),
    )
    db.execute(
        "insert into private.billing_events (event_id, type, stripe_created_at, user_id)"
        " values (%s, 'customer.created', now(), %s)",
        (f"evt_{uuid.uuid4().hex}", user),
    )
    db.execute(
        "insert into private.publishing_bans (user_id, reason, banned_by) values (%s, 'spam', 'test')",
        (user,),
    )


def seed_collisions(db: Conn, permanent: uuid.UUID, anonymous: uuid.UUID, room: uuid.UUID) -> None:
    """Rows of the permanent user that collide with the anonymous user's on unique keys."""
    db.execute(
        "insert into public.documents (owner_id, kind, title, body, local_id)"
        " values (%s, 'folder', 'mine', '{\"name\": \"mine\"}', 'local-1'),"
        " (%s, 'folder', 'anon', '{\"name\": \"anon\"}', 'local-1')",
        (permanent, anonymous),
    )
    db.execute(
        "insert into public.backups (owner_id, version, ciphertext, nonce, kdf)"
        " values (%s, 1, 'p'::bytea, '12345678'::bytea, '{}'), (%s, 2, 'p2'::bytea, '12345678'::bytea, '{}')",
        (permanent, permanent),
    )
    db.execute(
        "insert into public.sync_receipts (owner_id, change_id, result) values (%s, 'c1', '{}')", (permanent,)
    )
    db.execute("insert into public.privacy_consents (user_id, telemetry) values (%s, false)", (permanent,))
    db.execute(
        "insert into public.room_members (room_id, user_id, role) values (%s, %s, 'viewer')",
        (room, permanent),
    )
    db.execute(
        BUDGET_ROW,
        (permanent, 0.25),
    )
    db.execute(
        "update public.profiles set username = 'anon_name', bio = 'from anon' where id = %s", (anonymous,)
    )


def test_merge_moves_every_owned_row_of_every_table(db: Conn) -> None:
    world = seed_world(db, a_anonymous=True)
    anonymous = world.a
    permanent = create_user(db)
    seed_private_rows(db, anonymous)
    seed_collisions(db, permanent, anonymous, world.ids["room"])
    tables = user_tables(db)
    before_a = {t.qualified: _count(db, t, anonymous) for t in tables}
    before_p = {t.qualified: _count(db, t, permanent) for t in tables}
    unseeded = sorted(name for name, n in before_a.items() if n == 0)
    assert not unseeded, f"seed a row of the anonymous user (seed_world or seed_private_rows) in: {unseeded}"

    report = claim(db, permanent, create_ticket(db, anonymous))

    resolved: dict[str, int] = {}
    for entry in report["skipped"] + report["merged"]:
        resolved[entry["table"]] = resolved.get(entry["table"], 0) + 1
    problems = []
    for t in tables:
        name = t.qualified
        left = _count(db, t, anonymous)
        if name in STAYS:
            continue
        if left:
            problems.append(f"{name}: {left} rows still reference the anonymous user")
        gained = _count(db, t, permanent) - before_p[name]
        if name == "public.jobs":
            gained -= 1  # the merge's own files job
        if gained + resolved.get(name, 0) != before_a[name]:
            problems.append(
                f"{name}: {before_a[name]} rows of the anonymous user, {gained} now the permanent user's,"
                f" {resolved.get(name, 0)} reported as skipped/merged"
            )
    assert not problems, problems
    audit = next(t for t in tables if t.qualified == "public.audit_log")
    assert _count(db, audit, anonymous) == before_a["public.audit_log"]
    assert [(k["table"], k["rows"]) for k in report["kept"]] == [
        ("public.audit_log", before_a["public.audit_log"])
    ]
    moved_total = sum(int(v) for v in report["moved"].values())
    assert moved_total >= sum(before_a[n] for n in before_a if n not in STAYS) - len(report["skipped"]) - len(
        report["merged"]
    )
    # The audit record of the merge, for the permanent user, naming the anonymous account.
    details = db.execute(
        "select details from public.audit_log where user_id = %s and action = 'account.merged'", (permanent,)
    ).fetchone()
    assert details is not None and details[0]["anonymous_id"] == str(anonymous)
    assert details[0]["merge_id"] == report["merge_id"]


def test_merge_reports_how_each_collision_was_resolved(db: Conn) -> None:
    world = seed_world(db, a_anonymous=True)
    anonymous, permanent, room = world.a, create_user(db), world.ids["room"]
    seed_private_rows(db, anonymous)
    seed_collisions(db, permanent, anonymous, room)

    report = claim(db, permanent, create_ticket(db, anonymous))

    renamed = {(r["table"], r["field"]): r for r in report["renamed"]}
    local = renamed[("public.documents", "local_id")]
    assert local["from"] == "local-1" and local["to"] == f"local-1~merged-{str(anonymous)[:8]}"
    assert db.execute(
        "select local_id from public.documents where owner_id = %s and kind = 'folder' and title = 'anon'",
        (permanent,),
    ).fetchone() == (local["to"],)
    # backups continue after the permanent account's newest (2): the anonymous version 1 becomes 3
    assert renamed[("public.backups", "version")]["to"] == 3
    versions = db.execute(
        "select array_agg(version order by version) from public.backups where owner_id = %s", (permanent,)
    ).fetchone()
    assert versions == ([1, 2, 3],)
    # the username moves (the permanent account had none); the bio fills the empty field
    assert renamed[("public.profiles", "username")]["to"] == "anon_name"
    profile = "select username::text, bio from public.profiles where id = %s"
    assert db.execute(profile, (permanent,)).fetchone() == ("anon_name", "from anon")
    assert db.execute(profile, (anonymous,)).fetchone() == (None, None)
    # the room: the anonymous owner's membership and the permanent viewer's become one owner membership
    assert db.execute(
        "select role from public.room_members where room_id = %s and user_id = %s", (room, permanent)
    ).fetchone() == ("owner",)
    assert db.execute("select owner_id from public.rooms where id = %s", (room,)).fetchone() == (permanent,)
    skipped = {(s["table"], json.dumps(s.get("key"), sort_keys=True)) for s in report["skipped"]}
    assert ("public.sync_receipts", json.dumps({"change_id": "c1"})) in skipped
    assert ("public.privacy_consents", json.dumps({})) in skipped
    consent = "select telemetry from public.privacy_consents where user_id = %s"
    assert db.execute(consent, (permanent,)).fetchone() == (False,)
    budget = "select spent_usd from private.ai_budget_months where user_id = %s"
    spent = db.execute(budget, (permanent,)).fetchone()
    assert spent is not None and float(spent[0]) == pytest.approx(0.75)
    assert report["files"]["moving"] == 0 and report["files"]["job_id"]


def test_merge_keeps_rows_past_the_row_cap_and_says_so(db: Conn) -> None:
    anonymous, permanent = create_user(db, anonymous=True), create_user(db)
    db.execute(
        "insert into public.room_templates (owner_id, name)"
        " select %s, 't' || g from generate_series(1, 50) g",
        (permanent,),
    )
    db.execute(
        "insert into public.room_templates (owner_id, name) values (%s, 'anon 1'), (%s, 'anon 2')",
        (anonymous, anonymous),
    )

    report = claim(db, permanent, create_ticket(db, anonymous))

    assert report["moved"]["public.room_templates"] == 2
    over = {o["limit"]: o for o in report["over_limits"]}
    assert over["public.room_templates"]["count"] == 52 and over["public.room_templates"]["max"] == 50
    # outside a merge the cap still holds for the permanent account
    with pytest.raises(psycopg.Error) as caught, as_user(db, permanent, False, rollback=True) as cur:
        cur.execute("insert into public.room_templates (name) values ('one more')")
    assert caught.value.sqlstate == "PT403"


def _state(db: Conn, *users: uuid.UUID) -> list[Any]:
    rows = []
    for t in user_tables(db):
        for user in users:
            rows.append((t.qualified, _count(db, t, user)))
    rows.append(db.execute("select count(*), count(claimed_at) from private.merge_tickets").fetchone())
    rows.append(db.execute("select count(*) from private.account_merges").fetchone())
    return rows


def _refused(
    db: Conn, user: uuid.UUID, anonymous: bool, statement: str, params: tuple[Any, ...]
) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught, as_user(db, user, anonymous, rollback=True) as cur:
        cur.execute(statement, params)
    return caught.value


@pytest.fixture
def pair(db: Conn) -> tuple[uuid.UUID, uuid.UUID]:
    anonymous, permanent = create_user(db, anonymous=True), create_user(db)
    db.execute(FOLDER, (anonymous,))
    return anonymous, permanent


CLAIM = "select public.claim_merge_ticket(%s)"


@pytest.mark.parametrize(
    ("case", "sqlstate", "message"),
    [
        ("unknown", "PT404", "unknown merge ticket"),
        ("malformed", "22023", "64-character hex"),
        ("null", "22023", "64-character hex"),
        ("expired", "PT410", "expired"),
        ("used", "PT410", "already used"),
        ("claimer anonymous", "42501", "claimed by a permanent account"),
        ("claimer anonymous by its account", "42501", "claimed by a permanent account"),
        ("same user", "22023", "same account"),
        ("creator linked since", "PT409", "no longer anonymous"),
        ("creator deleted", "PT410", "no longer exists"),
    ],
)
def test_claim_refuses_bad_tickets_and_changes_nothing(
    db: Conn, pair: tuple[uuid.UUID, uuid.UUID], case: str, sqlstate: str, message: str
) -> None:
    anonymous, permanent = pair
    ticket: str | None = create_ticket(db, anonymous)
    claimer, claimer_anonymous = permanent, False
    if case == "unknown":
        ticket = "0" * 64
    elif case == "malformed":
        ticket = "not-a-ticket"
    elif case == "null":
        ticket = None
    elif case == "expired":
        db.execute("update private.merge_tickets set expires_at = now() - interval '1 second'")
    elif case == "used":
        other = create_user(db)
        claim(db, other, str(ticket))
    elif case == "claimer anonymous":
        claimer, claimer_anonymous = create_user(db, anonymous=True), True
    elif case == "claimer anonymous by its account":
        claimer = create_user(db, anonymous=True)  # a token without the claim: auth.users decides
    elif case == "same user":
        db.execute("update auth.users set is_anonymous = false where id = %s", (anonymous,))
        claimer = anonymous
    elif case == "creator linked since":
        db.execute("update auth.users set is_anonymous = false where id = %s", (anonymous,))
    elif case == "creator deleted":
        db.execute("delete from auth.users where id = %s", (anonymous,))
    before = _state(db, anonymous, permanent, claimer)
    error = _refused(db, claimer, claimer_anonymous, CLAIM, (ticket,))
    assert error.sqlstate == sqlstate, error
    assert message in str(error)
    assert _state(db, anonymous, permanent, claimer) == before


def test_only_an_anonymous_account_creates_tickets(db: Conn, pair: tuple[uuid.UUID, uuid.UUID]) -> None:
    anonymous, permanent = pair
    for user, claim_says in ((permanent, False), (permanent, True), (anonymous, False)):
        before = _state(db, anonymous, permanent)
        error = _refused(db, user, claim_says, "select public.create_merge_ticket()", ())
        assert error.sqlstate == "42501" and "only an anonymous account" in str(error)
        assert _state(db, anonymous, permanent) == before
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select public.create_merge_ticket()")


def test_a_ticket_is_random_hashed_and_one_live_per_account(
    db: Conn, pair: tuple[uuid.UUID, uuid.UUID]
) -> None:
    anonymous, _ = pair
    first, second = create_ticket(db, anonymous), create_ticket(db, anonymous)
    assert first != second and len(first) == 64
    stored = db.execute(
        "select count(*), bool_and(token_hash = sha256(convert_to(%s, 'UTF8'))) from private.merge_tickets"
        " where anonymous_id = %s",
        (second, anonymous),
    ).fetchone()
    assert stored == (1, True)  # only the hash, and only the newest ticket lives


def test_a_merge_with_an_owned_unique_column_and_no_rule_is_refused(db: Conn) -> None:
    """What a new owned table with a unique user key does to the merge until it gets a rule."""
    anonymous, permanent = create_user(db, anonymous=True), create_user(db)
    db.execute(
        "create table public.merge_probe"
        " (user_id uuid not null unique references auth.users (id) on delete cascade)"
    )
    db.execute("insert into public.merge_probe values (%s)", (anonymous,))
    ticket = create_ticket(db, anonymous)
    error = _refused(db, permanent, False, CLAIM, (ticket,))
    assert "public.merge_probe.user_id" in str(error) and "merge rule" in str(error)
    # without a unique key the same table is moved generically
    db.execute("alter table public.merge_probe drop constraint merge_probe_user_id_key")
    report = claim(db, permanent, ticket)
    assert report["moved"]["public.merge_probe"] == 1
    assert db.execute("select user_id from public.merge_probe").fetchone() == (permanent,)


def test_merged_documents_show_up_in_the_permanent_users_sync(clone_url: str) -> None:
    """Committed like real requests: sync_pull only lists changes of committed transactions."""
    with psycopg.connect(clone_url, autocommit=True) as conn:
        anonymous, permanent = create_user(conn, anonymous=True), create_user(conn)
        conn.execute(FOLDER, (anonymous,))
        with as_user(conn, permanent, False) as cur:
            row = cur.execute("select public.sync_pull(null, 100)").fetchone()
        assert row is not None and row[0]["changes"] == []
        claim(conn, permanent, create_ticket(conn, anonymous))
        settle(conn)  # sync_pull holds back changes while older transactions run anywhere in the cluster
        with as_user(conn, permanent, False) as cur:
            row = cur.execute("select public.sync_pull(null, 100)").fetchone()
    assert row is not None
    assert [c["title"] for c in row[0]["changes"]] == ["x"], row[0]


def test_a_claim_in_progress_locks_no_table_and_its_bypass_cannot_be_faked(clone_url: str) -> None:
    """The claim moves documents and room elements past the triggers that pin their owners
    without ALTER TABLE: while it is still open, other sessions read and write both tables.
    Outside a claim, those triggers still refuse the owner change, for a client and for the
    service role alike."""
    with psycopg.connect(clone_url, autocommit=True) as setup:
        anonymous, permanent, other = (
            create_user(setup, anonymous=True),
            create_user(setup),
            create_user(setup),
        )
        setup.execute(FOLDER, (anonymous,))
        setup.execute(FOLDER, (other,))
        room = setup.execute(
            "insert into public.rooms (owner_id, title) values (%s, 'r') returning id", (anonymous,)
        ).fetchone()[0]
        setup.execute(
            "insert into public.room_elements (room_id, kind, created_by) values (%s, 'note', %s)",
            (room, anonymous),
        )
        ticket = create_ticket(setup, anonymous)
    with psycopg.connect(clone_url) as claimer, psycopg.connect(clone_url, autocommit=True) as bystander:
        # The claim as PostgREST runs it, in a transaction left open here.
        claimer.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
            (json.dumps(claims_for(permanent, extra={"is_anonymous": False})),),
        )
        row = claimer.execute("select public.claim_merge_ticket(%s)", (ticket,)).fetchone()
        assert row is not None and row[0]["moved"]["public.documents"] == 1
        bystander.execute("set lock_timeout = '2s'")
        assert bystander.execute(
            "select count(*) from public.documents where owner_id = %s", (other,)
        ).fetchone() == (1,)
        bystander.execute("update public.documents set title = 'y' where owner_id = %s", (other,))
        assert bystander.execute("select count(*) from public.room_elements").fetchone() == (1,)
        claimer.commit()
    with psycopg.connect(clone_url, autocommit=True) as conn:
        assert conn.execute(
            "select owner_id, version from public.documents where title = 'x'"
        ).fetchall() == [(permanent, 2)]
        assert conn.execute("select created_by from public.room_elements").fetchone() == (permanent,)
        # Without a claim in the transaction, the owner stays pinned.
        with as_user(conn, permanent, False) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("update public.documents set owner_id = %s where owner_id = %s", (other, permanent))
        with act_as(conn, None, "service_role") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("update public.documents set owner_id = %s where owner_id = %s", (other, permanent))
        with act_as(conn, None, "service_role") as cur:
            cur.execute("update public.room_elements set created_by = %s", (other,))
            assert cur.execute("select created_by from public.room_elements").fetchone() == (permanent,)
        # A client cannot make its own transaction look like a claim.
        with as_user(conn, permanent, False) as cur:
            assert cur.execute("select private.account_merge_in_progress()").fetchone() == (False,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                cur.execute(
                    "insert into private.account_merges (anonymous_id, permanent_id) values (%s, %s)",
                    (other, permanent),
                )
