"""Canvas elements and connections: RLS matrix, version/last editor, same-room ends, the plan cap."""

from __future__ import annotations

import uuid

import pytest
from psycopg import errors

from tests.helpers import act_as
from tests.rooms.conftest import PERSONAS, Room, add_element, as_persona, create_room

WRITERS = {"owner", "editor", "service_role"}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_reads_elements_and_connections(db, room: Room, persona):
    a, b = add_element(db, room.id), add_element(db, room.id)
    db.execute(
        "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
        " values (%s, %s, %s)",
        (room.id, a, b),
    )
    with as_persona(db, room, persona) as cur:
        if persona == "anon":
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("select id from public.room_elements")
            return
        elements = cur.execute(
            "select count(*) from public.room_elements where room_id = %s", (room.id,)
        ).fetchone()[0]
        connections = cur.execute(
            "select count(*) from public.room_element_connections where room_id = %s", (room.id,)
        ).fetchone()[0]
    seen = persona != "stranger"
    assert (elements, connections) == ((2, 1) if seen else (0, 0))


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_adds_elements(db, room: Room, persona):
    insert = "insert into public.room_elements (room_id, kind, x, y) values (%s, 'text', 10, 20)"
    with as_persona(db, room, persona) as cur:
        if persona in WRITERS:
            cur.execute(insert, (room.id,))
            assert cur.rowcount == 1
        else:
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(insert, (room.id,))


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_moves_an_element(db, room: Room, persona):
    element = add_element(db, room.id, x=0, y=0)
    with as_persona(db, room, persona) as cur:
        if persona == "anon":
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("update public.room_elements set x = 99 where id = %s", (element,))
            return
        cur.execute("update public.room_elements set x = 99, y = 42 where id = %s", (element,))
        assert cur.rowcount == (1 if persona in WRITERS else 0)
        moved = cur.execute("select x from public.room_elements where id = %s", (element,)).fetchone()
    if persona in ("viewer", "stranger"):
        assert db.execute(
            "select x, version from public.room_elements where id = %s", (element,)
        ).fetchone() == (0, 1)
    if persona in WRITERS:
        assert moved == (99,)


