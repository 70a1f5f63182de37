"""One scenario per app, end to end through the RPCs and RLS, like the frontends use them."""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tests.helpers import act_as, create_user, keep_as
from tests.library.bodies import committed, folder_body, item_body, loop_body, settle, song_body


def test_music_sketchpad(db, make_user):
    """Anonymous user makes loops and a song, imports a local library, shares a loop.

    A friend opens the link and forks the loop.
    """
    maker = make_user(anonymous=True)
    friend = make_user(email="friend@example.test")
    with keep_as(db, maker) as cur:
        ins = "insert into public.documents (kind, title, body) values (%s, %s, %s) returning id"
        bass = cur.execute(ins, ("loop", "Bass", json.dumps(loop_body("Bass", 2, "#112233")))).fetchone()[0]
        drums = cur.execute(ins, ("loop", "Drums", json.dumps(loop_body("Drums", 1, "#AABBCC")))).fetchone()[
            0
        ]
        cur.execute(ins, ("song", "Jam", json.dumps(song_body([str(bass), str(drums)], bpm=96))))
        imported = cur.execute(
            "select public.import_local(%s)",
            (
                json.dumps(
                    {
                        "loop": [{"local_id": "local-1", "title": "Old riff", "body": loop_body("Old riff")}],
                        "song": [
                            {"local_id": "local-s", "title": "Old song", "body": song_body(["local-1"])}
                        ],
                    }
                ),
            ),
        ).fetchone()[0]
        link = cur.execute("select public.create_share_link(%s, 7)", (bass,)).fetchone()[0]
    assert (imported["created"], imported["failed"]) == (2, 0)
    old_song = db.execute(
        "select body->'timeline'->0->>'loop_id' from public.documents where id = %s",
        (imported["mapping"]["song"]["local-s"],),
    ).fetchone()[0]
    assert old_song == imported["mapping"]["loop"]["local-1"]

    with act_as(db, friend) as cur:  # a private loop is invisible without the link
        assert cur.execute("select count(*) from public.documents where id = %s", (bass,)).fetchone() == (0,)
    with keep_as(db, friend) as cur:
        opened = cur.execute("select public.open_share(%s)", (link["token"],)).fetchone()[0]
        fork = cur.execute("select to_jsonb(public.fork_document(%s, %s))", (bass, link["token"])).fetchone()[
            0
        ]
    # The maker chose no username: the link shows the loop, not who made it.
    assert opened["document"]["body"]["name"] == "Bass" and opened["owner"]["id"] is None
    assert fork["forked_from"] == str(bass) and fork["owner_id"] == str(friend)
    assert db.execute(
        "select view_count, fork_count from public.documents where id = %s", (bass,)
    ).fetchone() == (1, 1)


@pytest.fixture
def conn(clone_url: str) -> Any:
    with psycopg.connect(clone_url) as c:
        yield c


