"""Rows whose key columns the database maintains are created by the database only.

- share_links: token_hash (the unguessable token), owner and expiry come from
  create_share_link, never from a client INSERT;
- sync_conflicts: the server's copy comes from the document itself, never from
  the client; sync_push records conflicts through private.sync_record_conflict.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.helpers import act_as, keep_as

Conn = psycopg.Connection[Any]


def _document(db: Conn, owner: uuid.UUID, title: str = "Vinyl") -> uuid.UUID:
    with keep_as(db, owner) as cur:
        row = cur.execute(
            "insert into public.documents (kind, title, body) values ('folder', %s, %s) returning id",
            (title, json.dumps({"name": title})),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def test_clients_cannot_insert_share_links_even_for_their_own_document(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    owner = make_user()
    doc = _document(db, owner)
    for chosen in ("aaaa", "my-easy-token"):
        with act_as(db, owner) as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(
                "insert into public.share_links (document_id, owner_id, token_hash)"
                " values (%s, %s, sha256(%s::bytea))",
                (doc, owner, chosen),
            )
    assert db.execute(
        "select count(*) from public.share_links where document_id = %s", (doc,)
    ).fetchone() == (0,)


def test_create_share_link_still_creates_an_unguessable_link(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    owner, stranger = make_user(), make_user()
    doc = _document(db, owner)
    with keep_as(db, owner) as cur:
        link = cur.execute("select public.create_share_link(%s, 7)", (doc,)).fetchone()
    assert link is not None
    token = link[0]["token"]
    assert len(token) == 64 and token.isalnum()
    row = db.execute(
        "select owner_id, token_hash = sha256(convert_to(%s, 'UTF8')), expires_at > now() + interval '6 days'"
        " from public.share_links where id = %s",
        (token, link[0]["id"]),
    ).fetchone()
    assert row is not None and row[0] == owner and row[2]
    with act_as(db, None, role="anon") as cur:
        opened = cur.execute("select public.open_share(%s)", (token,)).fetchone()
    assert opened is not None and opened[0]["document"]["id"] == str(doc)
    # A stranger cannot share the owner's document; bad input changes nothing.
    for who, args, state in (
        (stranger, (doc, 7), "PT404"),
        (owner, (doc, 0), "22023"),
        (owner, (doc, 5000), "22023"),
    ):
        with act_as(db, who) as cur, pytest.raises(psycopg.Error) as caught:
            cur.execute("select public.create_share_link(%s, %s)", args)
        assert caught.value.sqlstate == state
    with act_as(db, None, role="anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select public.create_share_link(%s, 7)", (doc,))
    assert db.execute(
        "select count(*) from public.share_links where document_id = %s", (doc,)
    ).fetchone() == (1,)


def test_a_conflict_keeps_the_real_server_copy(db: Conn, make_user: Callable[..., uuid.UUID]) -> None:
    owner = make_user()
    doc = _document(db, owner, "Server title")
    db.execute("update public.documents set body = %s where id = %s", (json.dumps({"name": "Server"}), doc))
    version = db.execute("select version from public.documents where id = %s", (doc,)).fetchone()
    assert version is not None
    change = {
        "change_id": "laptop-1",
        "id": str(doc),
        "base_version": version[0] - 1,
        "title": "Client title",
        "body": {"name": "Client"},
    }
    with keep_as(db, owner) as cur:
        pushed = cur.execute("select public.sync_push(%s, 'manual')", (json.dumps([change]),)).fetchone()
    assert pushed is not None
    result = pushed[0]["results"][0]
    assert result["status"] == "needs_resolution"
    conflict = db.execute(
        "select server_version, server_title, server_body, client_title, client_body"
        " from public.sync_conflicts where id = %s",
        (result["conflict_id"],),
    ).fetchone()
    assert conflict == (version[0], "Server title", {"name": "Server"}, "Client title", {"name": "Client"})


def test_recording_a_conflict_checks_the_document_and_the_body(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    owner, stranger = make_user(), make_user()
    doc = _document(db, owner)
    call = "select private.sync_record_conflict(%s, 'c1', 'manual', 1, 't', %s, false)"
    cases = [
        (stranger, doc, {"name": "x"}, "PT404"),  # someone else's document
        (stranger, uuid.uuid4(), {"name": "x"}, "PT404"),  # the same answer for an unused id
        (owner, doc, {"name": ""}, "22023"),  # the folder validator refuses the body
        (owner, doc, {"name": "x"}, None),
    ]
    for who, document, body, state in cases:
        with act_as(db, who) as cur:
            if state is None:
                assert cur.execute(call, (document, json.dumps(body))).fetchone() is not None
                continue
            with pytest.raises(psycopg.Error) as caught:
                cur.execute(call, (document, json.dumps(body)))
            assert caught.value.sqlstate == state
    with act_as(db, None, role="anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(call, (doc, json.dumps({"name": "x"})))
    assert db.execute(
        "select count(*) from public.sync_conflicts where document_id = %s", (doc,)
    ).fetchone() == (0,)
