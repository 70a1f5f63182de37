"""Share links, open_share, public profiles, explore, forks and abuse reports."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import item_body, loop_body, sqlstate_of


def share(db, owner, doc, days=None):
    with keep_as(db, owner) as cur:
        return cur.execute("select public.create_share_link(%s, %s)", (doc, days)).fetchone()[0]


def test_share_link_token_is_long_random_and_stored_hashed(db, make_user, make_doc):
    alice = make_user()
    doc = make_doc(alice)
    a, b = share(db, alice, doc), share(db, alice, doc, 7)
    assert re.fullmatch(r"[0-9a-f]{64}", a["token"]) and a["token"] != b["token"]
    assert a["expires_at"] is None and b["expires_at"] is not None
    stored = db.execute("select token_hash from public.share_links where id = %s", (a["id"],)).fetchone()[0]
    assert bytes(stored) != a["token"].encode() and len(bytes(stored)) == 32


def test_anyone_opens_a_link_views_counted_and_errors_are_clear(db, make_user, make_doc):
    alice = make_user()
    db.execute("update public.profiles set username = 'alice' where id = %s", (alice,))
    doc = make_doc(alice, title="Secret loop", visibility="unlisted")
    link = share(db, alice, doc, 3)
    for _ in range(2):
        with keep_as(db, None, "anon") as cur:
            opened = cur.execute("select public.open_share(%s)", (link["token"],)).fetchone()[0]
    assert opened["document"]["title"] == "Secret loop" and opened["owner"]["username"] == "alice"
    assert opened["document"]["view_count"] == 2
    with act_as(db, None, "anon") as cur:
        assert cur.execute("select count(*) from public.documents where id = %s", (doc,)).fetchone() == (0,)
    with act_as(db, None, "anon") as cur:
        assert sqlstate_of(cur, "select public.open_share('nope')") == "PT404"
    db.execute(
        "update public.share_links set expires_at = now() - interval '1 day' where id = %s", (link["id"],)
    )
    with act_as(db, None, "anon") as cur, pytest.raises(Exception) as exc:
        cur.execute("select public.open_share(%s)", (link["token"],))
    assert exc.value.sqlstate == "PT410" and "expired" in str(exc.value)
    other = share(db, alice, doc)
    with keep_as(db, alice) as cur:
        cur.execute("select public.revoke_share_link(%s)", (other["id"],))
    with act_as(db, None, "anon") as cur, pytest.raises(Exception) as exc:
        cur.execute("select public.open_share(%s)", (other["token"],))
    assert exc.value.sqlstate == "PT410" and "revoked" in str(exc.value)


def test_only_owner_creates_or_revokes_links(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    doc = make_doc(alice)
    with act_as(db, bob) as cur:
        assert sqlstate_of(cur, "select public.create_share_link(%s)", (doc,)) == "PT404"
    link = share(db, alice, doc)
    with act_as(db, bob) as cur:
        assert sqlstate_of(cur, "select public.revoke_share_link(%s)", (link["id"],)) == "PT404"
    with act_as(db, alice) as cur:
        assert sqlstate_of(cur, "select public.create_share_link(%s, 0)", (doc,)) == "22023"


def test_fork_public_or_shared_document_with_lineage(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    pub = make_doc(alice, visibility="public", body=loop_body("Hook"))
    private = make_doc(alice)
    with keep_as(db, bob) as cur:
        fork = cur.execute("select to_jsonb(public.fork_document(%s))", (pub,)).fetchone()[0]
    assert (fork["owner_id"], fork["forked_from"], fork["visibility"], fork["body"]["name"]) == (
        str(bob),
        str(pub),
        "private",
        "Hook",
    )
    assert db.execute("select fork_count from public.documents where id = %s", (pub,)).fetchone() == (1,)
    with act_as(db, bob) as cur:
        assert sqlstate_of(cur, "select public.fork_document(%s)", (private,)) == "PT404"
    link = share(db, alice, private)
    with keep_as(db, bob) as cur:
        cur.execute("select public.fork_document(%s, %s)", (private, link["token"]))
    with act_as(db, bob) as cur:
        assert (
            sqlstate_of(cur, "select public.fork_document(%s, %s)", (pub, "x" * 64)) is None
        )  # public: token ignored
    with act_as(db, None, "anon") as cur:
        assert sqlstate_of(cur, "select public.fork_document(%s)", (pub,)) == "42501"


def test_public_profile_lists_only_public_documents(db, make_user, make_doc):
    alice = make_user()
    db.execute("update public.profiles set username = 'alice' where id = %s", (alice,))
    pub = make_doc(alice, visibility="public")
    make_doc(alice, visibility="unlisted")
    make_doc(alice)
    with act_as(db, None, "anon") as cur:
        prof = cur.execute("select public.public_profile('Alice')").fetchone()[0]
    assert prof["profile"]["username"] == "alice" and [d["id"] for d in prof["documents"]] == [str(pub)]
    with act_as(db, None, "anon") as cur:
        assert sqlstate_of(cur, "select public.public_profile('nobody_here')") == "PT404"


def test_explore_keyset_pages_sorting_and_search(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    docs = [
        make_doc(
            alice if i % 2 else bob,
            "item",
            item_body(f"Record {i}", notes="rare" if i == 3 else "x"),
            visibility="public",
        )
        for i in range(7)
    ]
    make_doc(alice, "item", item_body("hidden"), visibility="unlisted")
    db.execute("update public.documents set fork_count = 10 where id = %s", (docs[2],))
    for i, d in enumerate(docs):  # one test transaction: give them distinct creation times
        db.execute(
            "update public.documents set created_at = now() + make_interval(secs => %s) where id = %s", (i, d)
        )
    seen, after = [], None
    while True:
        with act_as(db, None, "anon") as cur:
            page = cur.execute("select public.explore('item', 'newest', null, %s, 3)", (after,)).fetchone()[0]
        seen += [i["id"] for i in page["items"]]
        after = page["next"]
        if not page["hasMore"]:
            break
    assert seen == [str(d) for d in reversed(docs)]
    with act_as(db, None, "anon") as cur:
        top = cur.execute("select public.explore('item', 'most_forked', null, null, 1)").fetchone()[0]
        assert top["items"][0]["id"] == str(docs[2]) and top["hasMore"] is True
        found = cur.execute("select public.explore('item', 'newest', 'rare', null, 10)").fetchone()[0]
        assert [i["id"] for i in found["items"]] == [str(docs[3])] and found["hasMore"] is False
        assert sqlstate_of(cur, "select public.explore('item', 'random')") == "22023"


def test_abuse_reports_by_signed_in_users_read_only_by_service_role(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    pub = make_doc(alice, visibility="public")
    private = make_doc(alice)
    ins = (
        "insert into public.abuse_reports (document_id, reporter_id, reason, details)"
        " values (%s, %s, 'spam', 'x')"
    )
    with keep_as(db, bob) as cur:
        cur.execute(ins, (pub, bob))
    with act_as(db, bob) as cur:
        assert sqlstate_of(cur, ins, (private, bob)) == "42501"
    with act_as(db, bob) as cur:
        assert sqlstate_of(cur, "select * from public.abuse_reports") == "42501"
    with act_as(db, None, "anon") as cur:
        assert sqlstate_of(cur, ins, (pub, None)) == "42501"
    with act_as(db, None, "service_role") as cur:
        assert cur.execute(
            "select reporter_id, reason from public.abuse_reports where document_id = %s", (pub,)
        ).fetchall() == [(bob, "spam")]


def test_fork_counts_against_plan_limit(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    pub = make_doc(alice, visibility="public")
    db.execute(
        "update public.document_kind_limits set max_documents = 0 where kind = 'loop' and plan = 'free'"
    )
    with act_as(db, bob) as cur:
        assert sqlstate_of(cur, "select public.fork_document(%s)", (pub,)) == "PT403"
    assert db.execute("select fork_count from public.documents where id = %s", (pub,)).fetchone() == (0,)
    assert json  # keep import used