def test_viewer_move_is_refused_and_nothing_changes(db, room: Room):
    element = add_element(db, room.id, x=5)
    with act_as(db, room.viewer) as cur:
        cur.execute("update public.room_elements set x = 500 where id = %s returning id", (element,))
        assert cur.fetchall() == []
        cur.execute("delete from public.room_elements where id = %s", (element,))
        assert cur.rowcount == 0
    assert db.execute("select x, version from public.room_elements where id = %s", (element,)).fetchone() == (
        5,
        1,
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_deletes_elements(db, room: Room, persona):
    element = add_element(db, room.id)
    with as_persona(db, room, persona) as cur:
        if persona == "anon":
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("delete from public.room_elements where id = %s", (element,))
            return
        cur.execute("delete from public.room_elements where id = %s", (element,))
        assert cur.rowcount == (1 if persona in WRITERS else 0)


def test_stranger_cannot_add_to_a_guessed_room(db, room: Room):
    with act_as(db, room.stranger) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into public.room_elements (room_id, kind) values (%s, 'note')", (room.id,))
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (0,)


def test_version_and_last_editor_are_kept_by_the_database(db, room: Room):
    with act_as(db, room.editor) as cur:
        element, version, author = cur.execute(
            "insert into public.room_elements (room_id, kind) values (%s, 'note')"
            " returning id, version, created_by",
            (room.id,),
        ).fetchone()
        assert (version, author) == (1, room.editor)
    with act_as(db, room.editor, rollback=False) as cur:
        element = cur.execute(
            "insert into public.room_elements (room_id, kind) values (%s, 'note') returning id", (room.id,)
        ).fetchone()[0]
    with act_as(db, room.owner) as cur:
        row = cur.execute(
            "update public.room_elements set x = 1 where id = %s and version = 1"
            " returning version, updated_by, created_by",
            (element,),
        ).fetchone()
        assert row == (2, room.owner, room.editor)
        # optimistic concurrency: a stale version updates nothing
        cur.execute("update public.room_elements set x = 2 where id = %s and version = 1", (element,))
        assert cur.rowcount == 0
    with act_as(db, room.owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("update public.room_elements set version = 77 where id = %s", (element,))


def test_element_cannot_move_to_another_room(db, room: Room):
    other_room = create_room(db, room.owner, "Other")
    element = add_element(db, room.id)
    with act_as(db, room.owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("update public.room_elements set room_id = %s where id = %s", (other_room, element))
    with pytest.raises(errors.InvalidParameterValue):
        db.execute("update public.room_elements set room_id = %s where id = %s", (other_room, element))


@pytest.mark.parametrize(
    "column,value",
    [
        ("kind", "'spaceship'"),
        ("width", "0"),
        ("height", "-1"),
        ("data", "'[1]'::jsonb"),
    ],
)
def test_bad_element_values_rejected(db, room: Room, column, value):
    with act_as(db, room.editor) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(
            f"insert into public.room_elements (room_id, kind, {column}) values (%s, 'note', {value})"
            if column != "kind"
            else f"insert into public.room_elements (room_id, kind) values (%s, {value})",
            (room.id,),
        )
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (0,)


def test_element_cannot_set_its_author(db, room: Room):
    with act_as(db, room.editor) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(
            "insert into public.room_elements (room_id, kind, created_by) values (%s, 'note', %s)",
            (room.id, room.owner),
        )


# -- connections ---------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_connects_elements(db, room: Room, persona):
    a, b = add_element(db, room.id), add_element(db, room.id)
    insert = (
        "insert into public.room_element_connections (room_id, from_element_id, to_element_id, label)"
        " values (%s, %s, %s, 'leads to')"
    )
    with as_persona(db, room, persona) as cur:
        if persona in WRITERS:
            cur.execute(insert, (room.id, a, b))
            assert cur.rowcount == 1
        else:
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(insert, (room.id, a, b))


def test_connection_ends_must_be_in_the_same_room(db, room: Room):
    other_room = create_room(db, room.owner, "Other")
    a, foreign = add_element(db, room.id), add_element(db, other_room)
    with act_as(db, room.owner) as cur, pytest.raises(errors.ForeignKeyViolation):
        cur.execute(
            "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
            " values (%s, %s, %s)",
            (room.id, a, foreign),
        )
    assert db.execute("select count(*) from public.room_element_connections").fetchone()[0] == 0


def test_connection_to_itself_or_twice_rejected(db, room: Room):
    a, b = add_element(db, room.id), add_element(db, room.id)
    insert = (
        "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
        " values (%s, %s, %s)"
    )
    with act_as(db, room.editor) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(insert, (room.id, a, a))
    with act_as(db, room.editor) as cur, pytest.raises(errors.UniqueViolation):
        cur.execute(insert, (room.id, a, b))
        cur.execute(insert, (room.id, a, b))


def test_deleting_an_element_removes_its_connections(db, room: Room):
    a, b = add_element(db, room.id), add_element(db, room.id)
    db.execute(
        "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
        " values (%s, %s, %s)",
        (room.id, a, b),
    )
    with act_as(db, room.editor) as cur:
        cur.execute("delete from public.room_elements where id = %s", (b,))
        assert cur.execute(
            "select count(*) from public.room_element_connections where room_id = %s", (room.id,)
        ).fetchone() == (0,)


@pytest.mark.parametrize("persona,changed", [("owner", 1), ("editor", 1), ("viewer", 0), ("stranger", 0)])
def test_who_relabels_and_removes_connections(db, room: Room, persona, changed):
    a, b = add_element(db, room.id), add_element(db, room.id)
    conn_id = db.execute(
        "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
        " values (%s, %s, %s) returning id",
        (room.id, a, b),
    ).fetchone()[0]
    with as_persona(db, room, persona) as cur:
        cur.execute("update public.room_element_connections set label = 'x' where id = %s", (conn_id,))
        assert cur.rowcount == changed
        cur.execute("delete from public.room_element_connections where id = %s", (conn_id,))
        assert cur.rowcount == changed


# -- the cap ---------------------------------------------------------------------


def fill(db, room_id, count):
    db.execute(
        "insert into public.room_elements (room_id, kind) select %s, 'note' from generate_series(1, %s)",
        (room_id, count),
    )


def test_the_101st_element_on_free_is_refused(db, room: Room):
    fill(db, room.id, 99)
    with act_as(db, room.editor, rollback=False) as cur:
        cur.execute("insert into public.room_elements (room_id, kind) values (%s, 'note')", (room.id,))
    with act_as(db, room.editor) as cur, pytest.raises(errors.CheckViolation) as err:
        cur.execute("insert into public.room_elements (room_id, kind) values (%s, 'note')", (room.id,))
    assert "at most 100 elements" in err.value.diag.message_primary
    assert err.value.diag.message_hint
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (100,)


def test_cap_follows_the_owners_plan(db, room: Room):
    db.execute("update public.profiles set plan = 'pro' where id = %s", (room.owner,))
    fill(db, room.id, 101)
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (101,)


def test_cap_applies_to_a_bulk_insert_as_a_whole(db, room: Room):
    fill(db, room.id, 90)
    with act_as(db, room.owner) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(
            "insert into public.room_elements (room_id, kind) select %s, 'note' from generate_series(1, 11)",
            (room.id,),
        )
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (90,)


# -- image elements and file links -------------------------------------------------


def test_image_element_links_its_file(db, room: Room):
    from tests.files.storage_api import upload

    path = f"rooms/{room.id}/photo.png"
    upload(db, room.editor, "images", path, 1000, "image/png")
    with act_as(db, room.editor, rollback=False) as cur:
        element = cur.execute(
            "insert into public.room_elements (room_id, kind, image_path) values (%s, 'image', %s)"
            " returning id",
            (room.id, path),
        ).fetchone()[0]
    assert db.execute(
        "select owner_id, bucket_id, object_name from public.file_links"
        " where ref_kind = 'room_element' and ref_id = %s",
        (element,),
    ).fetchall() == [(room.editor, "images", path)]
    db.execute("delete from public.room_elements where id = %s", (element,))
    assert db.execute("select count(*) from public.file_links where ref_id = %s", (element,)).fetchone() == (
        0,
    )


def test_image_path_must_exist_and_be_in_the_room(db, room: Room):
    with act_as(db, room.editor) as cur, pytest.raises(errors.ForeignKeyViolation):
        cur.execute(
            "insert into public.room_elements (room_id, kind, image_path) values (%s, 'image', %s)",
            (room.id, f"rooms/{room.id}/missing.png"),
        )
    with act_as(db, room.editor) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(
            "insert into public.room_elements (room_id, kind, image_path) values (%s, 'image', %s)",
            (room.id, f"rooms/{uuid.uuid4()}/x.png"),
        )
