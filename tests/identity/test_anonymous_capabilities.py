"""What an anonymous user may do (public.account_capabilities), both directions, through act_as.

Each capability is exercised as an anonymous user (JWT claim is_anonymous =
true, as Supabase Auth issues it) and as a permanent user (claim false): what
anonymous users may do works for both; what needs a linked account is refused
for the anonymous user with 42501 (HTTP 403), a message naming it and a hint
saying to link an account, and changes nothing, while the permanent user
succeeds. Every row of the table must have a test here.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, claims_for, create_user

Conn = psycopg.Connection[Any]
ITEM = json.dumps({"name": "my item"})


def as_user(db: Conn, user: uuid.UUID, anonymous: bool) -> Any:
    """A committed-like request (kept in the test transaction) with the is_anonymous claim."""
    return act_as(db, user, claims=claims_for(user, extra={"is_anonymous": anonymous}), rollback=False)


def _doc(db: Conn, owner: uuid.UUID, visibility: str = "private") -> uuid.UUID:
    row = db.execute(
        "insert into public.documents (owner_id, kind, title, body, visibility)"
        " values (%s, 'item', 't', %s, %s) returning id",
        (owner, ITEM, visibility),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _room(db: Conn, owner: uuid.UUID) -> uuid.UUID:
    row = db.execute(
        "insert into public.rooms (owner_id, title) values (%s, 'r') returning id", (owner,)
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


# Each check runs one capability as `user` and returns nothing; it raises when refused.
Check = Callable[[Conn, uuid.UUID, bool], None]


def _run(db: Conn, user: uuid.UUID, anonymous: bool, statement: str, params: tuple[Any, ...] = ()) -> Any:
    with as_user(db, user, anonymous) as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def keep_private_documents(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    _run(
        db,
        user,
        anonymous,
        "insert into public.documents (kind, title, body) values ('item', 'p', %s)",
        (ITEM,),
    )


def back_up(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    kdf = json.dumps({"algorithm": "argon2id", "salt": "c2FsdA==", "m": 65536, "t": 3})
    data = base64.b64encode(b"ciphertext").decode()
    nonce = base64.b64encode(os.urandom(24)).decode()
    _run(db, user, anonymous, "select public.upload_backup(%s, %s, %s, %s)", (data, nonce, kdf, 0))


def sync(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    change = {
        "change_id": f"c-{uuid.uuid4().hex[:8]}",
        "id": str(uuid.uuid4()),
        "base_version": None,
        "kind": "item",
        "title": "s",
        "body": {"name": "synced"},
    }
    rows = _run(db, user, anonymous, "select public.sync_push(%s, 'server_wins')", (json.dumps([change]),))
    assert rows and "applied" in json.dumps(rows[0][0]), rows


def import_(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    library = {"item": [{"local_id": f"i-{uuid.uuid4().hex[:6]}", "body": {"name": "imported"}}]}
    _run(db, user, anonymous, "select public.import_local(%s)", (json.dumps(library),))


def fork_privately(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    source = _doc(db, create_user(db), "public")
    rows = _run(db, user, anonymous, "select visibility from public.fork_document(%s)", (source,))
    assert rows == [("private",)]


def join_invited_rooms(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    owner = create_user(db)
    room = _room(db, owner)
    invite = _run(db, owner, False, "select token from public.create_room_invite(%s)", (room,))
    assert invite
    token = invite[0][0]
    _run(db, user, anonymous, "select public.accept_room_invite(%s)", (token,))
    assert db.execute(
        "select role from public.room_members where room_id = %s and user_id = %s", (room, user)
    ).fetchone() == ("viewer",)


def create_rooms(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    _run(db, user, anonymous, "insert into public.rooms (title) values ('mine')")


def upload_files(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    # The Storage API's permission probe: the caller inserts the row in its own folder.
    _run(
        db,
        user,
        anonymous,
        "insert into storage.objects (bucket_id, name, owner_id) values ('samples', %s, %s)",
        (f"{user}/kick.wav", str(user)),
    )


def use_ai_with_own_key(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    # Key storage and the AI proxy's admission do not ask for a linked account.
    _run(db, user, anonymous, "select private.require_linked_account('use_ai_with_own_key')")


def data_rights(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    _run(db, user, anonymous, "select public.request_export()")


def report_abuse(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    target = _doc(db, create_user(db), "public")
    _run(
        db,
        user,
        anonymous,
        "insert into public.abuse_reports (document_id, reporter_id, reason) values (%s, %s, 'spam')",
        (target, user),
    )


def publish_documents(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    _run(
        db,
        user,
        anonymous,
        "insert into public.documents (kind, title, body, visibility) values ('item', 'pub', %s, 'public')",
        (ITEM,),
    )


def publish_documents_by_update(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    doc = _doc(db, user)
    _run(db, user, anonymous, "update public.documents set visibility = 'unlisted' where id = %s", (doc,))
    assert db.execute("select visibility from public.documents where id = %s", (doc,)).fetchone() == (
        "unlisted",
    )


def publish_documents_through_sync(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    change = {
        "change_id": f"c-{uuid.uuid4().hex[:8]}",
        "id": str(uuid.uuid4()),
        "base_version": None,
        "kind": "item",
        "title": "s",
        "body": {"name": "synced"},
        "visibility": "public",
    }
    rows = _run(db, user, anonymous, "select public.sync_push(%s, 'server_wins')", (json.dumps([change]),))
    assert rows
    (result,) = rows[0][0]["results"] if "results" in rows[0][0] else [rows[0][0]]
    if result.get("status") not in ("applied", None):  # a definer RPC reports the refusal per change
        raise psycopg.errors.InsufficientPrivilege(str(result))


def appear_in_explore(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    publish_documents(db, user, anonymous)
    rows = _run(db, user, anonymous, "select public.explore('item', 'newest', null, null, 50)")
    assert rows and "pub" in json.dumps(rows[0][0])


def take_username(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    _run(
        db,
        user,
        anonymous,
        "update public.profiles set username = %s where id = %s",
        (f"n_{user.hex[:10]}", user),
    )
    assert db.execute("select username from public.profiles where id = %s", (user,)).fetchone() == (
        f"n_{user.hex[:10]}",
    )


def public_profile(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    take_username(db, user, anonymous)
    with act_as(db, None, "anon") as cur:
        assert cur.execute("select public.public_profile(%s)", (f"n_{user.hex[:10]}",)).fetchone()


def create_share_links(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    doc = _doc(db, user)
    _run(db, user, anonymous, "select public.create_share_link(%s)", (doc,))


def invite_to_rooms(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    room = _room(db, user)
    _run(db, user, anonymous, "select token from public.create_room_invite(%s)", (room,))


def publish_templates(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    _run(db, user, anonymous, "insert into public.room_templates (name, visibility) values ('t', 'public')")


def publish_templates_by_update(db: Conn, user: uuid.UUID, anonymous: bool) -> None:
    row = db.execute(
        "insert into public.room_templates (owner_id, name) values (%s, 't') returning id", (user,)
    )
    template = row.fetchone()
    assert template is not None
    _run(
        db,
        user,
        anonymous,
        "update public.room_templates set visibility = 'public' where id = %s",
        (template[0],),
    )
    assert db.execute(
        "select visibility from public.room_templates where id = %s", (template[0],)
    ).fetchone() == ("public",)


ALLOWED: dict[str, list[Check]] = {
    "keep_private_documents": [keep_private_documents],
    "back_up": [back_up],
    "sync": [sync],
    "import": [import_],
    "fork_privately": [fork_privately],
    "join_invited_rooms": [join_invited_rooms],
    "create_rooms": [create_rooms],
    "upload_files": [upload_files],
    "use_ai_with_own_key": [use_ai_with_own_key],
    "data_rights": [data_rights],
    "report_abuse": [report_abuse],
}
NEEDS_LINKED_ACCOUNT: dict[str, list[Check]] = {
    "publish_documents": [publish_documents, publish_documents_by_update],
    "appear_in_explore": [appear_in_explore],
    "take_username": [take_username],
    "public_profile": [public_profile],
    "create_share_links": [create_share_links],
    "invite_to_rooms": [invite_to_rooms],
    "publish_templates": [publish_templates, publish_templates_by_update],
}


def test_every_capability_in_the_table_is_tested_here(db: Conn) -> None:
    rows = dict(
        db.execute("select capability, anonymous_allowed from public.account_capabilities").fetchall()
    )
    assert {c for c, allowed in rows.items() if allowed} == set(ALLOWED)
    assert {c for c, allowed in rows.items() if not allowed} == set(NEEDS_LINKED_ACCOUNT)


def test_everyone_reads_the_capabilities_with_a_reason(db: Conn) -> None:
    for role, user in (("anon", None), ("authenticated", create_user(db, anonymous=True))):
        with act_as(db, user, role) as cur:
            rows = cur.execute("select capability, why from public.account_capabilities").fetchall()
        assert len(rows) == len(ALLOWED) + len(NEEDS_LINKED_ACCOUNT)
        assert all(len(why) > 40 for _, why in rows)
    with act_as(db, create_user(db)) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("update public.account_capabilities set anonymous_allowed = true")


@pytest.mark.parametrize(
    ("capability", "check"),
    [(c, f) for c, fs in ALLOWED.items() for f in fs],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_anonymous_and_permanent_users_both_may(db: Conn, capability: str, check: Check) -> None:
    for anonymous in (True, False):
        user = create_user(db, anonymous=anonymous)
        check(db, user, anonymous)


def _snapshot(db: Conn) -> tuple[Any, ...]:
    return tuple(
        db.execute(q).fetchone()
        for q in (
            "select count(*) filter (where visibility <> 'private') from public.documents",
            "select count(*) from public.profiles where username is not null",
            "select count(*) from public.share_links",
            "select count(*) from public.room_invites",
            "select count(*) filter (where visibility = 'public') from public.room_templates",
        )
    )


@pytest.mark.parametrize(
    ("capability", "check"),
    [(c, f) for c, fs in NEEDS_LINKED_ACCOUNT.items() for f in fs],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_anonymous_users_are_told_to_link_an_account_permanent_users_may(
    db: Conn, capability: str, check: Check
) -> None:
    anonymous = create_user(db, anonymous=True)
    setup = _snapshot(db)
    with pytest.raises(psycopg.Error) as caught:
        check(db, anonymous, True)
    error = caught.value
    assert error.sqlstate == "42501", (error.sqlstate, str(error))
    assert "link an account" in str(error)
    assert error.diag.message_hint and "Link an email, phone or OAuth identity" in error.diag.message_hint
    # nothing visible to others came of it (a check may set up its own private rows first)
    assert _snapshot(db) == setup
    assert db.execute(
        "select count(*) from public.documents where owner_id = %s and visibility <> 'private'", (anonymous,)
    ).fetchone() == (0,)
    assert db.execute("select username from public.profiles where id = %s", (anonymous,)).fetchone() == (
        None,
    )

    permanent = create_user(db)
    check(db, permanent, False)


def test_the_restrictive_policy_alone_refuses_publishing(db: Conn) -> None:
    """Without the trigger's message, the policy still holds (defence in depth)."""
    anonymous = create_user(db, anonymous=True)
    db.execute("alter table public.documents disable trigger documents_require_linked_account_to_publish")
    with pytest.raises(psycopg.Error) as caught:
        publish_documents(db, anonymous, True)
    assert caught.value.sqlstate == "42501" and "row-level security" in str(caught.value)
    permanent = create_user(db)
    publish_documents(db, permanent, False)


def test_definer_rpcs_cannot_publish_for_an_anonymous_caller(db: Conn) -> None:
    anonymous = create_user(db, anonymous=True)
    with pytest.raises(psycopg.Error) as caught:
        publish_documents_through_sync(db, anonymous, True)
    assert "link an account" in str(caught.value)
    assert db.execute(
        "select count(*) from public.documents where owner_id = %s and visibility <> 'private'", (anonymous,)
    ).fetchone() == (0,)
    permanent = create_user(db)
    publish_documents_through_sync(db, permanent, False)
    assert db.execute(
        "select count(*) from public.documents where owner_id = %s and visibility = 'public'", (permanent,)
    ).fetchone() == (1,)
