"""Validators check what their messages promise; stored client JSON has a depth limit.

Issue #12, item 6 (migration 20261206090600, docs/validation.md). Everything a
client sends goes through `act_as` (the PostgREST impersonation), and the six
RPCs the issue names are called with the exact statement shape PostgREST 12
builds for an RPC (`json_to_record` over the request body), so the JSON is
parsed the way the Data API parses it.

JSON nested thousands deep is built as text: Python's json module would hit
its own recursion limit first.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import item_body, loop_body, song_body

MakeUser = Callable[..., uuid.UUID]

LIMIT = 32  # private.json_max_depth(): the test fails if the constant moves without docs/validation.md
PROBE_KIND = "depth_probe"  # a kind without a validator: only the generic rules (size, depth) apply


# == JSON text of an exact depth (a scalar is 0, [] and {} are 1) ==
def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def obj(depth: int) -> str:
    """An object nesting `depth` arrays/objects (itself included)."""
    assert depth >= 1
    return '{"k": ' + arrays(depth - 1) + "}"


# == PostgREST 12's RPC statement (QueryBuilder.callPlanToQuery + fromJsonBodyF) ==
def rpc_sql(function: str, params: dict[str, str], scalar: bool = True) -> str:
    cols = ", ".join(f'"{name}"' for name in params)
    typed = ", ".join(f'"{name}" {type_}' for name, type_ in params.items())
    named = ", ".join(f'"{name}" := pgrst_body."{name}"' for name in params)
    call = f"public.{function}({named})"
    source = (
        "from (select %s::json as json_data) pgrst_payload, "
        f"lateral (select {cols} from json_to_record(pgrst_payload.json_data) as _({typed}) limit 1)"
        " pgrst_body, "
    )
    if scalar:
        return f"select pgrst_call.pgrst_scalar {source}lateral (select {call} pgrst_scalar) pgrst_call"
    return f"select to_jsonb(pgrst_call) {source}lateral {call} pgrst_call"


def body_of(args: dict[str, str]) -> str:
    """A request body from raw JSON texts (values are already JSON)."""
    return "{" + ", ".join(f"{json.dumps(name)}: {value}" for name, value in args.items()) + "}"


def error_of(cur: psycopg.Cursor[Any], query: str, params: Any = None) -> psycopg.Error | None:
    """Run one statement; the error it failed with, or None. Last statement of an act_as block."""
    try:
        cur.execute(query, params)
    except psycopg.Error as exc:
        return exc
    return None


def assert_too_deep(exc: psycopg.Error | None, field: str, limit: int = LIMIT) -> None:
    assert exc is not None, "accepted"
    assert exc.sqlstate == "22023", (exc.sqlstate, str(exc))
    message = exc.diag.message_primary or ""
    assert field in message and f"at most {limit} levels" in message, message
    assert exc.diag.message_hint


@pytest.fixture
def probe_kind(db: psycopg.Connection[Any]) -> str:
    db.execute(
        "insert into public.document_kinds (id, description, max_body_bytes, allow_public, validator)"
        " values (%s, 'test: no validator', 1000000, true, null)",
        (PROBE_KIND,),
    )
    return PROBE_KIND


# == the depth function itself ==
@pytest.mark.parametrize(
    ("value", "depth"),
    [
        ("1", 0),
        ('"text"', 0),
        ("null", 0),
        ("[]", 1),
        ("{}", 1),
        ("[1, 2, {}]", 2),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": [1, {"b": 2}]}', 3),
        ('[[], [[[]]], {"x": {"y": 1}}]', 4),
        (arrays(LIMIT), LIMIT),
        (obj(LIMIT), LIMIT),
        ('{"a": 1, "b": ' + arrays(LIMIT - 1) + "}", LIMIT),
    ],
)
def test_depth_is_counted_in_nested_arrays_and_objects(
    db: psycopg.Connection[Any], value: str, depth: int
) -> None:
    row = db.execute(
        "select private.json_depth_exceeds(%s::jsonb, %s), private.json_depth_exceeds(%s::jsonb, %s)",
        (value, depth, value, max(depth - 1, 0)),
    ).fetchone()
    assert row == (False, depth > 0)


def test_the_limit_is_the_documented_constant(db: psycopg.Connection[Any]) -> None:
    assert db.execute("select private.json_max_depth()").fetchone() == (LIMIT,)


@pytest.mark.parametrize("depth", [1000, 10000, 12000])
def test_depth_check_itself_never_hits_the_stack_limit(db: psycopg.Connection[Any], depth: int) -> None:
    for text in (arrays(depth), obj(depth)):
        assert db.execute("select private.json_depth_exceeds(%s::jsonb, %s)", (text, LIMIT)).fetchone() == (
            True,
        )
        exc = error_of(db.cursor(), "select private.json_check_depth(%s::jsonb, 'probe')", (text,))
        assert_too_deep(exc, "probe")
        db.rollback()


def test_depth_function_refuses_a_bad_limit_and_passes_null(db: psycopg.Connection[Any]) -> None:
    assert db.execute("select private.json_depth_exceeds(null, 3)").fetchone() == (False,)
    exc = error_of(db.cursor(), "select private.json_depth_exceeds('[]', -1)")
    assert exc is not None and exc.sqlstate == "22023" and "non-negative" in str(exc)


def test_depth_helpers_are_not_callable_by_anon(db: psycopg.Connection[Any]) -> None:
    for signature in (
        "private.json_depth_exceeds(jsonb, integer)",
        "private.json_check_depth(jsonb, text, integer)",
    ):
        row = db.execute(
            "select has_function_privilege('anon', %s, 'execute'),"
            " has_function_privilege('authenticated', %s, 'execute')",
            (signature, signature),
        ).fetchone()
        assert row == (False, True), signature


# == validators: what the messages promise ==
def insert_doc(cur: psycopg.Cursor[Any], kind: str, body: str, visibility: str = "public") -> Any:
    return cur.execute(
        "insert into public.documents (kind, title, body, visibility)"
        " values (%s, 't', %s::jsonb, %s) returning id",
        (kind, body, visibility),
    ).fetchone()[0]


def live_docs(db: psycopg.Connection[Any], owner: uuid.UUID) -> int:
    return db.execute("select count(*) from public.documents where owner_id = %s", (owner,)).fetchone()[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ('[{"evil": true}]', "item tags must be an array of strings"),
        ('["ok", ["nested"]]', "item tags must be an array of strings"),
        ('["ok", 1]', "item tags must be an array of strings"),
        ('["ok", null]', "item tags must be an array of strings"),
        ('{"not": "an array"}', "item tags must be an array of strings"),
        ("[" + arrays(10000) + "]", "document body.tags is nested too deeply"),
    ],
    ids=["object", "nested-array", "number", "null", "object-not-array", "10000-deep"],
)
def test_item_tags_must_be_strings(
    db: psycopg.Connection[Any], make_user: MakeUser, tags: str, message: str
) -> None:
    owner = make_user()
    body = '{"name": "Blue Train", "tags": ' + tags + "}"
    with act_as(db, owner) as cur:
        exc = error_of(
            cur,
            "insert into public.documents (kind, title, body, visibility)"
            " values ('item', 't', %s::jsonb, 'public')",
            (body,),
        )
    assert exc is not None and exc.sqlstate == "22023", exc
    assert message in (exc.diag.message_primary or "") and "tags" in (exc.diag.message_primary or "")
    assert live_docs(db, owner) == 0
    with act_as(db, None, "anon") as cur:
        assert (
            cur.execute("select public.explore('item', 'newest', null, null, 100)").fetchone()[0]["items"]
            == []
        )


def test_a_valid_public_item_with_tags_is_stored_and_explored(
    db: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    owner = make_user()
    with keep_as(db, owner) as cur:
        doc = insert_doc(cur, "item", json.dumps(item_body(tags=["jazz", "", "blue note"])))
    with act_as(db, None, "anon") as cur:
        items = cur.execute("select public.explore('item', 'newest', null, null, 100)").fetchone()[0]["items"]
    assert [i["id"] for i in items] == [str(doc)]
    with act_as(db, owner) as cur:  # the same item updated with an object in tags: refused, unchanged
        bad = dict(item_body(), tags=[{"a": 1}])
        exc = error_of(
            cur, "update public.documents set body = %s::jsonb where id = %s", (json.dumps(bad), doc)
        )
    assert exc is not None and exc.sqlstate == "22023" and "tags" in str(exc)
    assert db.execute(
        "select body -> 'tags', version from public.documents where id = %s", (doc,)
    ).fetchone() == (
        ["jazz", "", "blue note"],
        1,
    )


@pytest.mark.parametrize(
    ("kind", "body", "error"),
    [
        ("loop", dict(loop_body(), bars=4.0), None),  # the same JSON number as 4
        ("loop", dict(loop_body(), bars=3), "loop bars must be 1, 2, 4 or 8"),
        ("loop", dict(loop_body(), bars="4"), "loop bars must be 1, 2, 4 or 8"),
        ("loop", dict(loop_body(), chords=["C", 7]), "loop chords must be at most 64 strings"),
        ("loop", dict(loop_body(), icons=[["drum"]]), "loop icons must be at most 64 strings"),
        ("song", None, None),
        ("song", {"bar": 2147483647}, None),
        ("song", {"bar": 2147483648}, "song timeline block bar must be a non-negative integer"),
        ("song", {"bar": 10**30}, "song timeline block bar must be a non-negative integer"),
        ("song", {"bar": -1}, "song timeline block bar must be a non-negative integer"),
        ("song", {"bar": 1.5}, "song timeline block bar must be a non-negative integer"),
        ("song", {"bar": "4"}, "song timeline block bar must be a non-negative integer"),
        ("song", {"bpm": "fast"}, "song bpm must be a number from 20 to 300"),
        ("item", dict(item_body(), notes=None), "item notes must be text"),
        ("item", dict(item_body(), name=""), "item name must be a string of 1-200 characters"),
        (
            "folder",
            {"name": "x", "parent_id": "not-a-uuid"},
            "folder parent_id must be a folder id: a uuid, or null",
        ),
        ("folder", {"name": "x", "parent_id": 42}, "folder parent_id must be a folder id: a uuid, or null"),
        ("item", dict(item_body(), folder_id="nope"), "item folder_id must be a folder id: a uuid, or null"),
        (
            "item",
            dict(item_body(), folder_id=str(uuid.uuid4())),
            None,
        ),  # the message says existence is not checked
    ],
)
def test_validators_check_what_their_messages_say(
    db: psycopg.Connection[Any],
    make_user: MakeUser,
    kind: str,
    body: dict[str, Any] | None,
    error: str | None,
) -> None:
    owner = make_user()
    if kind == "song":
        song = song_body([str(uuid.uuid4())])
        override = body or {}
        if "bar" in override:
            song["timeline"][0]["bar"] = override["bar"]
        if "bpm" in override:
            song["bpm"] = override["bpm"]
        body = song
    with act_as(db, owner) as cur:
        exc = error_of(
            cur, "insert into public.documents (kind, body) values (%s, %s::jsonb)", (kind, json.dumps(body))
        )
    if error is None:
        assert exc is None, exc
    else:
        assert exc is not None and exc.sqlstate == "22023" and error in str(exc), exc
    assert live_docs(db, owner) == 0  # act_as rolled back either way


# == document bodies: the generic depth rule (validate_document) ==
@pytest.mark.parametrize("depth", [LIMIT + 1, 1000, 10000])
def test_deep_document_bodies_are_refused_naming_the_field(
    db: psycopg.Connection[Any], make_user: MakeUser, probe_kind: str, depth: int
) -> None:
    owner = make_user()
    with act_as(db, owner) as cur:
        assert_too_deep(
            error_of(
                cur,
                "insert into public.documents (kind, body) values (%s, %s::jsonb)",
                (probe_kind, obj(depth)),
            ),
            "document body",
        )
    with act_as(db, owner) as cur:
        exc = error_of(
            cur,
            "insert into public.documents (kind, body) values (%s, %s::jsonb)",
            (probe_kind, '{"a": 1, "deep": ' + arrays(depth - 1) + "}"),
        )
        assert_too_deep(exc, "document body.deep")
    assert live_docs(db, owner) == 0


def test_a_document_body_at_the_limit_is_stored(
    db: psycopg.Connection[Any], make_user: MakeUser, probe_kind: str
) -> None:
    owner = make_user()
    with keep_as(db, owner) as cur:
        doc = insert_doc(cur, probe_kind, obj(LIMIT))
    with act_as(db, owner) as cur:  # an update past the limit is refused, the stored body stays
        assert_too_deep(
            error_of(
                cur, "update public.documents set body = %s::jsonb where id = %s", (obj(LIMIT + 1), doc)
            ),
            "document body",
        )
    assert db.execute(
        "select private.json_depth_exceeds(body, %s), version from public.documents where id = %s",
        (LIMIT - 1, doc),
    ).fetchone() == (True, 1)


# == the six RPCs the issue names, as PostgREST calls them ==
def consent(db: psycopg.Connection[Any], user: uuid.UUID) -> None:
    with keep_as(db, user) as cur:
        cur.execute("select public.set_privacy_consent(telemetry => true)")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def open_conflict(db: psycopg.Connection[Any], user: uuid.UUID, kind: str) -> tuple[str, str]:
    """A document of `kind` and an open (manual) conflict on it, made through the RPCs."""
    doc = str(uuid.uuid4())
    with keep_as(db, user) as cur:
        cur.execute(
            rpc_sql("sync_push", {"p_changes": "jsonb"}),
            (
                body_of(
                    {
                        "p_changes": json.dumps(
                            [{"change_id": "c0", "id": doc, "kind": kind, "body": {"v": 1}}]
                        )
                    }
                ),
            ),
        )
        pushed = cur.execute(
            rpc_sql("sync_push", {"p_changes": "jsonb", "p_strategy": "text"}),
            (
                body_of(
                    {
                        "p_changes": json.dumps(
                            [
                                {
                                    "change_id": "c1",
                                    "id": doc,
                                    "kind": kind,
                                    "base_version": 0,
                                    "body": {"v": 2},
                                }
                            ]
                        ),
                        "p_strategy": '"manual"',
                    }
                ),
            ),
        ).fetchone()[0]
    conflict = pushed["results"][0]["conflict_id"]
    assert conflict, pushed
    return doc, conflict


def call(
    db: psycopg.Connection[Any], user: uuid.UUID, rpc: str, value: str, kind: str, *, keep: bool = False
) -> tuple[Any, psycopg.Error | None]:
    """Call one RPC with `value` (JSON text) where the RPC stores client JSON; (result, error)."""
    setup: dict[str, Any] = {}
    if rpc == "ingest_telemetry":
        consent(db, user)
    if rpc == "resolve_conflict":
        setup["doc"], setup["conflict"] = open_conflict(db, user, kind)
    requests: dict[str, tuple[dict[str, str], dict[str, str], bool]] = {
        "enqueue_job": ({"kind": "text", "payload": "jsonb"}, {"kind": '"export"', "payload": value}, True),
        "upload_backup": (
            {"p_ciphertext": "text", "p_nonce": "text", "p_kdf": "jsonb", "p_if_version": "integer"},
            {
                "p_ciphertext": json.dumps(b64(b"cipher")),
                "p_nonce": json.dumps(b64(os.urandom(24))),
                "p_kdf": value,
                "p_if_version": "0",
            },
            True,
        ),
        "ingest_telemetry": (
            {"events": "jsonb"},
            {"events": '[{"name": "app.opened", "props": ' + value + "}]"},
            True,
        ),
        "import_local": (
            {"p_library": "jsonb"},
            {"p_library": "{" + json.dumps(kind) + ': [{"local_id": "l1", "body": ' + value + "}]}"},
            True,
        ),
        "sync_push": (
            {"p_changes": "jsonb"},
            {
                "p_changes": '[{"change_id": "d1", "id": "'
                + str(uuid.uuid4())
                + '", "kind": '
                + json.dumps(kind)
                + ', "body": '
                + value
                + "}]"
            },
            True,
        ),
        "resolve_conflict": (
            {"p_conflict_id": "uuid", "p_resolution": "text", "p_body": "jsonb"},
            {"p_conflict_id": json.dumps(setup.get("conflict")), "p_resolution": '"merged"', "p_body": value},
            False,
        ),
    }
    params, args, scalar = requests[rpc]
    with act_as(db, user, rollback=not keep) as cur:
        try:
            row = cur.execute(rpc_sql(rpc, params, scalar), (body_of(args),)).fetchone()
        except psycopg.Error as exc:
            return setup, exc
    return (row[0] if row else None), None


def stored(db: psycopg.Connection[Any], user: uuid.UUID, rpc: str) -> int:
    """Rows the RPC would have stored for the user (what must stay 0 on refusal)."""
    queries = {
        "enqueue_job": "select count(*) from public.jobs where owner_id = %s",
        "upload_backup": "select count(*) from public.backups where owner_id = %s",
        "ingest_telemetry": "select count(*) from public.telemetry_events where user_id = %s",
        "import_local": "select count(*) from public.documents where owner_id = %s and local_id is not null",
        "sync_push": "select count(*) from public.documents where owner_id = %s",
        "resolve_conflict": (
            "select count(*) from public.sync_conflicts where owner_id = %s and status = 'resolved'"
        ),
    }
    return db.execute(queries[rpc], (user,)).fetchone()[0]  # type: ignore[no-any-return]


def refusal(rpc: str, result: Any, exc: psycopg.Error | None) -> tuple[str | None, str]:
    """SQLSTATE and message of a refusal, raised or (batch RPCs) reported per record."""
    if exc is not None:
        return exc.sqlstate, exc.diag.message_primary or ""
    if rpc == "import_local" and result["errors"]:
        return result["errors"][0]["code"], result["errors"][0]["error"]
    if rpc == "sync_push" and result["results"][0]["status"] == "rejected":
        return result["results"][0]["code"], result["results"][0]["error"]
    return None, ""


RPCS = ["enqueue_job", "upload_backup", "ingest_telemetry", "import_local", "sync_push", "resolve_conflict"]
FIELDS = {
    "enqueue_job": "job payload",
    "upload_backup": "backup kdf",
    "ingest_telemetry": "telemetry event props",
    "import_local": "document body",
    "sync_push": "document body",
    "resolve_conflict": "document body",
}


@pytest.mark.parametrize("depth", [LIMIT + 1, 1000, 10000])
@pytest.mark.parametrize("rpc", RPCS)
def test_rpcs_refuse_json_past_the_limit_with_22023(
    db: psycopg.Connection[Any], make_user: MakeUser, probe_kind: str, rpc: str, depth: int
) -> None:
    user = make_user()
    before = stored(db, user, rpc)
    result, exc = call(db, user, rpc, obj(depth), probe_kind)
    sqlstate, message = refusal(rpc, result, exc)
    assert sqlstate == "22023", (sqlstate, message, result)  # never 54001 (HTTP 500)
    if rpc == "ingest_telemetry" and len(obj(depth)) > 4096:
        assert "exceed 4096 bytes" in message, message  # the props size rule answers first
    else:
        assert FIELDS[rpc] in message and f"at most {LIMIT} levels" in message, message
    assert stored(db, user, rpc) == before


@pytest.mark.parametrize("rpc", RPCS)
def test_rpcs_accept_json_at_the_limit(
    db: psycopg.Connection[Any], make_user: MakeUser, probe_kind: str, rpc: str
) -> None:
    user = make_user()
    before = stored(db, user, rpc)
    result, exc = call(db, user, rpc, obj(LIMIT), probe_kind, keep=True)
    assert refusal(rpc, result, exc) == (None, ""), (result, exc)
    assert stored(db, user, rpc) == before + 1


def test_a_sync_conflict_never_stores_a_body_past_the_limit(
    db: psycopg.Connection[Any], make_user: MakeUser, probe_kind: str
) -> None:
    """A stale base version turns the change into a conflict row: its client body is guarded too."""
    user = make_user()
    doc, _ = open_conflict(db, user, probe_kind)
    change = '[{"change_id": "d2", "id": "' + doc + '", "base_version": 0, "body": ' + obj(1000) + "}]"
    with act_as(db, user) as cur:
        result = cur.execute(
            rpc_sql("sync_push", {"p_changes": "jsonb"}), (body_of({"p_changes": change}),)
        ).fetchone()[0]
    assert refusal("sync_push", result, None)[0] == "22023"
    # The conflict's client body is validated like any body before it is recorded
    # (private.sync_record_conflict), so the refusal names the document body.
    assert "document body" in result["results"][0]["error"]
    assert "nested too deeply" in result["results"][0]["error"]
    assert db.execute(
        "select count(*) from public.sync_conflicts where owner_id = %s", (user,)
    ).fetchone() == (1,)


def test_past_the_parser_limit_postgres_fails_before_any_function_runs(
    db: psycopg.Connection[Any], make_user: MakeUser, probe_kind: str
) -> None:
    """The documented limit of validation (docs/validation.md): not fixable in SQL.

    100,000 levels are past what PostgreSQL's JSON parser takes with the default
    2MB max_stack_depth (about 14,500 on PG 15, 16,300 on PG 18): the request's
    parameter fails to parse with 54001 while the statement is bound, before
    json_to_record or any function of ours runs. PostgREST answers 500. If this
    test starts failing, PostgreSQL changed: update docs/validation.md.
    """
    user = make_user()
    result, exc = call(db, user, "sync_push", obj(100_000), probe_kind)
    assert exc is not None and exc.sqlstate == "54001", (result, exc)
    assert "parameter $1" in (exc.diag.context or ""), exc.diag.context
    assert stored(db, user, "sync_push") == 0


# == every other jsonb column a client writes: CHECK constraints ==
def make_room(cur: psycopg.Cursor[Any]) -> Any:
    return cur.execute("insert into public.rooms (title) values ('r') returning id").fetchone()[0]


def make_element(cur: psycopg.Cursor[Any], room: Any) -> Any:
    return cur.execute(
        "insert into public.room_elements (room_id, kind) values (%s, 'note') returning id", (room,)
    ).fetchone()[0]


def _rooms_settings(cur: psycopg.Cursor[Any], value: str) -> None:
    cur.execute("insert into public.rooms (title, settings) values ('r', %s::jsonb)", (value,))


def _rooms_settings_update(cur: psycopg.Cursor[Any], value: str) -> None:
    room = make_room(cur)
    cur.execute("update public.rooms set settings = %s::jsonb where id = %s", (value, room))


def _element_data(cur: psycopg.Cursor[Any], value: str) -> None:
    cur.execute(
        "insert into public.room_elements (room_id, kind, data) values (%s, 'note', %s::jsonb)",
        (make_room(cur), value),
    )


def _element_data_update(cur: psycopg.Cursor[Any], value: str) -> None:
    element = make_element(cur, make_room(cur))
    cur.execute("update public.room_elements set data = %s::jsonb where id = %s", (value, element))


def _connection_data(cur: psycopg.Cursor[Any], value: str) -> None:
    room = make_room(cur)
    a, b = make_element(cur, room), make_element(cur, room)
    cur.execute(
        "insert into public.room_element_connections (room_id, from_element_id, to_element_id, data)"
        " values (%s, %s, %s, %s::jsonb)",
        (room, a, b, value),
    )


def _template_elements(cur: psycopg.Cursor[Any], value: str) -> None:
    elements = '[{"key": "a", "kind": "note", "data": ' + value + "}]"
    cur.execute("insert into public.room_templates (name, elements) values ('t', %s::jsonb)", (elements,))


def _template_connections(cur: psycopg.Cursor[Any], value: str) -> None:
    connections = '[{"from": "a", "to": "b", "data": ' + value + "}]"
    cur.execute(
        "insert into public.room_templates (name, connections) values ('t', %s::jsonb)", (connections,)
    )


def _ai_messages(cur: psycopg.Cursor[Any], value: str) -> None:
    # messages = [value]: one level more than value, so value is one level less than the column's limit
    cur.execute(
        "insert into public.ai_requests (provider, model, messages) values ('openai', 'm', %s::jsonb)",
        ("[" + value + "]",),
    )


def _receipt_result(cur: psycopg.Cursor[Any], value: str) -> None:
    result = '{"server": {"body": ' + value + "}}"
    cur.execute(
        "insert into public.sync_receipts (owner_id, change_id, result) values (auth.uid(), 'c', %s::jsonb)",
        (result,),
    )


# (writer, field named in the error, limit of the column, levels the writer wraps around the value)
COLUMNS = {
    "rooms.settings": (_rooms_settings, "rooms.settings", LIMIT, 0),
    "rooms.settings (update)": (_rooms_settings_update, "rooms.settings", LIMIT, 0),
    "room_elements.data": (_element_data, "room_elements.data", LIMIT, 0),
    "room_elements.data (update)": (_element_data_update, "room_elements.data", LIMIT, 0),
    "room_element_connections.data": (_connection_data, "room_element_connections.data", LIMIT, 0),
    "room_templates.elements": (_template_elements, "room_templates.elements", LIMIT + 2, 2),
    "room_templates.connections": (_template_connections, "room_templates.connections", LIMIT + 2, 2),
    "ai_requests.messages": (_ai_messages, "ai_requests.messages", LIMIT, 1),
    "sync_receipts.result": (_receipt_result, "sync_receipts.result", LIMIT + 2, 2),
}


@pytest.mark.parametrize("column", list(COLUMNS))
def test_client_written_json_columns_hold_the_limit(
    db: psycopg.Connection[Any], make_user: MakeUser, column: str
) -> None:
    write, field, limit, wrap = COLUMNS[column]
    user = make_user()
    at_limit = obj(limit - wrap)  # the stored column value nests exactly `limit` levels
    with act_as(db, user) as cur:
        write(cur, at_limit)
    for depth in (limit - wrap + 1, 10000):
        exc: psycopg.Error | None = None
        with act_as(db, user) as cur:
            try:
                write(cur, obj(depth))
            except psycopg.Error as error:
                exc = error
        assert_too_deep(exc, field, limit)


def test_the_service_role_path_is_guarded_too(db: psycopg.Connection[Any], make_user: MakeUser) -> None:
    owner = make_user()
    with act_as(db, None, "service_role") as cur:
        exc = error_of(cur, "select public.job_enqueue('export', %s::jsonb, %s)", (obj(LIMIT + 1), owner))
    assert_too_deep(exc, "job payload")
    assert db.execute("select count(*) from public.jobs where owner_id = %s", (owner,)).fetchone() == (0,)


def test_queue_rows_are_checked_when_their_json_is_written_not_on_every_update(
    db: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    """The depth guard of jobs.payload and ai_requests.messages fires on insert and on writes of
    that column (any role), and not on the queue's own updates: a row stored before the limit
    existed (simulated with triggers off) still runs to the end."""
    owner = make_user()
    job = db.execute(
        "select private.job_enqueue('export', %s::jsonb, %s)", ('{"format": "json"}', owner)
    ).fetchone()[0]
    with act_as(db, None, "service_role") as cur:
        exc = error_of(cur, "update public.jobs set payload = %s::jsonb where id = %s", (obj(LIMIT + 1), job))
    assert_too_deep(exc, "job payload")
    request = db.execute(
        "insert into public.ai_requests (user_id, provider, model, messages)"
        ' values (%s, \'openai\', \'m\', \'[{"role": "user", "content": "hi"}]\') returning id',
        (owner,),
    ).fetchone()[0]
    with act_as(db, None, "service_role") as cur:
        exc = error_of(
            cur,
            "update public.ai_requests set messages = %s::jsonb where id = %s",
            ("[" + obj(LIMIT) + "]", request),
        )
    assert_too_deep(exc, "ai_requests.messages")

    # A deep payload stored before the limit: the claim and the completion do not trip over it.
    db.execute("set session_replication_role = replica")
    try:
        db.execute(
            "update public.jobs set payload = %s::jsonb where id = %s",
            ('{"old": ' + obj(LIMIT + 5) + "}", job),
        )
    finally:
        db.execute("set session_replication_role = origin")
    db.execute(
        "update public.jobs set run_after = now() - interval '1 hour', priority = 100 where id = %s", (job,)
    )
    claimed = db.execute(
        "select id from private.job_claim('w-depth', array['export'], 1, interval '1 minute')"
    ).fetchall()
    assert claimed == [(job,)]
    done = db.execute(
        "select private.job_complete_many('w-depth', array[%s]::uuid[], null)", (job,)
    ).fetchall()
    assert done == [(job,)]
    assert db.execute("select status from public.jobs where id = %s", (job,)).fetchone() == ("succeeded",)


def test_every_client_writable_json_column_is_guarded(db: psycopg.Connection[Any]) -> None:
    """A new jsonb column that anon or authenticated may write needs a *_depth check (or a validator)."""
    writable = {
        row[0]
        for row in db.execute(
            """
            select c.relname || '.' || a.attname
              from pg_attribute a join pg_class c on c.oid = a.attrelid
             where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
               and a.attnum > 0 and not a.attisdropped and a.atttypid in ('json'::regtype, 'jsonb'::regtype)
               and exists (select 1 from unnest(array['anon', 'authenticated']) r
                            where has_column_privilege(r, c.oid, a.attnum, 'INSERT')
                               or has_column_privilege(r, c.oid, a.attnum, 'UPDATE'))
            """
        )
    }
    guarded = {
        row[0]
        for row in db.execute(
            """
            select c.relname || '.' || a.attname
              from pg_constraint k join pg_class c on c.oid = k.conrelid
              join pg_attribute a on a.attrelid = c.oid and a.attnum = any (k.conkey)
             where c.relnamespace = 'public'::regnamespace and k.contype = 'c'
               and pg_get_constraintdef(k.oid) like '%%private.json_check_depth(' || a.attname || ',%%'
            """
        )
    }
    # Columns of queue tables are guarded by private.json_depth_guard when written (a CHECK would
    # walk the JSON again on every claim and completion): BEFORE INSERT OR UPDATE OF <column>.
    guard_triggers = db.execute(
        """
        select c.relname, t.tgargs, pg_get_triggerdef(t.oid)
          from pg_trigger t join pg_class c on c.oid = t.tgrelid
         where c.relnamespace = 'public'::regnamespace
           and t.tgfoid = 'private.json_depth_guard()'::regprocedure
        """
    ).fetchall()
    guarded_on_write = set()
    for table, args, definition in guard_triggers:
        column = bytes(args).split(b"\x00")[0].decode()
        assert f"BEFORE INSERT OR UPDATE OF {column} ON public.{table} FOR EACH ROW" in definition, definition
        guarded_on_write.add(f"{table}.{column}")
    assert {"jobs.payload", "ai_requests.messages"} <= guarded_on_write
    validated_by_trigger = {"documents.body"}  # private.validate_document (documents_before_write)
    assert writable - guarded - guarded_on_write - validated_by_trigger == set()
    # written by RPCs (definer helpers), not by column grants: guarded all the same
    assert {"backups.kdf", "telemetry_events.props", "sync_conflicts.client_body"} <= guarded
