"""Two connections with real commits: the cap and single-use invites hold. Erasure leaves nothing."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
from psycopg import errors

from tests.files.storage_api import upload
from tests.helpers import act_as, create_user
from tests.rooms.conftest import add_element, create_room, invite_and_join


def _race(clone_url, user_a, user_b, statement, params):
    """A runs `statement` and holds its transaction; B runs it meanwhile; A commits. Returns B's outcome."""
    a, b = psycopg.connect(clone_url), psycopg.connect(clone_url)
    outcome: dict[str, BaseException | None] = {}
    try:
        with act_as(a, user_a, rollback=False) as cur:
            cur.execute(statement, params)

            def second() -> None:
                try:
                    with act_as(b, user_b, rollback=False) as cur_b:
                        cur_b.execute(statement, params)
                    outcome["b"] = None
                except BaseException as exc:
                    outcome["b"] = exc

            worker = threading.Thread(target=second)
            worker.start()
            worker.join(timeout=1.0)
            assert worker.is_alive(), "B must wait for A"
        worker.join(timeout=10)  # A's block committed on exit
        return outcome["b"]
    finally:
        a.close()
        b.close()


def test_two_editors_racing_for_the_last_element_one_refused(clone_url):
    with psycopg.connect(clone_url) as conn:
        owner, editor = create_user(conn), create_user(conn)
        room = create_room(conn, owner)
        invite_and_join(conn, room, owner, editor, "editor")
        conn.execute(
            "insert into public.room_elements (room_id, kind) select %s, 'note' from generate_series(1, 99)",
            (room,),
        )
        conn.commit()
    result = _race(
        clone_url,
        owner,
        editor,
        "insert into public.room_elements (room_id, kind) values (%s, 'note')",
        (room,),
    )
    assert isinstance(result, errors.CheckViolation)
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select count(*) from public.room_elements where room_id = %s", (room,)
        ).fetchone() == (100,)


def test_single_use_invite_accepted_concurrently_only_once(clone_url):
    with psycopg.connect(clone_url) as conn:
        owner, u1, u2 = create_user(conn), create_user(conn), create_user(conn)
        room = create_room(conn, owner)
        with act_as(conn, owner, rollback=False) as cur:
            token = cur.execute(
                "select token from public.create_room_invite(%s, 'editor')", (room,)
            ).fetchone()[0]
        conn.commit()
    result = _race(clone_url, u1, u2, "select public.accept_room_invite(%s)", (token,))
    assert isinstance(result, psycopg.Error) and result.sqlstate == "PT410"  # used up: HTTP 410
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select count(*) from public.room_members where room_id = %s", (room,)
        ).fetchone() == (2,)


@pytest.mark.parametrize("with_claims", [False, True], ids=["operator", "self-service"])
def test_account_erasure_leaves_no_row_referencing_the_user(db, make_user, with_claims):
    alice, bob = make_user(), make_user()
    own_room = create_room(db, alice, "Alice's")
    bobs_room = create_room(db, bob, "Bob's")
    invite_and_join(db, bobs_room, bob, alice, "editor")
    with act_as(db, alice, rollback=False) as cur:
        chat = cur.execute(
            "insert into public.room_elements (room_id, kind) values (%s, 'chat') returning id", (bobs_room,)
        ).fetchone()[0]
        cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content)"
            " values (%s, %s, 'user', 'hi')",
            (bobs_room, chat),
        )
        cur.execute("select * from public.create_room_invite(%s)", (own_room,))
        cur.execute("insert into public.room_templates (name) values ('Mine')")
    upload(db, alice, "images", f"rooms/{bobs_room}/a.png", 10, "image/png")
    with act_as(db, alice, rollback=False) as cur:
        cur.execute(
            "insert into public.room_elements (room_id, kind, image_path) values (%s, 'image', %s)",
            (bobs_room, f"rooms/{bobs_room}/a.png"),
        )
    add_element(db, own_room)

    if with_claims:  # erasure requested by the user: their claims are still set
        db.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": str(alice)}),))
    db.execute("delete from auth.users where id = %s", (alice,))

    fks = db.execute("""
        select c.conrelid::regclass::text, a.attname
          from pg_constraint c
          join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
         where c.contype = 'f' and c.confrelid = 'auth.users'::regclass""").fetchall()
    leftovers = {
        f"{table}.{column}": n
        for table, column in fks
        if (n := db.execute(f"select count(*) from {table} where {column} = %s", (alice,)).fetchone()[0])
    }
    assert leftovers == {}
    assert db.execute("select count(*) from public.rooms where id = %s", (own_room,)).fetchone() == (0,)
    # Bob's room keeps Alice's contributions, anonymised.
    assert db.execute(
        "select count(*), count(created_by) from public.room_elements where room_id = %s", (bobs_room,)
    ).fetchone() == (2, 0)
    assert db.execute(
        "select author_id from public.room_chat_messages where element_id = %s", (chat,)
    ).fetchall() == [(None,)]
