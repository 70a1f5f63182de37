"""Every reference a client writes must point at something the caller may reach, and an RPC
taking an id answers someone else's id exactly like an id nobody uses (issue #12).

Migrations 20261206090400_security_reference_checks (policies, helpers, two BEFORE triggers)
and 20261206090410_security_id_oracles (sync_push, fork_document, ai_key_store).

Personas: alice owns things (documents, a room with a chat element, an AI key, a conflict,
a share link, a file); bob is the stranger who names them. Every write goes through act_as.
Update policies are proven with a column grant given inside the test (rolled back): the
policy must refuse the reference whatever the platform flavour's grants (legacy or none).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import item_body

Conn = psycopg.Connection[Any]


# == fixtures ==


@dataclass(frozen=True)
class World:
    alice: uuid.UUID
    bob: uuid.UUID
    alice_doc: uuid.UUID  # private
    alice_public: uuid.UUID
    alice_room: uuid.UUID
    alice_chat: uuid.UUID  # chat element in alice_room
    alice_note: uuid.UUID  # note element in alice_room
    alice_key: uuid.UUID
    alice_conflict: uuid.UUID
    alice_link: uuid.UUID  # share link of alice_doc
    alice_object: str  # images/<alice>/a.png
    bob_doc: uuid.UUID
    bob_room: uuid.UUID
    bob_chat: uuid.UUID
    bob_note: uuid.UUID
    bob_key: uuid.UUID
    bob_conflict: uuid.UUID
    bob_link: uuid.UUID
    bob_object: str


def make_doc(db: Conn, owner: uuid.UUID, visibility: str = "private") -> uuid.UUID:
    row = db.execute(
        "insert into public.documents (owner_id, kind, body, visibility)"
        " values (%s, 'item', %s, %s) returning id",
        (owner, json.dumps(item_body()), visibility),
    ).fetchone()
    assert row
    return uuid.UUID(str(row[0]))


def make_room(db: Conn, owner: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    with keep_as(db, owner) as cur:
        room = cur.execute("insert into public.rooms (title) values ('r') returning id").fetchone()[0]  # type: ignore[index]
    chat = db.execute(
        "insert into public.room_elements (room_id, kind) values (%s, 'chat') returning id", (room,)
    ).fetchone()[0]  # type: ignore[index]
    note = db.execute(
        "insert into public.room_elements (room_id, kind) values (%s, 'note') returning id", (room,)
    ).fetchone()[0]  # type: ignore[index]
    return room, chat, note


def make_key(db: Conn, owner: uuid.UUID) -> uuid.UUID:
    with keep_as(db, owner) as cur:
        key = cur.execute(
            "select private.ai_key_store('openai', 'l', 'abcd', null, 'm', '\\x00', '\\x00')"
        ).fetchone()[0]  # type: ignore[index]
    return uuid.UUID(str(key))


def make_conflict(db: Conn, owner: uuid.UUID, doc: uuid.UUID) -> uuid.UUID:
    row = db.execute(
        "insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, server_version,"
        " server_title, server_body) values (%s, %s, 'c', 'manual', 1, 't', '{}') returning id",
        (owner, doc),
    ).fetchone()
    assert row
    return uuid.UUID(str(row[0]))


def make_link(db: Conn, owner: uuid.UUID, doc: uuid.UUID) -> tuple[uuid.UUID, str]:
    with keep_as(db, owner) as cur:
        link = cur.execute("select public.create_share_link(%s)", (doc,)).fetchone()[0]  # type: ignore[index]
    return uuid.UUID(link["id"]), str(link["token"])


def make_object(db: Conn, owner: uuid.UUID, name: str) -> str:
    path = f"{owner}/{name}"
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id, metadata)"
        ' values (\'images\', %s, %s, \'{"size": 10, "mimetype": "image/png"}\')',
        (path, str(owner)),
    )
    return path


@pytest.fixture
def w(db: Conn, make_user: Any) -> World:
    alice, bob = make_user(), make_user()
    alice_doc, bob_doc = make_doc(db, alice), make_doc(db, bob)
    alice_room, alice_chat, alice_note = make_room(db, alice)
    bob_room, bob_chat, bob_note = make_room(db, bob)
    return World(
        alice=alice,
        bob=bob,
        alice_doc=alice_doc,
        alice_public=make_doc(db, alice, "public"),
        alice_room=alice_room,
        alice_chat=alice_chat,
        alice_note=alice_note,
        alice_key=make_key(db, alice),
        alice_conflict=make_conflict(db, alice, alice_doc),
        alice_link=make_link(db, alice, alice_doc)[0],
        alice_object=make_object(db, alice, "a.png"),
        bob_doc=bob_doc,
        bob_room=bob_room,
        bob_chat=bob_chat,
        bob_note=bob_note,
        bob_key=make_key(db, bob),
        bob_conflict=make_conflict(db, bob, bob_doc),
        bob_link=make_link(db, bob, bob_doc)[0],
        bob_object=make_object(db, bob, "b.png"),
    )


# == helpers ==


def refusal(db: Conn, uid: uuid.UUID, query: str, params: Any = ()) -> psycopg.Error:
    """The error `uid` gets for the statement (which must fail); its effects are rolled back."""
    with pytest.raises(psycopg.Error) as info, act_as(db, uid) as cur:
        cur.execute(query, params)
    return info.value


def shape(err: psycopg.Error, *ids: object) -> tuple[str | None, str, str, str]:
    """SQLSTATE, message, detail and hint with the given ids blanked out."""

    def blank(text: str | None) -> str:
        text = text or ""
        for value in ids:
            text = text.replace(str(value), "<id>")
        return text

    d = err.diag
    return (err.sqlstate, blank(d.message_primary), blank(d.message_detail), blank(d.message_hint))


def same_answer(db: Conn, uid: uuid.UUID, query: str, other: object, *params: object) -> tuple[Any, ...]:
    """Run `query` with someone else's id and with an unused id: both must fail identically."""
    unused = uuid.uuid4()
    with_other = refusal(db, uid, query, (other, *params))
    with_unused = refusal(db, uid, query, (unused, *params))
    assert shape(with_other, other) == shape(with_unused, unused), (with_other, with_unused)
    assert (with_other.sqlstate or "")[:2] not in ("XX", "P0", "54"), with_other.sqlstate
    return shape(with_other, other)


