"""The signed-in select policy on documents (migration 20261125080500): exactly who sees which row.

The policy is a CASE rather than an OR (cheaper to plan); these tests pin its
truth table so the two shapes can never drift apart: every combination of
owner / stranger / signed-in without a user id / anon / service_role against
private, unlisted, public, and tombstoned public documents.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.helpers import act_as, keep_as


@pytest.fixture
def docs(db, make_user, make_doc) -> dict[str, Any]:
    alice, bob = make_user(), make_user()
    made = {
        "private": make_doc(alice),
        "unlisted": make_doc(alice, visibility="unlisted"),
        "public": make_doc(alice, visibility="public"),
        "deleted_private": make_doc(alice),
        "deleted_public": make_doc(alice, visibility="public"),
    }
    with keep_as(db, alice) as cur:
        for name in ("deleted_private", "deleted_public"):
            cur.execute("select public.delete_document(%s)", (made[name],))
    return {"alice": alice, "bob": bob, **made}


ALL = {"private", "unlisted", "public", "deleted_private", "deleted_public"}


def visible(db, docs: dict[str, Any], user: uuid.UUID | None, role: str, **kw: Any) -> set[str]:
    ids = {docs[name]: name for name in ALL}
    with act_as(db, user, role, **kw) as cur:
        rows = cur.execute("select id from public.documents where id = any(%s)", (list(ids),)).fetchall()
    return {ids[r[0]] for r in rows}


def test_owner_sees_all_own_documents_including_tombstones(db, docs):
    assert visible(db, docs, docs["alice"], "authenticated") == ALL


def test_stranger_sees_only_public_live_documents(db, docs):
    assert visible(db, docs, docs["bob"], "authenticated") == {"public"}


def test_signed_in_role_without_user_id_sees_only_public_live_documents(db, docs):
    # authenticated but no "sub" claim: auth.uid() is null, the CASE falls through to the public test
    assert visible(db, docs, None, "authenticated") == {"public"}


def test_anon_sees_only_public_live_and_service_role_sees_everything(db, docs):
    assert visible(db, docs, None, "anon") == {"public"}
    assert visible(db, docs, None, "service_role") == ALL


def test_stranger_cannot_update_a_public_document_it_can_read(db, docs):
    with act_as(db, docs["bob"]) as cur:
        cur.execute("update public.documents set title = 'x' where id = %s", (docs["public"],))
        assert cur.rowcount == 0
    assert db.execute("select title from public.documents where id = %s", (docs["public"],)).fetchone() == (
        "t",
    )


def test_policy_is_the_case_shape_with_an_initplan(db):
    expr = db.execute(
        "select pg_get_expr(polqual, polrelid) from pg_policy"
        " where polrelid = 'public.documents'::regclass and polname = %s",
        ("users read their own and public documents",),
    ).fetchone()[0]
    assert expr.strip().lower().startswith("case") and "select auth.uid()" in expr.lower(), expr
