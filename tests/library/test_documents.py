"""Document kinds, validators, versions, tombstones, plan limits and search."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, create_user, keep_as
from tests.library.bodies import folder_body, item_body, loop_body, song_body, sqlstate_of

INSERT = "insert into public.documents (kind, title, body, visibility) values (%s, %s, %s, %s) returning id"


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("loop", {**loop_body(), "name": ""}, "loop name must be a string of 1-100 characters"),
        ("loop", {**loop_body(), "name": "x" * 101}, "loop name"),
        ("loop", {**loop_body(), "bars": 3}, "loop bars must be 1, 2, 4 or 8"),
        ("loop", {**loop_body(), "color": "red"}, "loop color must look like #RRGGBB"),
        ("loop", {**loop_body(), "chords": "C G"}, "loop chords must be an array"),
        ("loop", {**loop_body(), "icons": {"a": 1}}, "loop icons must be an array"),
        ("song", {**song_body([]), "bpm": 10}, "song bpm must be a number from 20 to 300"),
        ("song", {**song_body([]), "time_signature": "5/4"}, "time_signature"),
        ("song", {**song_body([]), "timeline": [{"loop_id": "nope"}]}, "reference a loop"),
        ("folder", {"name": 5}, "folder name"),
        ("item", {"name": "x", "folder_id": "nope"}, "item folder_id must be a folder id"),
        ("item", {"name": "x", "notes": "n" * 10001}, "item notes"),
        ("widget", {}, "unknown document kind: widget"),
    ],
)
def test_validators_reject_bad_bodies_with_clear_message(db, make_user, kind, body, message):
    alice = make_user()
    with act_as(db, alice) as cur:
        with pytest.raises(Exception) as exc:
            cur.execute(INSERT, (kind, "t", json.dumps(body), "private"))
        assert message in str(exc.value)
        assert exc.value.sqlstate in ("22023", "23503")  # type: ignore[attr-defined]
    assert db.execute("select count(*) from public.documents where owner_id = %s", (alice,)).fetchone() == (
        0,
    )


def test_valid_bodies_of_every_shipped_kind_are_stored(db, make_user, make_doc):
    alice = make_user()
    loop = make_doc(alice, "loop", loop_body())
    make_doc(alice, "song", song_body([str(loop)]))
    folder = make_doc(alice, "folder", folder_body())
    make_doc(alice, "item", item_body(folder_id=str(folder)))
    kinds = db.execute(
        "select array_agg(kind order by kind) from public.documents where owner_id = %s", (alice,)
    ).fetchone()
    assert kinds == (["folder", "item", "loop", "song"],)


def test_body_size_limit_per_kind(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur:
        with pytest.raises(Exception) as exc:
            cur.execute(INSERT, ("folder", "t", json.dumps({"name": "x", "pad": "y" * 9000}), "private"))
        assert "document body too large" in str(exc.value)


def test_version_increments_on_change_not_on_counter_bump(db, make_user, make_doc):
    alice = make_user()
    doc = make_doc(alice)
    with act_as(db, alice) as cur:
        cur.execute("update public.documents set title = 'new' where id = %s", (doc,))
        cur.execute("update public.documents set body = %s where id = %s", (json.dumps(loop_body("B")), doc))
        assert cur.execute("select version from public.documents where id = %s", (doc,)).fetchone() == (3,)
    db.execute("update public.documents set view_count = view_count + 5 where id = %s", (doc,))
    assert db.execute(
        "select version, view_count from public.documents where id = %s", (doc,)
    ).fetchone() == (1, 5)


def test_owner_cannot_write_counters_version_or_owner(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    doc = make_doc(alice, visibility="public")
    for column, value in [
        ("fork_count", 99),
        ("view_count", 99),
        ("version", 99),
        ("owner_id", str(bob)),
        ("forked_from", str(doc)),
    ]:
        with act_as(db, alice) as cur:
            assert (
                sqlstate_of(cur, f"update public.documents set {column} = %s where id = %s", (value, doc))
                == "42501"
            )
    assert db.execute(
        "select fork_count, view_count, version, owner_id from public.documents where id = %s", (doc,)
    ).fetchone() == (0, 0, 1, alice)


def test_tombstone_delete_keeps_row_for_owner_hides_from_public(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    doc = make_doc(alice, visibility="public")
    with keep_as(db, alice) as cur:
        cur.execute("select public.delete_document(%s)", (doc,))
    with act_as(db, alice) as cur:
        assert cur.execute(
            "select deleted_at is not null, version from public.documents where id = %s", (doc,)
        ).fetchone() == (True, 2)
        assert sqlstate_of(cur, "select public.delete_document(%s)", (doc,)) == "PT404"
    with act_as(db, bob) as cur:
        assert cur.execute("select id from public.documents where id = %s", (doc,)).fetchall() == []


def test_kind_that_disallows_public_rejects_public_visibility(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur:
        with pytest.raises(Exception) as exc:
            cur.execute(INSERT, ("folder", "t", json.dumps(folder_body()), "public"))
        assert "documents of kind folder cannot be public" in str(exc.value)


def test_plan_limit_per_kind_enforced_with_clear_error(db, make_user, make_doc):
    alice = make_user()
    db.execute(
        "update public.document_kind_limits set max_documents = 2 where kind = 'loop' and plan = 'free'"
    )
    make_doc(alice)
    make_doc(alice)
    with act_as(db, alice) as cur:
        with pytest.raises(Exception) as exc:
            cur.execute(INSERT, ("loop", "t", json.dumps(loop_body()), "private"))
        assert exc.value.sqlstate == "PT403"  # type: ignore[attr-defined]
        assert "plan limit reached: at most 2 documents of kind loop" in str(exc.value)
    # a tombstoned document frees its slot
    with act_as(db, alice) as cur:
        doc = cur.execute("select id from public.documents where owner_id = %s limit 1", (alice,)).fetchone()[
            0
        ]
        cur.execute("select public.delete_document(%s)", (doc,))
        cur.execute(INSERT, ("loop", "t", json.dumps(loop_body()), "private"))
    # the pro plan's row applies after an upgrade
    db.execute("update public.profiles set plan = 'pro' where id = %s", (alice,))
    with act_as(db, alice) as cur:
        cur.execute(INSERT, ("loop", "t", json.dumps(loop_body()), "private"))


def test_full_text_search_over_title_and_body(db, make_user, make_doc):
    alice = make_user()
    hit = make_doc(alice, "item", item_body("Kind of Blue", notes="first pressing with gatefold sleeve"))
    make_doc(alice, "item", item_body("Giant Steps", notes="reissue"))
    with act_as(db, alice) as cur:
        rows = cur.execute(
            "select id from public.documents where search @@ websearch_to_tsquery('simple', %s)",
            ("gatefold",),
        ).fetchall()
        assert rows == [(hit,)]
    assert db.execute(
        "select indexdef like '%%USING gin (search)%%' from pg_indexes"
        " where indexname = 'documents_search_idx'"
    ).fetchone() == (True,)


def test_link_document_file_records_file_link(db, make_user, make_doc):
    alice, bob = make_user(), make_user()
    doc = make_doc(alice)
    db.execute("insert into storage.buckets (id, name) values ('samples', 'samples') on conflict do nothing")
    # The files module owns storage policies; stand in for its "owners read their objects".
    db.execute(
        'create policy "test owners read objects" on storage.objects for select to authenticated'
        " using (owner_id = (select auth.uid())::text)"
    )
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id) values ('samples', %s, %s)",
        (f"{alice}/kick.wav", str(alice)),
    )
    with keep_as(db, alice) as cur:
        cur.execute("select public.link_document_file(%s, 'samples', %s)", (doc, f"{alice}/kick.wav"))
    assert db.execute(
        "select owner_id, ref_kind from public.file_links where ref_id = %s", (doc,)
    ).fetchone() == (alice, "document")
    with act_as(db, bob) as cur:
        assert (
            sqlstate_of(
                cur, "select public.link_document_file(%s, 'samples', %s)", (doc, f"{alice}/kick.wav")
            )
            == "PT404"
        )


def test_plan_limit_exact_under_concurrent_inserts(clone_url):
    """Two transactions race for the last slot: the second waits for the first and is refused."""
    with psycopg.connect(clone_url, autocommit=True) as admin:
        admin.execute(
            "update public.document_kind_limits set max_documents = 1 where kind = 'loop' and plan = 'free'"
        )
        uid = create_user(admin)
    claims = json.dumps({"sub": str(uid), "role": "authenticated"})
    results: list[str | None] = []

    def insert(conn: psycopg.Connection[Any], commit_after: float) -> None:
        try:
            conn.execute("set role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, false)", (claims,))
            conn.execute(INSERT, ("loop", "t", json.dumps(loop_body()), "private"))
            time.sleep(commit_after)
            conn.commit()
            results.append(None)
        except psycopg.Error as exc:
            conn.rollback()
            results.append(exc.sqlstate)

    with psycopg.connect(clone_url) as a, psycopg.connect(clone_url) as b:
        first = threading.Thread(target=insert, args=(a, 0.5))
        first.start()
        time.sleep(0.2)  # a holds the (user, kind) lock and has not committed
        insert(b, 0)
        first.join()
    assert sorted(results, key=str) == [None, "PT403"]
    with psycopg.connect(clone_url) as c:
        assert c.execute("select count(*) from public.documents where owner_id = %s", (uid,)).fetchone() == (
            1,
        )