def grant(db: Conn, privilege: str, table: str, column: str) -> None:
    """Give authenticated a column privilege for this test only, so the policy is what decides."""
    db.execute(f"grant {privilege} ({column}) on table public.{table} to authenticated")


def count(db: Conn, query: str, params: Any = ()) -> int:
    row = db.execute(query, params).fetchone()
    assert row
    return int(row[0])


AI_INSERT = (
    "insert into public.ai_requests (provider, model, messages, chat_element_id, key_id)"
    ' values (\'openai\', \'gpt-4o-mini\', \'[{"role": "user", "content": "hi"}]\', %s, %s)'
)
CONFLICT_INSERT = (
    "insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, server_version,"
    " server_title, server_body) values ((select auth.uid()), %s, 'x', 'manual', 1, 't', '{}')"
)
CHAT_INSERT = (
    "insert into public.room_chat_messages (room_id, element_id, role, content) values (%s, %s, 'user', 'hi')"
)


# == 1. reference columns: someone else's (or no) target refused, your own accepted ==


def test_ai_request_chat_element_must_be_a_chat_of_a_room_you_edit(db: Conn, w: World) -> None:
    # Someone else's chat element and an unknown id: the same 42501, nothing queued.
    assert same_answer(db, w.bob, AI_INSERT, w.alice_chat, None)[0] == "42501"
    assert count(db, "select count(*) from public.ai_requests") == 0
    # Not a chat element (a note of your own room) is refused too.
    assert refusal(db, w.bob, AI_INSERT, (w.bob_note, None)).sqlstate == "42501"
    # Your own chat element (and none at all) is accepted.
    with act_as(db, w.bob) as cur:
        cur.execute(AI_INSERT, (w.bob_chat, None))
        cur.execute(AI_INSERT, (None, w.bob_key))
    # A viewer of alice's room may not, an editor may.
    db.execute(
        "insert into public.room_members (room_id, user_id, role) values (%s, %s, 'viewer')",
        (w.alice_room, w.bob),
    )
    assert refusal(db, w.bob, AI_INSERT, (w.alice_chat, None)).sqlstate == "42501"
    db.execute(
        "update public.room_members set role = 'editor' where room_id = %s and user_id = %s",
        (w.alice_room, w.bob),
    )
    with act_as(db, w.bob) as cur:
        cur.execute(AI_INSERT, (w.alice_chat, None))
        assert cur.rowcount == 1


