"""The collection tracker's search (English stemming) and conflict names (#13 item 2).

Search: a per-kind text-search configuration (document_kinds.text_search_config), English for
the tracker's kinds; "guitar" finds "guitars" in an item's name and notes, through the table
(as supabase-js textSearch does) and through explore(), and the GIN index still serves it.
Conflicts: local_wins, remote_wins and manual are accepted and stored under the canonical names.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import item_body, loop_body

SEARCH = (
    "select id from public.documents where kind = %s and search @@ websearch_to_tsquery(%s::regconfig, %s)"
)


def test_the_tracker_kinds_search_in_english_and_the_sketchpad_kinds_stay_simple(db):
    rows = dict(db.execute("select id, text_search_config::text from public.document_kinds").fetchall())
    assert rows == {"item": "english", "folder": "english", "loop": "simple", "song": "simple"}


def test_guitar_finds_guitars_in_name_and_notes(db, make_user, make_doc):
    alice, stranger = make_user(), make_user()
    by_name = make_doc(alice, "item", item_body("Vintage guitars"))
    by_notes = make_doc(alice, "item", item_body("Amp", notes="Bought with two guitars in 1998"))
    make_doc(alice, "item", item_body("Drum kit", notes="snare"))
    with act_as(db, alice) as cur:
        found = {r[0] for r in cur.execute(SEARCH, ("item", "english", "guitar"))}
        assert found == {by_name, by_notes}
        assert {r[0] for r in cur.execute(SEARCH, ("item", "english", "guitars"))} == {by_name, by_notes}
    with act_as(db, stranger) as cur:  # RLS still decides who sees them
        assert cur.execute(SEARCH, ("item", "english", "guitar")).fetchall() == []


def test_explore_searches_a_public_item_with_its_kinds_configuration(db, make_user, make_doc):
    alice = make_user()
    public = make_doc(alice, "item", item_body("Guitars of the 60s"), visibility="public")
    with act_as(db, None, "anon") as cur:
        res = cur.execute("select public.explore('item', 'newest', 'guitar')").fetchone()[0]
    assert [i["id"] for i in res["items"]] == [str(public)]


def test_a_kinds_configuration_is_a_setting_and_changing_it_reindexes(db, make_user, make_doc):
    alice = make_user()
    loop = make_doc(alice, "loop", dict(loop_body("Guitars"), chords=["C"]))
    with act_as(db, alice) as cur:
        assert cur.execute(SEARCH, ("loop", "simple", "guitar")).fetchall() == []
    db.execute("update public.document_kinds set text_search_config = 'english' where id = 'loop'")
    with act_as(db, alice) as cur:
        assert cur.execute(SEARCH, ("loop", "english", "guitar")).fetchall() == [(loop,)]
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("update public.document_kinds set text_search_config = 'simple' where id = 'loop'")
    with pytest.raises(psycopg.errors.UndefinedObject), db.transaction():
        db.execute("update public.document_kinds set text_search_config = 'klingon' where id = 'loop'")


def test_an_edit_updates_the_vector_and_clients_cannot_write_it(db, make_user, make_doc):
    alice = make_user()
    doc = make_doc(alice, "item", item_body("Banjo"))
    with keep_as(db, alice) as cur:
        cur.execute(
            "update public.documents set body = %s where id = %s", (json.dumps(item_body("Guitars")), doc)
        )
        assert {r[0] for r in cur.execute(SEARCH, ("item", "english", "guitar"))} == {doc}
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("update public.documents set search = to_tsvector('x') where id = %s", (doc,))


def test_the_gin_index_serves_the_search(db):
    db.execute("set local enable_seqscan = off")
    plan = "\n".join(
        r[0]
        for r in db.execute(
            "explain select id from public.documents"
            " where search @@ websearch_to_tsquery('english', 'guitar')"
        )
    )
    assert "documents_search_idx" in plan


# == conflict names ==

PUSH = "select public.sync_push(%s, %s)"


def push(
    db: psycopg.Connection[Any],
    user: uuid.UUID,
    doc: str,
    cid: str,
    base: int | None,
    name: str,
    strategy: str,
) -> dict[str, Any]:
    change = {"change_id": cid, "id": doc, "base_version": base, "kind": "item", "body": item_body(name)}
    with keep_as(db, user) as cur:
        return dict(cur.execute(PUSH, (json.dumps([change]), strategy)).fetchone()[0]["results"][0])


def conflict(db: psycopg.Connection[Any], user: uuid.UUID, strategy: str) -> tuple[str, dict[str, Any]]:
    doc = str(uuid.uuid4())
    push(db, user, doc, "c1", None, "v1", "server_wins")
    push(db, user, doc, "c2", 1, "phone", "server_wins")
    return doc, push(db, user, doc, "c3", 1, "laptop", strategy)


NAME = "select body->>'name' from public.documents where id = %s"
STORED = "select strategy, status, resolution from public.sync_conflicts where id = %s"


def test_local_wins_is_client_wins(db, make_user):
    alice = make_user()
    doc, res = conflict(db, alice, "local_wins")
    assert db.execute(NAME, (doc,)).fetchone() == ("laptop",)
    assert db.execute(STORED, (res["conflict_id"],)).fetchone() == ("client_wins", "resolved", "client_wins")


def test_remote_wins_is_server_wins(db, make_user):
    alice = make_user()
    doc, res = conflict(db, alice, "remote_wins")
    assert res["status"] == "conflict" and db.execute(NAME, (doc,)).fetchone() == ("phone",)
    assert db.execute(STORED, (res["conflict_id"],)).fetchone() == ("server_wins", "open", None)


@pytest.mark.parametrize(
    ("resolution", "stored", "name"),
    [
        ("local_wins", "keep_mine", "laptop"),
        ("remote_wins", "keep_theirs", "phone"),
        ("manual", "merged", "both"),
    ],
)
def test_resolutions_by_the_trackers_names(db, make_user, resolution, stored, name):
    alice = make_user()
    doc, res = conflict(db, alice, "manual")
    assert res["status"] == "needs_resolution"
    body = json.dumps(item_body("both")) if resolution == "manual" else None
    with keep_as(db, alice) as cur:
        cur.execute("select public.resolve_conflict(%s, %s, %s)", (res["conflict_id"], resolution, body))
    assert db.execute(NAME, (doc,)).fetchone() == (name,)
    assert db.execute(STORED, (res["conflict_id"],)).fetchone() == ("manual", "resolved", stored)


def test_unknown_names_are_refused_and_change_nothing(db, make_user):
    alice = make_user()
    doc, res = conflict(db, alice, "manual")
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        cur.execute(PUSH, (json.dumps([]), "local"))
    assert (
        err.value.diag.message_hint
        == "Use server_wins (default; alias remote_wins), client_wins (alias local_wins) or manual."
    )
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        cur.execute("select public.resolve_conflict(%s, 'mine')", (res["conflict_id"],))
    assert "alias local_wins" in str(err.value)
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        cur.execute("select public.resolve_conflict(%s, 'manual')", (res["conflict_id"],))
    assert "a merged (manual) resolution needs the merged body" in str(err.value)
    assert db.execute(STORED, (res["conflict_id"],)).fetchone() == ("manual", "open", None)
    assert db.execute(NAME, (doc,)).fetchone() == ("phone",)
