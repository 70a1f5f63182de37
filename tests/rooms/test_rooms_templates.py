"""Templates: built-in readable by all, user templates private/public, apply_template in one transaction."""

from __future__ import annotations

import json

import pytest
from psycopg import errors

from tests.helpers import act_as
from tests.rooms.conftest import Room, add_element, as_persona


def builtin(db, name):
    return db.execute(
        "select id from public.room_templates where owner_id is null and name = %s", (name,)
    ).fetchone()[0]


def make_template(db, owner, visibility="private", elements=None, connections=None):
    elements = (
        elements if elements is not None else [{"key": "a", "kind": "note"}, {"key": "b", "kind": "text"}]
    )
    connections = connections if connections is not None else [{"from": "a", "to": "b", "label": "then"}]
    with act_as(db, owner, rollback=False) as cur:
        tid = cur.execute(
            "insert into public.room_templates (name, visibility, elements, connections)"
            " values ('Mine', %s, %s, %s) returning id",
            (visibility, json.dumps(elements), json.dumps(connections)),
        ).fetchone()[0]
    return tid


@pytest.mark.parametrize("persona", ["owner", "stranger", "anon", "service_role"])
def test_everyone_reads_builtin_templates(db, room: Room, persona):
    with as_persona(db, room, persona) as cur:
        names = {r[0] for r in cur.execute("select name from public.room_templates where owner_id is null")}
    assert {"SWOT analysis", "Brainstorm", "Six thinking hats"} <= names


@pytest.mark.parametrize("visibility,stranger_sees", [("private", False), ("public", True)])
@pytest.mark.parametrize("persona", ["stranger", "anon"])
def test_user_templates_private_or_public(db, room: Room, visibility, stranger_sees, persona):
    tid = make_template(db, room.owner, visibility)
    with act_as(db, room.owner) as cur:
        assert cur.execute("select count(*) from public.room_templates where id = %s", (tid,)).fetchone() == (
            1,
        )
    with as_persona(db, room, persona) as cur:
        seen = cur.execute("select count(*) from public.room_templates where id = %s", (tid,)).fetchone()[0]
    assert seen == (1 if stranger_sees else 0)


def test_only_the_author_changes_a_template(db, room: Room):
    tid = make_template(db, room.owner, "public")
    with act_as(db, room.stranger) as cur:
        cur.execute("update public.room_templates set name = 'stolen' where id = %s", (tid,))
        assert cur.rowcount == 0
        cur.execute("delete from public.room_templates where id = %s", (tid,))
        assert cur.rowcount == 0
    with act_as(db, room.owner) as cur:
        cur.execute("update public.room_templates set name = 'Renamed' where id = %s", (tid,))
        assert cur.rowcount == 1


def test_nobody_changes_builtins_through_the_api(db, room: Room):
    swot = builtin(db, "SWOT analysis")
    with act_as(db, room.owner) as cur:
        cur.execute("update public.room_templates set name = 'x' where id = %s", (swot,))
        assert cur.rowcount == 0
    with act_as(db, room.owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into public.room_templates (name, owner_id) values ('fake builtin', null)")
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into public.room_templates (name) values ('x')")


@pytest.mark.parametrize(
    "column,value", [("elements", '{"a": 1}'), ("visibility", '"shared"'), ("kind", '"plan"')]
)
def test_bad_template_rejected(db, room: Room, column, value):
    with act_as(db, room.owner) as cur, pytest.raises(errors.CheckViolation):
        cur.execute(
            f"insert into public.room_templates (name, {column}) values ('x', %s::jsonb"
            + (" #>> '{}')" if column != "elements" else ")"),
            (value,),
        )


def test_apply_builtin_template_creates_elements_and_connections(db, room: Room):
    brainstorm = builtin(db, "Brainstorm")
    with act_as(db, room.editor) as cur:
        ids = [
            r[0] for r in cur.execute("select * from public.apply_template(%s, %s)", (room.id, brainstorm))
        ]
        assert len(ids) == 6
        kinds = sorted(
            r[0] for r in cur.execute("select kind from public.room_elements where room_id = %s", (room.id,))
        )
        assert kinds == ["chat", "note", "note", "note", "note", "text"]
        assert cur.execute(
            "select count(*) from public.room_element_connections where room_id = %s", (room.id,)
        ).fetchone() == (4,)
        assert cur.execute(
            "select count(*) from public.room_elements where room_id = %s and created_by = %s",
            (room.id, room.editor),
        ).fetchone() == (6,)


def test_apply_private_template_of_someone_else_is_refused(db, room: Room, make_user):
    other = make_user()
    tid = make_template(db, other, "private")
    with act_as(db, room.owner) as cur, pytest.raises(errors.Error) as err:
        cur.execute("select * from public.apply_template(%s, %s)", (room.id, tid))
    assert err.value.sqlstate == "PT404"


@pytest.mark.parametrize("persona", ["viewer", "stranger"])
def test_viewers_and_strangers_cannot_apply(db, room: Room, persona):
    with as_persona(db, room, persona) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select * from public.apply_template(%s, %s)", (room.id, builtin(db, "SWOT analysis")))
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (0,)


def test_anon_cannot_apply(db, room: Room):
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select * from public.apply_template(%s, %s)", (room.id, builtin(db, "SWOT analysis")))


def test_apply_is_all_or_nothing_at_the_cap(db, room: Room):
    db.execute(
        "insert into public.room_elements (room_id, kind) select %s, 'note' from generate_series(1, 97)",
        (room.id,),
    )
    with act_as(db, room.owner) as cur, pytest.raises(errors.CheckViolation):
        cur.execute("select * from public.apply_template(%s, %s)", (room.id, builtin(db, "Brainstorm")))
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (97,)


def test_template_with_unknown_connection_key_changes_nothing(db, room: Room):
    tid = make_template(db, room.owner, connections=[{"from": "a", "to": "zz"}])
    add_element(db, room.id)
    with act_as(db, room.owner) as cur, pytest.raises(errors.InvalidParameterValue):
        cur.execute("select * from public.apply_template(%s, %s)", (room.id, tid))
    assert db.execute(
        "select count(*) from public.room_elements where room_id = %s", (room.id,)
    ).fetchone() == (1,)


def test_service_role_applies_templates(db, room: Room):
    with act_as(db, None, "service_role") as cur:
        ids = cur.execute(
            "select * from public.apply_template(%s, %s)", (room.id, builtin(db, "SWOT analysis"))
        ).fetchall()
    assert len(ids) == 4