def test_ai_request_key_must_be_your_own(db: Conn, w: World) -> None:
    assert same_answer(db, w.bob, AI_INSERT.replace("%s, %s)", "null, %s)"), w.alice_key)[0] == "42501"
    with act_as(db, w.bob) as cur:
        cur.execute(AI_INSERT, (None, w.bob_key))


def test_sync_conflict_insert_must_name_your_own_document(db: Conn, w: World) -> None:
    # Before: alice's document was accepted and an unknown id answered 23503 (an existence oracle).
    # Since 20261206091100 only the database records conflicts (sync_push), so a
    # client's INSERT is refused whatever it names, with one answer.
    assert same_answer(db, w.bob, CONFLICT_INSERT, w.alice_doc)[0] == "42501"
    assert count(db, "select count(*) from public.sync_conflicts where document_id = %s", (w.alice_doc,)) == 1
    assert refusal(db, w.bob, CONFLICT_INSERT, (w.bob_doc,)).sqlstate == "42501"


def test_sync_conflict_update_keeps_to_your_own_documents(db: Conn, w: World) -> None:
    grant(db, "update", "sync_conflicts", "document_id")
    query = "update public.sync_conflicts set document_id = %s where id = %s"
    err = refusal(db, w.bob, query, (w.alice_doc, w.bob_conflict))
    assert err.sqlstate == "42501"
    other_doc = make_doc(db, w.bob)
    with act_as(db, w.bob) as cur:
        cur.execute(query, (other_doc, w.bob_conflict))
        assert cur.rowcount == 1
        # The usual update (resolving) still works.
        cur.execute(
            "update public.sync_conflicts set status = 'resolved', resolution = 'keep_theirs',"
            " resolved_at = now() where id = %s",
            (w.bob_conflict,),
        )
        assert cur.rowcount == 1


def test_share_link_stays_on_your_own_document(db: Conn, w: World) -> None:
    # Insert (unchanged policy, proven again): someone else's document or an unknown one.
    insert = (
        "insert into public.share_links (document_id, owner_id, token_hash)"
        " values (%s, (select auth.uid()), sha256(gen_random_uuid()::text::bytea))"
    )
    assert same_answer(db, w.bob, insert, w.alice_doc)[0] == "42501"
    # Update: revoking may not move the link to someone else's document.
    grant(db, "update", "share_links", "document_id")
    move = "update public.share_links set document_id = %s where id = %s"
    assert refusal(db, w.bob, move, (w.alice_doc, w.bob_link)).sqlstate == "42501"
    assert db.execute(
        "select document_id from public.share_links where id = %s", (w.bob_link,)
    ).fetchone() == (w.bob_doc,)
    with act_as(db, w.bob) as cur:
        cur.execute("update public.share_links set revoked_at = now() where id = %s", (w.bob_link,))
        assert cur.rowcount == 1