def test_collection_tracker(conn):
    """Folders and items, offline edits on two devices, conflict kept and resolved.

    Then search finds the item by a word in its notes.
    """
    user = create_user(conn)
    conn.commit()
    folder, item = str(uuid.uuid4()), str(uuid.uuid4())
    first = committed(
        conn,
        user,
        "select public.sync_push(%s)",
        (
            json.dumps(
                [
                    {"change_id": "laptop-1", "id": folder, "kind": "folder", "body": folder_body("Jazz")},
                    {
                        "change_id": "laptop-2",
                        "id": item,
                        "kind": "item",
                        "body": item_body("Blue Train", folder_id=folder, notes="bought at a flea market"),
                    },
                ]
            ),
        ),
    )
    assert [r["status"] for r in first["results"]] == ["applied", "applied"]

    # both devices are in sync at version 1, then go offline and edit the same item
    settle(conn)
    laptop = committed(conn, user, "select public.sync_pull(null, 100)")
    phone = committed(conn, user, "select public.sync_pull(null, 100)")
    assert (
        {c["id"]: c["version"] for c in laptop["changes"]}
        == {folder: 1, item: 1}
        == {c["id"]: c["version"] for c in phone["changes"]}
    )
    a = committed(
        conn,
        user,
        "select public.sync_push(%s)",
        (
            json.dumps(
                [
                    {
                        "change_id": "phone-7",
                        "id": item,
                        "base_version": 1,
                        "body": item_body("Blue Train", folder_id=folder, notes="mono pressing, flea market"),
                    }
                ]
            ),
        ),
    )
    b = committed(
        conn,
        user,
        "select public.sync_push(%s)",
        (
            json.dumps(
                [
                    {
                        "change_id": "laptop-9",
                        "id": item,
                        "base_version": 1,
                        "body": item_body(
                            "Blue Train (1957)", folder_id=folder, notes="bought at a flea market"
                        ),
                    }
                ]
            ),
        ),
    )
    assert a["results"][0]["status"] == "applied"
    conflict = b["results"][0]
    assert conflict["status"] == "conflict" and conflict["server"]["version"] == 2
    kept = conn.execute(
        "select client_body->>'name' from public.sync_conflicts where id = %s", (conflict["conflict_id"],)
    ).fetchone()
    assert kept == ("Blue Train (1957)",)  # nothing lost

    # the laptop pulls the phone's edit, merges, resolves
    settle(conn)
    delta = committed(conn, user, "select public.sync_pull(%s, 100)", (laptop["cursor"],))
    assert [(c["id"], c["version"]) for c in delta["changes"]] == [(item, 2)]
    merged = committed(
        conn,
        user,
        "select to_jsonb(public.resolve_conflict(%s, 'merged', %s))",
        (
            conflict["conflict_id"],
            json.dumps(item_body("Blue Train (1957)", folder_id=folder, notes="mono pressing, flea market")),
        ),
    )
    assert merged["version"] == 3
    assert conn.execute(
        "select status from public.sync_conflicts where id = %s", (conflict["conflict_id"],)
    ).fetchone() == ("resolved",)

    found = committed(
        conn,
        user,
        "select coalesce(json_agg(id), '[]') from public.documents"
        " where search @@ websearch_to_tsquery('simple', 'mono')",
    )
    assert found == [item]


def test_listening_companion(db, make_user):
    """Client-side encrypted backup upload, a stale upload rejected, an older version restored."""
    user = make_user()
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(b"correct horse battery staple")
    kdf = json.dumps(
        {"algorithm": "scrypt", "salt": base64.b64encode(salt).decode(), "n": 16384, "r": 8, "p": 1}
    )

    def seal(state: dict[str, Any]) -> tuple[str, str]:
        nonce = os.urandom(12)
        ct = AESGCM(key).encrypt(nonce, json.dumps(state).encode(), None)
        return base64.b64encode(ct).decode(), base64.b64encode(nonce).decode()

    up = "select public.upload_backup(%s, %s, %s, %s)"
    with keep_as(db, user) as cur:
        v1 = cur.execute(up, (*seal({"sessions": ["monday"]}), kdf, 0)).fetchone()[0]
        v2 = cur.execute(up, (*seal({"sessions": ["monday", "tuesday"]}), kdf, 1)).fetchone()[0]
    assert (v1["version"], v2["version"]) == (1, 2)
    stored = db.execute(
        "select ciphertext from public.backups where owner_id = %s and version = 2", (user,)
    ).fetchone()[0]
    assert b"tuesday" not in bytes(stored)  # the server only ever holds ciphertext

    with (
        act_as(db, user) as cur,
        pytest.raises(psycopg.Error) as exc,
    ):  # a device that still thinks v1 is latest
        cur.execute(up, (*seal({"sessions": ["stale"]}), kdf, 1))
    assert exc.value.sqlstate == "PT409"

    with keep_as(db, user) as cur:
        restored = cur.execute("select public.restore_backup(1, 2)").fetchone()[0]
        latest = cur.execute("select public.get_backup()").fetchone()[0]
    assert restored["version"] == 3 and latest["restored_from"] == 1
    plain = AESGCM(key).decrypt(
        base64.b64decode(latest["nonce"]), base64.b64decode(latest["ciphertext"]), None
    )
    assert json.loads(plain) == {"sessions": ["monday"]}
