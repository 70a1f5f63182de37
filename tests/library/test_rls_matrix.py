"""RLS matrix: every library table and RPC x owner / other user / anon / service role, each cell asserted.

Outcomes: "rows" (the statement saw or changed the row), "none" (silently filtered
by RLS: zero rows), "ok" (RPC succeeded) or the SQLSTATE it failed with.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import loop_body

ACTORS = ("owner", "other", "anon", "service")
D = "42501"


@pytest.fixture
def world(db, make_user, make_doc) -> dict[str, Any]:
    alice, bob = make_user(), make_user()
    db.execute("update public.profiles set username = 'bobby' where id = %s", (bob,))
    doc = make_doc(alice)  # private
    bob_public = make_doc(bob, visibility="public")
    bob_public2 = make_doc(bob, visibility="public")
    with keep_as(db, alice) as cur:
        link = cur.execute("select public.create_share_link(%s)", (doc,)).fetchone()[0]
        cur.execute(
            'select public.upload_backup(%s, %s, \'{"algorithm": "argon2id"}\', 0)',
            (base64.b64encode(b"c").decode(), base64.b64encode(os.urandom(12)).decode()),
        )
        cur.execute(
            "insert into public.abuse_reports (document_id, reporter_id, reason) values (%s, %s, 'spam')",
            (bob_public, alice),
        )
    conflict = db.execute(
        "insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, server_version,"
        " server_title, server_body) values (%s, %s, 'x', 'server_wins', 1, 't', '{}') returning id",
        (alice, doc),
    ).fetchone()[0]
    db.execute(
        "insert into public.sync_receipts (owner_id, change_id, result) values (%s, 'c1', '{}')", (alice,)
    )
    db.execute("insert into storage.buckets (id, name) values ('samples', 'samples') on conflict do nothing")
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id) values ('samples', %s, %s)",
        (f"{alice}/a.wav", str(alice)),
    )
    db.execute(
        'create policy "test owners read objects" on storage.objects for select to authenticated'
        " using (owner_id = (select auth.uid())::text)"
    )
    return {
        "alice": alice,
        "bob": bob,
        "doc": doc,
        "bob_public": bob_public,
        "bob_public2": bob_public2,
        "link": link,
        "conflict": conflict,
    }


def run(db, w: dict[str, Any], actor: str, query: str, params: dict[str, Any], *, rpc: bool = False) -> str:
    user, role = {
        "owner": (w["alice"], "authenticated"),
        "other": (w["bob"], "authenticated"),
        "anon": (None, "anon"),
        "service": (None, "service_role"),
    }[actor]
    with act_as(db, user, role) as cur:
        try:
            cur.execute(query, params)
        except Exception as exc:
            return getattr(exc, "sqlstate", "error")
        if rpc:
            return "ok"
        if query.lstrip().startswith("select"):
            return "rows" if cur.fetchone()[0] > 0 else "none"
        return "rows" if cur.rowcount > 0 else "none"


TABLES: dict[str, dict[str, tuple[str, tuple[str, str, str, str]]]] = {
    "documents": {
        "select": (
            "select count(*) from public.documents where id = %(doc)s",
            ("rows", "none", "none", "rows"),
        ),
        "insert": (
            "insert into public.documents (owner_id, kind, body) values (%(alice)s, 'loop', %(loop)s)",
            ("rows", D, D, "rows"),
        ),
        "update": ("update public.documents set title = 'x' where id = %(doc)s", ("rows", "none", D, "rows")),
        "delete": ("delete from public.documents where id = %(doc)s", (D, D, D, "rows")),
    },
    "documents (public row)": {
        "select": (
            "select count(*) from public.documents where id = %(bob_public)s",
            ("rows", "rows", "rows", "rows"),
        ),
        "insert": (
            "insert into public.documents (owner_id, kind, body, visibility)"
            " values (%(bob)s, 'loop', %(loop)s, 'public')",
            (D, "rows", D, "rows"),
        ),
        "update": (
            "update public.documents set title = 'x' where id = %(bob_public)s",
            ("none", "rows", D, "rows"),
        ),
        "delete": ("delete from public.documents where id = %(bob_public)s", (D, D, D, "rows")),
    },
    "document_kinds": {
        "select": (
            "select count(*) from public.document_kinds where id = 'loop'",
            ("rows", "rows", "rows", "rows"),
        ),
        "insert": ("insert into public.document_kinds (id) values ('zz_kind')", (D, D, D, "rows")),
        "update": ("update public.document_kinds set description = 'x' where id = 'loop'", (D, D, D, "rows")),
        "delete": ("delete from public.document_kinds where id = 'song'", (D, D, D, "rows")),
    },
    "document_kind_limits": {
        "select": (
            "select count(*) from public.document_kind_limits where kind = 'loop'",
            ("rows", "rows", "rows", "rows"),
        ),
        "insert": ("insert into public.document_kind_limits values ('item', 'free', 5)", (D, D, D, "rows")),
        "update": (
            "update public.document_kind_limits set max_documents = 1 where kind = 'loop'",
            (D, D, D, "rows"),
        ),
        "delete": ("delete from public.document_kind_limits where kind = 'loop'", (D, D, D, "rows")),
    },
    "sync_conflicts": {
        "select": (
            "select count(*) from public.sync_conflicts where id = %(conflict)s",
            ("rows", "none", D, "rows"),
        ),
        "insert": (
            "insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, server_version,"
            " server_title, server_body) values (%(alice)s, %(doc)s, 'y', 'manual', 1, 't', '{}')",
            (D, D, D, "rows"),  # recorded by sync_push only (private.sync_record_conflict)
        ),
        "update": (
            "update public.sync_conflicts set status = 'resolved', resolution = 'keep_theirs',"
            " resolved_at = now() where id = %(conflict)s",
            ("rows", "none", D, "rows"),
        ),
        "delete": ("delete from public.sync_conflicts where id = %(conflict)s", (D, D, D, "rows")),
    },
    "sync_receipts": {
        "select": (
            "select count(*) from public.sync_receipts where owner_id = %(alice)s",
            ("rows", "none", D, "rows"),
        ),
        "insert": (
            "insert into public.sync_receipts (owner_id, change_id, result) values (%(alice)s, 'c2', '{}')",
            ("rows", D, D, "rows"),
        ),
        "update": (
            "update public.sync_receipts set result = '{}' where owner_id = %(alice)s",
            (D, D, D, "rows"),
        ),
        "delete": ("delete from public.sync_receipts where owner_id = %(alice)s", (D, D, D, "rows")),
    },
    "share_links": {
        "select": (
            "select count(id) from public.share_links where document_id = %(doc)s",
            ("rows", "none", D, "rows"),
        ),
        "insert": (
            "insert into public.share_links (document_id, owner_id, token_hash)"
            " values (%(doc)s, %(actor_id)s, sha256(gen_random_uuid()::text::bytea))",
            (D, D, D, "rows"),  # created by create_share_link only
        ),
        "update": (
            "update public.share_links set revoked_at = now() where document_id = %(doc)s",
            ("rows", "none", D, "rows"),
        ),
        "delete": ("delete from public.share_links where document_id = %(doc)s", (D, D, D, "rows")),
    },
    "abuse_reports": {
        "select": (
            "select count(*) from public.abuse_reports where document_id = %(bob_public)s",
            (D, D, D, "rows"),
        ),
        "insert": (
            "insert into public.abuse_reports (document_id, reporter_id, reason)"
            " values (%(bob_public2)s, %(alice)s, 'other')",
            ("rows", D, D, "rows"),
        ),
        "update": (
            "update public.abuse_reports set status = 'reviewed' where document_id = %(bob_public)s",
            (D, D, D, "rows"),
        ),
        "delete": ("delete from public.abuse_reports where document_id = %(bob_public)s", (D, D, D, "rows")),
    },
    "backups": {
        "select": (
            "select count(*) from public.backups where owner_id = %(alice)s",
            ("rows", "none", D, "rows"),
        ),
        "insert": (
            "insert into public.backups (owner_id, version, ciphertext, nonce, kdf)"
            " values (%(alice)s, 9, '\\x01', '\\x0102030405060708', '{}')",
            (D, D, D, "rows"),
        ),
        "update": ("update public.backups set kdf = '{}' where owner_id = %(alice)s", (D, D, D, "rows")),
        "delete": ("delete from public.backups where owner_id = %(alice)s", (D, D, D, "rows")),
    },
}

CELLS = [(t, op, i) for t, ops in TABLES.items() for op in ops for i in range(4)]


@pytest.mark.parametrize(
    ("table", "op", "actor_index"), CELLS, ids=[f"{t}-{op}-{ACTORS[i]}" for t, op, i in CELLS]
)
def test_table_matrix(db, world, table, op, actor_index):
    query, expected = TABLES[table][op]
    actor = ACTORS[actor_index]
    actor_id = {"owner": world["alice"], "other": world["bob"], "service": world["alice"]}.get(actor)
    params = {**world, "loop": json.dumps(loop_body()), "actor_id": actor_id}
    assert run(db, world, actor, query, params) == expected[actor_index]


RPCS: dict[str, tuple[str, tuple[str, str, str, str]]] = {
    "sync_pull": ("select public.sync_pull(null, 10)", ("ok", "ok", D, D)),
    "sync_push": ("select public.sync_push('[]')", ("ok", "ok", D, D)),
    "resolve_conflict": (
        "select public.resolve_conflict(%(conflict)s, 'keep_theirs')",
        ("ok", "PT404", D, D),
    ),
    "import_local": ("select public.import_local('{}')", ("ok", "ok", D, D)),
    "delete_document": ("select public.delete_document(%(doc)s)", ("ok", "PT404", D, "PT404")),
    "link_document_file": (
        "select public.link_document_file(%(doc)s, 'samples', %(object)s)",
        ("ok", "PT404", D, "PT404"),
    ),
    "create_share_link": ("select public.create_share_link(%(doc)s)", ("ok", "PT404", D, D)),
    "revoke_share_link": ("select public.revoke_share_link(%(link_id)s)", ("ok", "PT404", D, D)),
    "open_share": ("select public.open_share(%(token)s)", ("ok", "ok", "ok", "ok")),
    "fork_document": ("select public.fork_document(%(bob_public)s)", ("ok", "ok", D, D)),
    "public_profile": ("select public.public_profile('bobby')", ("ok", "ok", "ok", "ok")),
    "explore": ("select public.explore('loop')", ("ok", "ok", "ok", "ok")),
    "upload_backup": (
        "select public.upload_backup('Yw==', 'AAAAAAAAAAAAAAAA', '{}', %(if_version)s)",
        ("ok", "ok", D, D),
    ),
    "get_backup": ("select public.get_backup()", ("ok", "PT404", D, D)),
    "restore_backup": ("select public.restore_backup(1, 1)", ("ok", "PT404", D, D)),
}

RPC_CELLS = [(r, i) for r in RPCS for i in range(4)]


@pytest.mark.parametrize(("rpc", "actor_index"), RPC_CELLS, ids=[f"{r}-{ACTORS[i]}" for r, i in RPC_CELLS])
def test_rpc_matrix(db, world, rpc, actor_index):
    query, expected = RPCS[rpc]
    actor = ACTORS[actor_index]
    params = {
        **world,
        "object": f"{world['alice']}/a.wav",
        "link_id": world["link"]["id"],
        "token": world["link"]["token"],
        "if_version": 1 if actor == "owner" else 0,
    }
    assert run(db, world, actor, query, params, rpc=True) == expected[actor_index]


def test_every_library_table_and_rpc_is_in_the_matrix(db):
    tables = {
        r[0]
        for r in db.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind = 'r' and c.relname = any(%s)",
            (
                [
                    "documents",
                    "document_kinds",
                    "document_kind_limits",
                    "sync_conflicts",
                    "sync_receipts",
                    "share_links",
                    "abuse_reports",
                    "backups",
                ],
            ),
        )
    }
    assert tables == {t.split(" ")[0] for t in TABLES}
    for table in tables:
        assert db.execute(
            "select relrowsecurity from pg_class where oid = %s::regclass", (f"public.{table}",)
        ).fetchone() == (True,)
    assert uuid  # imported for fixtures' ids