def test_documents_lineage_is_written_by_fork_document_only(db: Conn, w: World) -> None:
    grant(db, "insert", "documents", "forked_from")
    grant(db, "update", "documents", "forked_from")
    insert = "insert into public.documents (kind, body, forked_from) values ('item', %s, %s)"
    body = json.dumps(item_body())
    err = refusal(db, w.bob, insert, (body, w.alice_public))
    assert err.sqlstate == "42501"
    with act_as(db, w.bob) as cur:
        cur.execute(insert, (body, None))
    # A real fork keeps its lineage, and its owner can still edit it, even after the source
    # stops being public; changing the lineage to another document is refused.
    with keep_as(db, w.bob) as cur:
        fork = cur.execute("select (public.fork_document(%s)).id", (w.alice_public,)).fetchone()[0]  # type: ignore[index]
    db.execute("update public.documents set visibility = 'private' where id = %s", (w.alice_public,))
    with act_as(db, w.bob) as cur:
        cur.execute("update public.documents set title = 'mine' where id = %s", (fork,))
        assert cur.rowcount == 1
    assert (
        refusal(
            db, w.bob, "update public.documents set forked_from = %s where id = %s", (w.alice_doc, fork)
        ).sqlstate
        == "42501"
    )
    assert (
        refusal(
            db, w.bob, "update public.documents set forked_from = %s where id = %s", (fork, w.bob_doc)
        ).sqlstate
        == "42501"
    )
    assert db.execute("select forked_from from public.documents where id = %s", (fork,)).fetchone() == (
        w.alice_public,
    )


FILE_LINK = (
    "insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)"
    " values ((select auth.uid()), 'images', %s, %s, %s)"
)


@pytest.mark.parametrize("ref_kind", ["document", "room_element", "profile"])
def test_file_link_must_name_your_own_row(db: Conn, w: World, ref_kind: str) -> None:
    theirs, mine = {
        "document": (w.alice_doc, w.bob_doc),
        "room_element": (w.alice_note, w.bob_note),
        "profile": (w.alice, w.bob),
    }[ref_kind]
    query = FILE_LINK.replace("%s, %s, %s)", f"'{w.bob_object}', '{ref_kind}', %s)")
    assert same_answer(db, w.bob, query, theirs)[0] == "42501"
    with act_as(db, w.bob) as cur:
        cur.execute(FILE_LINK, (w.bob_object, ref_kind, mine))
        assert cur.rowcount == 1
    # Someone else's file stays refused whatever it is linked to.
    assert refusal(db, w.bob, FILE_LINK, (w.alice_object, ref_kind, mine)).sqlstate == "42501"


def test_file_link_of_an_unknown_kind_is_refused(db: Conn, w: World) -> None:
    assert refusal(db, w.bob, FILE_LINK, (w.bob_object, "gadget", w.bob_doc)).sqlstate == "42501"


def test_link_document_file_rpc_still_links_your_own(db: Conn, w: World) -> None:
    with act_as(db, w.bob) as cur:
        row = cur.execute(
            "select ref_id from public.link_document_file(%s, 'images', %s)", (w.bob_doc, w.bob_object)
        ).fetchone()
        assert row == (w.bob_doc,)


ENQUEUE = "select public.enqueue_job(%s, %s)"


@pytest.mark.parametrize(
    ("kind", "key"),
    [("room_export", "room_id"), ("export", "user_id"), ("export", "document_id")],
)
def test_job_payload_references_must_be_yours(db: Conn, w: World, kind: str, key: str) -> None:
    theirs = {"room_id": w.alice_room, "user_id": w.alice, "document_id": w.alice_doc}[key]
    mine = {"room_id": w.bob_room, "user_id": w.bob, "document_id": w.bob_doc}[key]
    unused = uuid.uuid4()
    jobs_before = count(db, "select count(*) from public.jobs where owner_id = %s", (w.bob,))
    answers = []
    for target in (theirs, unused):
        payload = json.dumps({key: str(target), "format": "markdown"})
        err = refusal(db, w.bob, ENQUEUE, (kind, payload))
        answers.append(shape(err, target))
        # The same through a direct insert.
        err = refusal(
            db,
            w.bob,
            "insert into public.jobs (kind, payload, owner_id) values (%s, %s, (select auth.uid()))",
            (kind, payload),
        )
        assert err.sqlstate == "42501" and key in (err.diag.message_primary or "")
    assert answers[0] == answers[1] and answers[0][0] == "42501" and key in answers[0][1]
    assert count(db, "select count(*) from public.jobs where owner_id = %s", (w.bob,)) == jobs_before
    with act_as(db, w.bob) as cur:
        cur.execute(ENQUEUE, (kind, json.dumps({key: str(mine), "format": "markdown"})))
    # Not a uuid at all: the same refusal (no cast error).
    assert refusal(db, w.bob, ENQUEUE, (kind, json.dumps({key: "nope"}))).sqlstate == "42501"


