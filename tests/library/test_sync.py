"""sync_pull / sync_push: cursor never skips late commits, conflicts keep both sides, retries apply once."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, create_user
from tests.library.bodies import committed, item_body, loop_body, settle

PULL = "select public.sync_pull(%s, %s)"
PUSH = "select public.sync_push(%s, %s)"


@pytest.fixture
def conn(clone_url: str) -> Any:
    with psycopg.connect(clone_url) as c:
        yield c


@pytest.fixture
def user(conn: psycopg.Connection[Any]) -> uuid.UUID:
    uid = create_user(conn)
    conn.commit()
    return uid


def insert_doc(conn: psycopg.Connection[Any], user: uuid.UUID, title: str = "t") -> str:
    return str(
        committed(
            conn,
            user,
            "insert into public.documents (kind, title, body) values ('loop', %s, %s) returning id",
            (title, json.dumps(loop_body())),
        )
    )


def pull_all(
    conn: psycopg.Connection[Any], user: uuid.UUID, cursor: str | None, limit: int = 500, wait: bool = True
) -> Any:
    changes: list[dict[str, Any]] = []
    if wait:
        settle(conn)
    while True:
        page = committed(conn, user, PULL, (cursor, limit))
        changes += page["changes"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return changes, cursor


def test_pull_pages_every_change_once_then_only_new_ones(conn, user):
    ids = {insert_doc(conn, user, f"d{i}") for i in range(25)}
    pages = []
    cursor = None
    settle(conn)
    while True:
        page = committed(conn, user, PULL, (cursor, 10))
        pages.append(len(page["changes"]))
        cursor = page["cursor"]
        if not page["hasMore"]:
            break
    assert pages == [10, 10, 5]
    again, cursor2 = pull_all(conn, user, None)
    assert {c["id"] for c in again} == ids and len(again) == 25
    # an update and a tombstone show up after the cursor, nothing else does
    changed = sorted(ids)[0]
    committed(conn, user, "update public.documents set title = 'renamed' where id = %s", (changed,))
    gone = sorted(ids)[1]
    committed(conn, user, "select public.delete_document(%s)", (gone,))
    later, _ = pull_all(conn, user, cursor2)
    assert {c["id"]: (c["title"], c["deleted"], c["version"]) for c in later} == {
        changed: ("renamed", False, 2),
        gone: (next(c["title"] for c in later if c["id"] == gone), True, 2),
    }
    assert [c["deleted"] for c in later if c["id"] == gone] == [True]
    assert [c["version"] for c in later if c["id"] == changed] == [2]


def test_pull_sees_only_own_documents(conn, user):
    other = create_user(conn)
    conn.commit()
    insert_doc(conn, other)
    mine = insert_doc(conn, user)
    changes, _ = pull_all(conn, user, None)
    assert [c["id"] for c in changes] == [mine]


def test_pull_rejects_bad_input(conn, user):
    with act_as(conn, user) as cur, pytest.raises(psycopg.Error) as exc:
        cur.execute(PULL, ("garbage", 10))
    assert exc.value.sqlstate == "22023"
    with act_as(conn, user) as cur, pytest.raises(psycopg.Error) as exc:
        cur.execute(PULL, (None, 0))
    assert exc.value.sqlstate == "22023"
    with act_as(conn, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(PULL, (None, 10))


def test_cursor_never_skips_a_change_committed_late_by_an_earlier_transaction(clone_url, conn, user):
    """Writer A starts first and commits last; writer B starts later and commits first.

    A plain sequence/timestamp cursor would hand out B, move past it, and never
    return A. The watermark cursor holds B back until A is finished.
    """
    x_id, y_id = insert_doc(conn, user, "X"), insert_doc(conn, user, "Y")
    _, cursor = pull_all(conn, user, None)
    claims = json.dumps({"sub": str(user), "role": "authenticated"})
    with psycopg.connect(clone_url) as a, psycopg.connect(clone_url) as b:
        for c in (a, b):
            c.execute("set role authenticated")
            c.execute("select set_config('request.jwt.claims', %s, false)", (claims,))
        # (Two inserts of the same user and kind would serialise on the plan-limit lock;
        # updates, an insert of another kind, or other users interleave freely.)
        a.execute("update public.documents set title = 'A' where id = %s", (x_id,))
        a_id = x_id
        b.execute("update public.documents set title = 'B' where id = %s", (y_id,))
        b_id = b.execute(
            "insert into public.documents (kind, title, body) values ('item', 'B', %s) returning id",
            (json.dumps(item_body()),),
        ).fetchone()[0]
        a_xid = int(a.execute("select pg_current_xact_id()::text").fetchone()[0])
        b_xid = int(b.execute("select pg_current_xact_id()::text").fetchone()[0])
        assert a_xid < b_xid  # A started (got its transaction id) first
        b.commit()  # ... but B commits first

        seen: list[str] = []
        early, cursor = pull_all(conn, user, cursor, wait=False)
        seen += [c["id"] for c in early]
        assert seen == []  # A is not committed; B is held back behind in-flight A

        a.commit()
    deadline = time.monotonic() + 20
    while {str(a_id), str(b_id)} - set(seen) and time.monotonic() < deadline:
        more, cursor = pull_all(conn, user, cursor, wait=False)
        seen += [c["id"] for c in more]
        time.sleep(0.05)
    assert sorted(seen) == sorted([str(a_id), str(b_id), y_id])  # all, each exactly once
    titles = {r[0]: r[1] for r in conn.execute("select id::text, title from public.documents").fetchall()}
    assert titles[x_id] == "A" and titles[y_id] == "B"


def change(doc_id: str, change_id: str, base: int | None, **fields: Any) -> dict[str, Any]:
    return {"change_id": change_id, "id": doc_id, "base_version": base, "kind": "item", **fields}


def test_push_creates_updates_and_is_idempotent(conn, user):
    doc = str(uuid.uuid4())
    res = committed(
        conn,
        user,
        PUSH,
        (json.dumps([change(doc, "c1", None, title="a", body=item_body("x"))]), "server_wins"),
    )
    assert res["results"][0]["status"] == "applied" and res["results"][0]["version"] == 1
    upd = [change(doc, "c2", 1, title="b", body=item_body("y"))]
    first = committed(conn, user, PUSH, (json.dumps(upd), "server_wins"))["results"][0]
    retry = committed(conn, user, PUSH, (json.dumps(upd), "server_wins"))["results"][0]
    assert first["status"] == "applied" and first["version"] == 2
    assert retry["duplicate"] is True and retry["version"] == 2
    assert conn.execute("select version, title from public.documents where id = %s", (doc,)).fetchone() == (
        2,
        "b",
    )
    assert conn.execute("select count(*) from public.sync_conflicts").fetchone() == (0,)


def test_stale_push_conflict_server_wins_keeps_client_copy_and_resolves(conn, user):
    doc = str(uuid.uuid4())
    committed(
        conn,
        user,
        PUSH,
        (json.dumps([change(doc, "c1", None, title="a", body=item_body("v1"))]), "server_wins"),
    )
    committed(
        conn, user, PUSH, (json.dumps([change(doc, "phone-1", 1, body=item_body("phone"))]), "server_wins")
    )
    res = committed(
        conn, user, PUSH, (json.dumps([change(doc, "laptop-1", 1, body=item_body("laptop"))]), "server_wins")
    )["results"][0]
    assert res["status"] == "conflict"
    assert res["server"]["body"]["name"] == "phone" and res["server"]["version"] == 2
    row = conn.execute(
        "select status, client_body->>'name', server_body->>'name', base_version, server_version"
        " from public.sync_conflicts where id = %s",
        (res["conflict_id"],),
    ).fetchone()
    assert row == ("open", "laptop", "phone", 1, 2)
    assert conn.execute("select body->>'name' from public.documents where id = %s", (doc,)).fetchone() == (
        "phone",
    )
    # resolve: keep mine applies the laptop copy as a new version
    d = committed(
        conn, user, "select to_jsonb(public.resolve_conflict(%s, 'keep_mine'))", (res["conflict_id"],)
    )
    assert d["body"]["name"] == "laptop" and d["version"] == 3
    with act_as(conn, user) as cur, pytest.raises(psycopg.Error) as exc:
        cur.execute("select public.resolve_conflict(%s, 'keep_mine')", (res["conflict_id"],))
    assert exc.value.sqlstate == "PT404"


def test_client_wins_keeps_server_copy_and_manual_waits(conn, user):
    doc = str(uuid.uuid4())
    committed(conn, user, PUSH, (json.dumps([change(doc, "c1", None, body=item_body("v1"))]), "server_wins"))
    committed(conn, user, PUSH, (json.dumps([change(doc, "c2", 1, body=item_body("server"))]), "server_wins"))
    cw = committed(
        conn, user, PUSH, (json.dumps([change(doc, "c3", 1, body=item_body("client"))]), "client_wins")
    )["results"][0]
    assert cw["status"] == "applied" and cw["version"] == 3
    assert conn.execute(
        "select status, resolution, server_body->>'name' from public.sync_conflicts where id = %s",
        (cw["conflict_id"],),
    ).fetchone() == ("resolved", "client_wins", "server")
    man = committed(conn, user, PUSH, (json.dumps([change(doc, "c4", 1, body=item_body("late"))]), "manual"))[
        "results"
    ][0]
    assert man["status"] == "needs_resolution"
    merged = committed(
        conn,
        user,
        "select to_jsonb(public.resolve_conflict(%s, 'merged', %s))",
        (man["conflict_id"], json.dumps(item_body("merged"))),
    )
    assert merged["body"]["name"] == "merged" and merged["version"] == 4
    theirs = committed(
        conn, user, PUSH, (json.dumps([change(doc, "c5", 2, body=item_body("old"))]), "server_wins")
    )["results"][0]
    kept = committed(
        conn, user, "select to_jsonb(public.resolve_conflict(%s, 'keep_theirs'))", (theirs["conflict_id"],)
    )
    assert kept["version"] == 4 and kept["body"]["name"] == "merged"


def test_push_rejects_bad_changes_and_applies_good_ones(conn, user):
    other = create_user(conn)
    conn.commit()
    foreign = str(
        committed(
            conn,
            other,
            "insert into public.documents (kind, body) values ('item', %s) returning id",
            (json.dumps(item_body()),),
        )
    )
    good = str(uuid.uuid4())
    res = committed(
        conn,
        user,
        PUSH,
        (
            json.dumps(
                [
                    change(str(uuid.uuid4()), "bad-body", None, body={"name": ""}),
                    change(good, "good", None, body=item_body("ok")),
                    change(foreign, "steal", 1, body=item_body("mine now")),
                    {"id": str(uuid.uuid4()), "kind": "item"},
                ]
            ),
            "server_wins",
        ),
    )["results"]
    assert [r["status"] for r in res] == ["rejected", "applied", "rejected", "rejected"]
    assert "item name" in res[0]["error"]
    assert conn.execute(
        "select body->>'name' from public.documents where id = %s", (foreign,)
    ).fetchone() == ("Blue Train",)
    assert conn.execute("select count(*) from public.documents where owner_id = %s", (user,)).fetchone() == (
        1,
    )
    with act_as(conn, user) as cur, pytest.raises(psycopg.Error) as exc:
        cur.execute(PUSH, ("[]", "yolo"))
    assert exc.value.sqlstate == "22023"


def test_push_delete_is_a_tombstone_pulled_by_other_devices(conn, user):
    doc = str(uuid.uuid4())
    committed(conn, user, PUSH, (json.dumps([change(doc, "c1", None, body=item_body())]), "server_wins"))
    _, cursor = pull_all(conn, user, None)
    committed(
        conn,
        user,
        PUSH,
        (json.dumps([{"change_id": "c2", "id": doc, "op": "delete", "base_version": 1}]), "server_wins"),
    )
    changes, _ = pull_all(conn, user, cursor)
    assert [(c["id"], c["deleted"], c["version"]) for c in changes] == [(doc, True, 2)]


def test_same_change_id_twice_in_one_batch_applies_once(conn, user):
    doc = str(uuid.uuid4())
    c1 = change(doc, "c1", None, body=item_body("first"))
    res = committed(conn, user, PUSH, (json.dumps([c1, c1]), "server_wins"))["results"]
    assert [r["status"] for r in res] == ["applied", "applied"] and res[1]["duplicate"] is True
    assert conn.execute(
        "select count(*) from public.sync_receipts where owner_id = %s", (user,)
    ).fetchone() == (1,)
    assert committed(conn, user, PUSH, ("[]", "server_wins")) == {"results": []}
