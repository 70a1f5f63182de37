"""Holes found in the security review, each proven closed (the exploit now fails, normal use works)."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import loop_body, sqlstate_of
from tests.library.test_backups import KDF, b64, upload


def _set_loop_limit(db, limit: int) -> None:
    db.execute(
        "insert into public.document_kind_limits (kind, plan, max_documents) values ('loop', 'free', %s)"
        " on conflict (kind, plan) do update set max_documents = excluded.max_documents",
        (limit,),
    )


def test_reviving_tombstoned_documents_respects_the_plan_limit(db, make_user, make_doc):
    _set_loop_limit(db, 2)
    alice = make_user()
    first = [make_doc(alice) for _ in range(2)]
    with keep_as(db, alice) as cur:
        cur.execute("update public.documents set deleted_at = now() where id = any(%s)", (first,))
    [make_doc(alice) for _ in range(2)]  # the slots freed by the tombstones
    with act_as(db, alice) as cur:
        state = sqlstate_of(cur, "update public.documents set deleted_at = null where id = any(%s)", (first,))
    assert state == "PT403"
    live = db.execute(
        "select count(*) from public.documents where owner_id = %s and deleted_at is null", (alice,)
    ).fetchone()
    assert live == (2,)
    # Reviving within the limit still works.
    with keep_as(db, alice) as cur:
        cur.execute(
            "update public.documents set deleted_at = now() where owner_id = %s and id <> all(%s)",
            (alice, first),
        )
        cur.execute("update public.documents set deleted_at = null where id = %s", (first[0],))
        assert cur.rowcount == 1


def test_a_user_cannot_store_or_prune_someone_elses_backup(db, make_user):
    alice, mallory = make_user(), make_user()
    upload(db, alice, b"alice-cipher", 0)
    with act_as(db, mallory) as cur:
        state = sqlstate_of(cur, "select private.backup_store(%s, 'junk', 'nonce', '{}', 1, null)", (alice,))
    assert state == "42501"
    versions = db.execute("select version from public.backups where owner_id = %s", (alice,)).fetchall()
    assert versions == [(1,)]
    # The owner's own path is unchanged.
    with keep_as(db, mallory) as cur:
        cur.execute("select public.upload_backup(%s, %s, %s, 0)", (b64(b"m"), b64(b"n" * 24), KDF))


@pytest.mark.parametrize("query", ["select private.plan_of(%s)", "select private.document_limit(%s, 'loop')"])
def test_plan_helpers_answer_only_for_the_caller(db, make_user, query):
    alice, bob = make_user(), make_user()
    with act_as(db, bob) as cur:
        assert sqlstate_of(cur, query, (alice,)) == "42501"
    with act_as(db, alice) as cur:
        assert sqlstate_of(cur, query, (alice,)) is None


def test_forking_and_deleting_in_a_loop_counts_one_fork(db, make_user, make_doc):
    owner, fan = make_user(), make_user()
    source = make_doc(owner, visibility="public")
    with keep_as(db, fan) as cur:
        for _ in range(5):
            fork = cur.execute("select (public.fork_document(%s)).id", (source,)).fetchone()[0]
            cur.execute("select public.delete_document(%s)", (fork,))
    assert db.execute("select fork_count from public.documents where id = %s", (source,)).fetchone() == (1,)
    with keep_as(db, make_user()) as cur:
        cur.execute("select public.fork_document(%s)", (source,))
    assert db.execute("select fork_count from public.documents where id = %s", (source,)).fetchone() == (2,)


def test_import_still_limited_per_hour_through_the_self_only_helper(db, make_user):
    db.execute("update public.plans set imports_per_hour = 1 where id = 'free'")
    alice = make_user()
    library = json.dumps({"loop": [{"local_id": "l1", "title": "a", "body": loop_body()}]})
    with keep_as(db, alice) as cur:
        cur.execute("select public.import_local(%s)", (library,))
    with act_as(db, alice) as cur, pytest.raises(psycopg.Error) as info:
        cur.execute("select public.import_local(%s)", (library,))
    assert info.value.sqlstate == "PT429"