def test_room_export_job_for_a_room_you_only_view_is_allowed(db: Conn, w: World) -> None:
    db.execute(
        "insert into public.room_members (room_id, user_id, role) values (%s, %s, 'viewer')",
        (w.alice_room, w.bob),
    )
    with act_as(db, w.bob) as cur:
        cur.execute(ENQUEUE, ("room_export", json.dumps({"room_id": str(w.alice_room)})))


def test_thumbnail_job_must_name_your_own_file(db: Conn, w: World) -> None:
    theirs = refusal(
        db, w.bob, ENQUEUE, ("thumbnail", json.dumps({"bucket": "images", "name": w.alice_object}))
    )
    missing = f"{w.alice}/never-uploaded.png"
    unused = refusal(db, w.bob, ENQUEUE, ("thumbnail", json.dumps({"bucket": "images", "name": missing})))
    assert shape(theirs) == shape(unused) and theirs.sqlstate == "42501"
    with act_as(db, w.bob) as cur:
        cur.execute(ENQUEUE, ("thumbnail", json.dumps({"bucket": "images", "name": w.bob_object})))
        cur.execute(ENQUEUE, ("thumbnail", json.dumps({"name": w.bob_object})))  # bucket defaults to images
        cur.execute(ENQUEUE, ("thumbnail", "{}"))  # no reference: the worker refuses it later


def test_room_member_update_changes_the_role_only(db: Conn, w: World, make_user: Any) -> None:
    carol = make_user()
    db.execute(
        "insert into public.room_members (room_id, user_id, role, invited_by) values (%s, %s, 'viewer', %s)",
        (w.alice_room, carol, w.alice),
    )
    for column in ("user_id", "room_id", "invited_by"):
        grant(db, "update", "room_members", column)
    where = " where room_id = %s and user_id = %s"
    for assignment, value in (
        ("user_id = %s", w.bob),  # hand carol's seat to someone who was never invited
        ("room_id = %s", w.bob_room),  # move carol into another room (bob's)
        ("invited_by = %s", w.bob),  # forge who invited her
    ):
        err = refusal(
            db, w.alice, f"update public.room_members set {assignment}{where}", (value, w.alice_room, carol)
        )
        assert err.sqlstate == "42501", assignment
    # Moving her into another room alice owns is refused as well.
    other_room = make_room(db, w.alice)[0]
    assert (
        refusal(
            db,
            w.alice,
            f"update public.room_members set room_id = %s{where}",
            (other_room, w.alice_room, carol),
        ).sqlstate
        == "42501"
    )
    with act_as(db, w.alice) as cur:
        cur.execute(f"update public.room_members set role = 'editor'{where}", (w.alice_room, carol))
        assert cur.rowcount == 1
    assert count(db, "select count(*) from public.room_members where user_id = %s", (w.bob,)) == 1  # own room


def test_chat_message_to_a_room_you_cannot_edit_answers_the_same_whatever_exists(db: Conn, w: World) -> None:
    # Before: alice's real chat element -> 42501 (policy), a made-up one -> 23514 (trigger).
    real = refusal(db, w.bob, CHAT_INSERT, (w.alice_room, w.alice_chat))
    made_up = refusal(db, w.bob, CHAT_INSERT, (w.alice_room, uuid.uuid4()))
    unknown_room = uuid.uuid4()
    nowhere = refusal(db, w.bob, CHAT_INSERT, (unknown_room, uuid.uuid4()))
    assert real.sqlstate == "42501"
    assert shape(real) == shape(made_up) == shape(nowhere)
    assert count(db, "select count(*) from public.room_chat_messages") == 0
    with act_as(db, w.bob) as cur:
        cur.execute(CHAT_INSERT, (w.bob_room, w.bob_chat))
        assert cur.rowcount == 1
    # A note is still no chat (the trigger's own check, for your own room).
    assert refusal(db, w.bob, CHAT_INSERT, (w.bob_room, w.bob_note)).sqlstate == "23514"


def test_element_in_a_full_room_you_cannot_edit_reveals_nothing(db: Conn, w: World) -> None:
    insert = "insert into public.room_elements (room_id, kind) values (%s, 'note')"
    # alice's room is full (2 elements at a cap of 2): the cap message would name her plan.
    db.execute("update public.plans set room_elements_max = 2")
    full = refusal(db, w.bob, insert, (w.alice_room,))
    unknown = uuid.uuid4()
    assert shape(full, w.alice_room) == shape(refusal(db, w.bob, insert, (unknown,)), unknown)
    assert full.sqlstate == "42501" and "plan" not in (full.diag.message_primary or "")
    # The owner still hits the cap with its message; below the cap the owner adds elements.
    err = refusal(db, w.alice, insert, (w.alice_room,))
    assert err.sqlstate == "23514" and "limit" in (err.diag.message_primary or "")
    db.execute("update public.plans set room_elements_max = 3")
    with act_as(db, w.alice) as cur:
        cur.execute(insert, (w.alice_room,))


def test_abuse_report_on_a_private_document_answers_like_an_unknown_one(db: Conn, w: World) -> None:
    query = (
        "insert into public.abuse_reports (document_id, reporter_id, reason)"
        " values (%s, (select auth.uid()), 'spam')"
    )
    assert same_answer(db, w.bob, query, w.alice_doc)[0] == "42501"
    with act_as(db, w.bob) as cur:
        cur.execute(query, (w.alice_public,))


# == 2. id oracles: someone else's id answers exactly like an unused id and changes nothing ==

PUSH = "select public.sync_push(%s, 'server_wins')"


def push(db: Conn, uid: uuid.UUID, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with keep_as(db, uid) as cur:
        return cur.execute(PUSH, (json.dumps(changes),)).fetchone()[0]["results"]  # type: ignore[index,no-any-return]


def result_shape(result: dict[str, Any], doc_id: object) -> str:
    return json.dumps(result, sort_keys=True).replace(str(doc_id), "<id>")


def alice_state(db: Conn, w: World) -> list[tuple[Any, ...]]:
    return db.execute(
        "select id, title, body, version, deleted_at, visibility from public.documents"
        " where owner_id = %s order by id",
        (w.alice,),
    ).fetchall()


@pytest.mark.parametrize(
    "change",
    [
        {"op": "upsert", "base_version": 1, "title": "stolen"},
        {"op": "upsert", "base_version": 7, "title": "stolen"},
        {"op": "delete", "base_version": 1},
        {"op": "delete"},
    ],
    ids=["update", "stale-update", "delete", "delete-no-base"],
)
def test_sync_push_on_someone_elses_document_answers_like_an_unused_id(
    db: Conn, w: World, change: dict[str, Any]
) -> None:
    before = alice_state(db, w)
    unused = uuid.uuid4()
    base = {"kind": "item", "body": item_body("mine now"), **change}
    other, free = push(
        db,
        w.bob,
        [{**base, "change_id": "a", "id": str(w.alice_doc)}, {**base, "change_id": "a2", "id": str(unused)}],
    )
    assert result_shape(other, w.alice_doc) == result_shape({**free, "change_id": "a"}, unused)
    if change["op"] == "upsert":
        assert other["status"] == "rejected" and other["code"] == "PT404"
        assert other["error"] == f"document {w.alice_doc} is not in your library"
    else:
        assert other["status"] == "applied" and other.get("note") == "already absent"
    # Nothing of alice's changed, nothing was created for bob (an update no longer creates).
    assert alice_state(db, w) == before
    assert count(db, "select count(*) from public.documents where id = %s", (unused,)) == 0
    assert (
        count(db, "select count(*) from public.sync_conflicts where owner_id = %s", (w.bob,)) == 1
    )  # fixture's


def test_sync_push_create_with_a_taken_id_is_refused_without_naming_anything(db: Conn, w: World) -> None:
    """Clients choose document ids, so a create must fail on a taken id: one answer whose id it is."""
    before = alice_state(db, w)
    new = {"kind": "item", "body": item_body("x"), "base_version": None}
    theirs, mine = push(
        db,
        w.bob,
        [{**new, "change_id": "t", "id": str(w.alice_doc)}, {**new, "change_id": "m", "id": str(w.bob_doc)}],
    )
    assert theirs["status"] == "rejected" and theirs["code"] == "23505"
    assert theirs["error"] == f"document id {w.alice_doc} cannot be used for a new document"
    assert "documents_pkey" not in json.dumps(theirs)
    assert mine["status"] == "conflict"  # your own document: a conflict, as before
    assert alice_state(db, w) == before
    # An unused id is created: the documented difference a client-chosen id cannot avoid.
    fresh = str(uuid.uuid4())
    (created,) = push(db, w.bob, [{**new, "change_id": "f", "id": fresh}])
    assert created["status"] == "applied" and created["version"] == 1


def test_sync_push_still_updates_your_own_documents(db: Conn, w: World) -> None:
    (res,) = push(
        db, w.bob, [{"change_id": "u", "id": str(w.bob_doc), "kind": "item", "base_version": 1, "title": "t"}]
    )
    assert res["status"] == "applied" and res["version"] == 2


ID_RPCS = {
    "delete_document": ("select public.delete_document(%s)", "alice_doc", ()),
    "create_share_link": ("select public.create_share_link(%s)", "alice_doc", ()),
    "revoke_share_link": ("select public.revoke_share_link(%s)", "alice_link", ()),
    "resolve_conflict": ("select public.resolve_conflict(%s, 'keep_mine')", "alice_conflict", ()),
    "fork_document": ("select public.fork_document(%s)", "alice_doc", ()),
    "transfer_room_ownership": ("select public.transfer_room_ownership(%s, %s)", "alice_room", ("bob",)),
    "create_room_invite": ("select public.create_room_invite(%s, 'editor')", "alice_room", ()),
    "leave_room": ("select public.leave_room(%s)", "alice_room", ()),
}


@pytest.mark.parametrize("rpc", sorted(ID_RPCS))
def test_rpc_answers_someone_elses_id_like_an_unused_id(db: Conn, w: World, rpc: str) -> None:
    query, attr, extra = ID_RPCS[rpc]
    params = tuple(getattr(w, name) for name in extra)
    before = alice_state(db, w)
    links = db.execute("select id, revoked_at from public.share_links order by id").fetchall()
    state, *_ = same_answer(db, w.bob, query, getattr(w, attr), *params)
    assert state in ("PT404", "42501", "22023", "PT403", "PT410"), state
    assert alice_state(db, w) == before
    assert db.execute("select id, revoked_at from public.share_links order by id").fetchall() == links


def test_link_document_file_answers_someone_elses_document_like_an_unused_id(db: Conn, w: World) -> None:
    same_answer(db, w.bob, "select public.link_document_file(%s, 'images', %s)", w.alice_doc, w.bob_object)


def test_apply_template_answers_someone_elses_room_like_an_unused_id(db: Conn, w: World) -> None:
    template = db.execute("select id from public.room_templates where owner_id is null limit 1").fetchone()
    assert template
    same_answer(db, w.bob, "select public.apply_template(%s, %s)", w.alice_room, template[0])
    assert count(db, "select count(*) from public.room_elements where room_id = %s", (w.alice_room,)) == 2


FORK = "select public.fork_document(%s, %s)"


def test_fork_document_token_errors_do_not_depend_on_the_document(db: Conn, w: World) -> None:
    # A valid token for another document of alice's, a garbage token, a revoked token.
    unlisted = make_doc(db, w.alice, "unlisted")
    _, token = make_link(db, w.alice, unlisted)
    revoked_id, revoked = make_link(db, w.alice, make_doc(db, w.alice, "unlisted"))
    db.execute("update public.share_links set revoked_at = now() where id = %s", (revoked_id,))
    answers = {}
    for label, tok in (("other doc's token", token), ("garbage", "nope"), ("revoked", revoked)):
        answers[label] = same_answer(db, w.bob, FORK, w.alice_doc, tok)
    assert answers["other doc's token"][0] == "PT404" and answers["garbage"][0] == "PT404"
    assert answers["revoked"][0] == "PT410"
    # What the token opens still forks; public documents need no token (a stale one is ignored).
    with act_as(db, w.bob) as cur:
        assert cur.execute(
            "select (public.fork_document(%s, %s)).forked_from", (unlisted, token)
        ).fetchone() == (unlisted,)
        assert cur.execute(
            "select (public.fork_document(%s, 'nope')).forked_from", (w.alice_public,)
        ).fetchone() == (w.alice_public,)
    assert count(db, "select count(*) from public.documents where forked_from = %s", (w.alice_doc,)) == 0


KEY_STORE = "select private.ai_key_store('openai', 'l', 'wxyz', null, 'm', '\\x01', '\\x01', %s)"


def test_ai_key_store_answers_a_taken_id_the_same_whoever_holds_it(db: Conn, w: World) -> None:
    theirs = refusal(db, w.bob, KEY_STORE, (w.alice_key,))
    mine = refusal(db, w.bob, KEY_STORE, (w.bob_key,))
    assert shape(theirs, w.alice_key) == shape(mine, w.bob_key)
    assert theirs.sqlstate == "23505" and "ai_keys_pkey" not in str(shape(theirs))
    assert db.execute(
        "select user_id, last4 from public.ai_keys where id = %s", (w.alice_key,)
    ).fetchone() == (
        w.alice,
        "abcd",
    )
    assert (
        refusal(
            db, w.bob, "select private.ai_key_store('openai', 'l', 'wxyz', null, 'm', '\\x01', '\\x01', null)"
        ).sqlstate
        == "22023"
    )
    # A new id works (the proxy's path).
    with act_as(db, w.bob) as cur:
        fresh = uuid.uuid4()
        assert cur.execute(KEY_STORE, (fresh,)).fetchone() == (fresh,)


def test_policies_are_named_as_sentences_and_check_references(db: Conn) -> None:
    """The replaced policies exist with their new names (and the old ones are gone)."""
    names = {
        (r[0], r[1])
        for r in db.execute(
            "select tablename, policyname from pg_policies"
            " where schemaname = 'public' and cmd in ('INSERT', 'UPDATE')"
        ).fetchall()
    }
    assert ("ai_requests", "owners queue ai requests with their own keys and chats") in names
    # Conflicts are recorded by the database only since 20261206091100: no client INSERT policy.
    assert not any(t == "sync_conflicts" and n.startswith("owners record") for t, n in names)
    assert all(re.fullmatch(r"[a-z][a-z ,'-]+", name) for _, name in names), names


def test_helpers_called_directly_answer_only_about_the_callers_own_rows(db: Conn, w: World) -> None:
    """The policies' definer helpers read rows RLS hides; called directly they must not tell."""
    checks = [
        ("select private.document_lineage_is(%s, null)", (w.alice_doc,), (w.bob_doc,)),
        ("select private.room_membership_is(%s, %s, null)", (w.alice_room, w.alice), (w.bob_room, w.bob)),
        ("select private.file_link_ref_is_mine('document', %s)", (w.alice_doc,), (w.bob_doc,)),
        ("select private.file_link_ref_is_mine('room_element', %s)", (w.alice_note,), (w.bob_note,)),
    ]
    for query, theirs, mine in checks:
        with act_as(db, w.bob) as cur:
            assert cur.execute(query, theirs).fetchone() == (False,), query
            assert cur.execute(query, mine).fetchone() == (True,), query
