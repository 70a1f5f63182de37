"""A catalog-driven attack on everything a client can reach, as every persona.

The world: user A owns a row in every table that has an owner (seeded below,
as the platform would store it), with a canary string in everything private;
A's room has a viewer V and an editor E. Then each persona (anon, an anonymous
user, a stranger, a token for a deleted user, and, for what is not their room's,
V and E) goes through every table and function the catalog exposes:

- reads A's rows that are not public (must see none, or be refused);
- updates every column it holds UPDATE on, and deletes, on A's rows (must touch none);
- inserts a copy of A's row with A as owner / A's room (must be refused);
- calls every function it may execute with A's ids in its uuid parameters
  (must change nothing of A's and return no canary).

A's rows are found from the catalog: a foreign key to auth.users/profiles makes
a column an owner column, one to rooms a room column. A table with an owner or
a room column and no row of A fails test_every_owned_table_is_attacked, so a new
table is attacked the day it is added (seed it in `seed_world`).

Runs in both platform flavours, like the whole suite.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.helpers import act_as, create_user, keep_as
from workers.check.privileges import granted_columns

Conn = psycopg.Connection[Any]
CANARY = "canary7f3a9c"


@dataclass
class Persona:
    name: str
    role: str
    user: uuid.UUID | None
    claims: dict[str, Any] | None = None
    room_member: str | None = None  # 'viewer' / 'editor' of A's room


@dataclass
class Table:
    name: str  # schema.table
    columns: list[str]
    owner_columns: list[str]
    room_column: str | None
    public_rows: str = "false"  # rows of A any client may read by policy
    references: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (table, column)

    @property
    def ident(self) -> sql.Identifier:
        schema, name = self.name.split(".")
        return sql.Identifier(schema, name)


@dataclass
class World:
    a: uuid.UUID
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    personas: list[Persona] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


# Rows of A that policies show to others on purpose.
PUBLIC_ROWS = {
    "public.documents": "visibility = 'public' and deleted_at is null",
    "public.room_templates": "visibility = 'public' or owner_id is null",
    "public.profiles": "username is not null",
}
# What A's room's members may legitimately read and write there.
MEMBER_READS = {
    "public.rooms",
    "public.room_members",
    "public.room_elements",
    "public.room_element_connections",
    "public.room_chat_messages",
    "public.profiles",
}
# uuid columns that point at a row without a foreign key (checked by policy instead).
REFERENCES_WITHOUT_FK = {
    ("public.ai_requests", "chat_element_id"): ("public.room_elements", "id"),
    ("public.file_links", "ref_id"): ("public.documents", "id"),
    # the audit trail outlives its rows and accounts (no FK, see its migration)
    ("public.audit_changes", "user_id"): ("auth.users", "id"),
    ("public.audit_changes", "actor_id"): ("auth.users", "id"),
}
# Owner columns without a foreign key (the audit trail: whose row a change was).
OWNER_COLUMNS_WITHOUT_FK = {"public.audit_changes": ["user_id"]}
EDITOR_WRITES = {"public.room_elements", "public.room_element_connections", "public.room_chat_messages"}


def _tables(db: Conn) -> list[Table]:
    rows = db.execute(
        """
        select c.oid::regclass::text,
               array(select a.attname::text from pg_attribute a
                     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum),
               array(select a.attname::text from pg_constraint k
                     join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
                     where k.conrelid = c.oid and k.contype = 'f' and cardinality(k.conkey) = 1
                       and k.confrelid in ('auth.users'::regclass, 'public.profiles'::regclass)
                     order by 1),
               (select a.attname::text from pg_constraint k
                join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
                where k.conrelid = c.oid and k.contype = 'f' and cardinality(k.conkey) = 1
                  and k.confrelid = 'public.rooms'::regclass
                order by 1 limit 1),
               array(select a.attname::text || '=' || k.confrelid::regclass::text || '=' || ra.attname::text
                     from pg_constraint k
                     join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
                     join pg_attribute ra on ra.attrelid = k.confrelid and ra.attnum = k.confkey[1]
                     where k.conrelid = c.oid and k.contype = 'f' and cardinality(k.conkey) = 1
                       and k.confrelid::regclass::text not in ('auth.users', 'profiles', 'public.profiles')
                     order by 1)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p')
        order by 1
        """
    ).fetchall()
    tables = []
    for name, columns, owners, room, refs in rows:
        qualified = name if "." in name else f"public.{name}"
        owner_columns = list(owners)
        if qualified == "public.profiles":
            owner_columns = ["id"]
        owner_columns = OWNER_COLUMNS_WITHOUT_FK.get(qualified, owner_columns)
        if qualified == "public.rooms":
            room = "id"
        elif room is None and "room_id" in columns:
            room = "room_id"  # a composite key into the room's rows still scopes the row to the room
        references = {}
        for ref in refs:
            column, target, target_column = ref.split("=")
            references[column] = (target if "." in target else f"public.{target}", target_column)
        for (table_name, column), target_ref in REFERENCES_WITHOUT_FK.items():
            if table_name == qualified:
                references[column] = target_ref
        public_rows = PUBLIC_ROWS.get(qualified, "false")
        tables.append(Table(qualified, list(columns), owner_columns, room, public_rows, references))
    return tables


def _one(db: Conn, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = db.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def seed_world(db: Conn, *, a_anonymous: bool = False) -> World:
    """A's things in every owned table, stored as the platform stores them (as the owner role).

    a_anonymous: A is an anonymous user (the account-merge test moves all of it).
    """
    if a_anonymous:
        a = create_user(db, anonymous=True)
    else:
        a = create_user(db, email=f"a-{uuid.uuid4().hex[:8]}@example.test")
    b = create_user(db, email=f"b-{uuid.uuid4().hex[:8]}@example.test")
    viewer, editor = create_user(db), create_user(db)
    anonymous = create_user(db, anonymous=True)
    w = World(a=a)
    ids = w.ids
    ids["doc"] = _one(
        db,
        "insert into public.documents (owner_id, kind, title, body) values (%s, 'folder', %s,"
        " jsonb_build_object('name', %s::text)) returning id",
        (a, CANARY, CANARY),
    )
    ids["public_doc"] = _one(
        db,
        "insert into public.documents (owner_id, kind, title, body, visibility)"
        " values (%s, 'item', 'open', '{\"name\": \"open\"}', 'public') returning id",
        (a,),
    )
    ids["b_doc"] = _one(
        db,
        "insert into public.documents (owner_id, kind, title, body, visibility)"
        " values (%s, 'item', 'b', '{\"name\": \"b\"}', 'public') returning id",
        (b,),
    )
    ids["share"] = _one(
        db,
        "insert into public.share_links (document_id, owner_id, token_hash)"
        " values (%s, %s, sha256(%s::bytea)) returning id",
        (ids["doc"], a, CANARY),
    )
    _one(
        db,
        "insert into public.backups (owner_id, version, ciphertext, nonce, kdf) values"
        " (%s, 1, %s::bytea, '12345678'::bytea, jsonb_build_object('note', %s::text)) returning version",
        (a, CANARY, CANARY),
    )
    ids["conflict"] = _one(
        db,
        "insert into public.sync_conflicts (owner_id, document_id, change_id, strategy,"
        " base_version, client_title, client_body, server_version, server_title, server_body)"
        " values (%s, %s, 'c1', 'manual', 1, %s, '{}', 2, %s, '{}') returning id",
        (a, ids["doc"], CANARY, CANARY),
    )
    db.execute(
        "insert into public.sync_receipts (owner_id, change_id, result) values (%s, 'c1', %s)",
        (a, json.dumps({"note": CANARY})),
    )
    ids["room"] = _one(
        db, "insert into public.rooms (owner_id, title) values (%s, %s) returning id", (a, CANARY)
    )
    db.execute(
        "insert into public.room_members (room_id, user_id, role) values (%s, %s, 'owner')"
        " on conflict do nothing",
        (ids["room"], a),
    )
    db.execute(
        "insert into public.room_members (room_id, user_id, role, invited_by) values"
        " (%s, %s, 'viewer', %s), (%s, %s, 'editor', %s)",
        (ids["room"], viewer, a, ids["room"], editor, a),
    )
    ids["element"] = _one(
        db,
        "insert into public.room_elements (room_id, kind, data, created_by) values"
        " (%s, 'note', jsonb_build_object('text', %s::text), %s) returning id",
        (ids["room"], CANARY, a),
    )
    ids["chat"] = _one(
        db,
        "insert into public.room_elements (room_id, kind, created_by) values (%s, 'chat', %s) returning id",
        (ids["room"], a),
    )
    ids["connection"] = _one(
        db,
        "insert into public.room_element_connections (room_id, from_element_id,"
        " to_element_id, label, created_by) values (%s, %s, %s, %s, %s) returning id",
        (ids["room"], ids["element"], ids["chat"], CANARY, a),
    )
    db.execute(
        "insert into public.room_chat_messages (room_id, element_id, role, content, author_id)"
        " values (%s, %s, 'user', %s, %s)",
        (ids["room"], ids["chat"], CANARY, a),
    )
    ids["invite"] = _one(
        db,
        "insert into public.room_invites (room_id, token_hash, role, created_by, expires_at)"
        " values (%s, sha256('invite'::bytea), 'viewer', %s, now() + interval '1 day')"
        " returning id",
        (ids["room"], a),
    )
    ids["template"] = _one(
        db,
        "insert into public.room_templates (owner_id, name, description) values (%s, %s, %s) returning id",
        (a, CANARY, CANARY),
    )
    db.execute(
        "insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id) values"
        " (%s, 'samples', %s, 'document', %s)",
        (a, f"{a}/{CANARY}.wav", ids["doc"]),
    )
    db.execute(
        "insert into public.upload_scans (object_id, bucket_id, object_name, owner_id, declared_type)"
        " values (gen_random_uuid(), 'samples', %s, %s, 'audio/wav')",
        (f"{a}/{CANARY}.wav", a),
    )
    ids["key"] = _one(
        db,
        "insert into public.ai_keys (user_id, provider, label, last4) values"
        " (%s, 'openai', %s, 'abcd') returning id",
        (a, CANARY),
    )
    ids["ai_request"] = _one(
        db,
        "insert into public.ai_requests (user_id, provider, model, messages) values"
        " (%s, 'openai', 'gpt-4o-mini', jsonb_build_array(%s::text)) returning id",
        (a, CANARY),
    )
    db.execute(
        "update public.ai_requests set chat_element_id = %s where id = %s", (ids["chat"], ids["ai_request"])
    )
    ids["usage"] = _one(
        db,
        "insert into public.ai_usage (user_id, provider, model) values"
        " (%s, 'openai', 'gpt-4o-mini') returning id",
        (a,),
    )
    ids["job"] = _one(
        db,
        "insert into public.jobs (kind, payload, owner_id) values"
        " ('echo', jsonb_build_object('note', %s::text), %s) returning id",
        (CANARY, a),
    )
    db.execute(
        "insert into public.privacy_consents (user_id, telemetry) values (%s, true)"
        " on conflict (user_id) do update set telemetry = true",
        (a,),
    )
    db.execute(
        "insert into public.telemetry_events (user_id, name, occurred_at, props) values"
        " (%s, 'app.opened', now(), jsonb_build_object('note', %s::text))",
        (a, CANARY),
    )
    db.execute(
        "insert into public.abuse_reports (document_id, reporter_id, reason, details) values"
        " (%s, %s, 'spam', %s)",
        (ids["b_doc"], a, CANARY),
    )
    db.execute(
        "insert into public.audit_log (user_id, action, details) values"
        " (%s, 'security.test', jsonb_build_object('note', %s::text))",
        (a, CANARY),
    )
    db.execute(
        "insert into public.billing_customers (customer_id, user_id, linked_by_event) values"
        " (%s, %s, 'evt_test')",
        (f"cus_{CANARY}", a),
    )
    db.execute(
        "insert into public.billing_subscriptions (subscription_id, customer_id, status, plan_id,"
        " state_source, state_at, state_event_id, user_id) values"
        " (%s, %s, 'active', 'pro', 'subscription', now(), 'evt_test', %s)",
        (f"sub_{CANARY}", f"cus_{CANARY}", a),
    )
    ids["notification"] = _one(
        db,
        "insert into public.notifications (user_id, kind, message) values (%s, 'moderation.takedown', %s)"
        " returning id",
        (a, CANARY),
    )
    deleted = uuid.uuid4()  # a token for an account that no longer exists
    w.personas = [
        Persona("anon", "anon", None),
        Persona("anonymous user", "authenticated", anonymous, {"is_anonymous": True}),
        Persona("stranger", "authenticated", b),
        Persona("deleted user", "authenticated", deleted),
        Persona("room viewer", "authenticated", viewer, room_member="viewer"),
        Persona("room editor", "authenticated", editor, room_member="editor"),
    ]
    w.tables = _tables(db)
    return w


@pytest.fixture
def world(db: Conn) -> World:
    return seed_world(db)


def _mine(table: Table, w: World, persona: Persona | None = None) -> sql.Composable:
    """The predicate selecting A's rows of this table (owner is A, or in A's room).

    With a persona: minus the rows that are the persona's own (a member's own
    membership row in A's room, say).
    """
    theirs: sql.Composable = sql.SQL("")
    if persona is not None and persona.user is not None and table.owner_columns:
        theirs = sql.SQL(" and not ({})").format(
            sql.SQL(" or ").join(
                sql.SQL("{} is not distinct from {}").format(
                    sql.Identifier(c), sql.Literal(str(persona.user))
                )
                for c in table.owner_columns
            )
        )
    return sql.SQL("({}{})").format(_owned_by_a(table, w), theirs)


def _owned_by_a(table: Table, w: World) -> sql.Composable:
    parts: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Literal(str(w.a))) for c in table.owner_columns
    ]
    if table.room_column:
        parts.append(
            sql.SQL("{} = {}").format(sql.Identifier(table.room_column), sql.Literal(str(w.ids["room"])))
        )
    if not parts:
        return sql.SQL("true")  # reference data: every row is "someone else's"
    return sql.SQL("({})").format(sql.SQL(" or ").join(parts))


def _is_members_business(table: Table, persona: Persona) -> bool:
    return persona.room_member is not None and table.room_column is not None


def _privileged_columns(db: Conn, role: str, table: Table, privilege: str) -> list[str]:
    granted = granted_columns(db, table.name, role, privilege)
    return table.columns if granted == "*" else granted


def _snapshot(db: Conn, w: World) -> dict[str, str]:
    out = {}
    for table in w.tables:
        out[table.name] = _one(
            db,
            sql.SQL(
                "select coalesce(md5(string_agg(to_jsonb(t)::text, '|' order by to_jsonb(t)::text)), '')"
                " from {} t where {}"
            )
            .format(table.ident, _mine(table, w))
            .as_string(db),
        )
    return out


def _attempt(
    db: Conn, p: Persona, statement: sql.Composable, params: tuple[Any, ...] = ()
) -> tuple[int, Any]:
    """Run as the persona, kept like a committed request; a refusal rolls its savepoint back."""
    try:
        with keep_as(db, p.user, p.role) if p.claims is None else _keep_with_claims(db, p) as cur:
            cur.execute(statement, params)
            rows = cur.fetchall() if cur.description else None
            return cur.rowcount, rows
    except psycopg.Error:
        return 0, None


def _keep_with_claims(db: Conn, p: Persona) -> Any:
    claims = {"sub": str(p.user), "role": p.role, **(p.claims or {})}
    return act_as(db, p.user, p.role, claims=claims, rollback=False)


def test_every_owned_table_is_attacked(db: Conn, world: World) -> None:
    empty = [
        t.name
        for t in world.tables
        if (t.owner_columns or t.room_column)
        and not _one(
            db, sql.SQL("select count(*) from {} where {}").format(t.ident, _mine(t, world)).as_string(db)
        )
    ]
    assert not empty, f"seed a row of A in seed_world() for: {empty}"


def test_every_uuid_reference_is_known(db: Conn) -> None:
    """A uuid column that names another row without a foreign key must be declared above."""
    undeclared = [
        f"{table}.{column}"
        for table, column in db.execute(
            """
            select c.oid::regclass::text, a.attname::text
            from pg_attribute a join pg_class c on c.oid = a.attrelid
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('r', 'p') and a.attnum > 0
              and not a.attisdropped and a.atttypid = 'uuid'::regtype
              and not exists (select from pg_constraint k where k.conrelid = c.oid
                              and k.contype in ('f', 'p') and a.attnum = any(k.conkey))
              and not exists (select from pg_index i where i.indrelid = c.oid  -- a surrogate key
                              and i.indisunique and i.indnkeyatts = 1 and i.indkey[0] = a.attnum)
            """
        ).fetchall()
        if (table if "." in table else f"public.{table}", column) not in REFERENCES_WITHOUT_FK
    ]
    assert not undeclared, f"add to REFERENCES_WITHOUT_FK (or give them a foreign key): {undeclared}"


def test_no_persona_reads_what_is_not_theirs(db: Conn, world: World) -> None:
    leaks = []
    for p in world.personas:
        for t in world.tables:
            if not (t.owner_columns or t.room_column):
                continue  # reference data is readable on purpose (or not at all)
            if _is_members_business(t, p) and t.name in MEMBER_READS:
                continue
            if p.room_member and t.name in MEMBER_READS and t.name == "public.profiles":
                continue  # room mates see each other's profile
            query = sql.SQL("select count(*) from {} where {} and not ({})").format(
                t.ident, _mine(t, world, p), sql.SQL(t.public_rows)
            )
            _, rows = _attempt(db, p, query)
            if rows and rows[0][0]:
                leaks.append(f"{p.name} reads {rows[0][0]} of A's rows in {t.name}")
    assert not leaks, leaks


def test_no_persona_changes_or_deletes_what_is_not_theirs(db: Conn, world: World) -> None:
    before = _snapshot(db, world)
    changed = []
    for p in world.personas:
        for t in world.tables:
            if _is_members_business(t, p) and (p.room_member == "editor" and t.name in EDITOR_WRITES):
                continue
            for column in _privileged_columns(db, p.role, t, "update"):
                statement = sql.SQL("update {} set {} = {} where {}").format(
                    t.ident, sql.Identifier(column), sql.Identifier(column), _mine(t, world, p)
                )
                count, _ = _attempt(db, p, statement)
                if count:
                    changed.append(f"{p.name} updated {t.name}.{column} on {count} of A's rows")
            count, _ = _attempt(db, p, sql.SQL("delete from {} where {}").format(t.ident, _mine(t, world, p)))
            if count:
                changed.append(f"{p.name} deleted {count} of A's rows in {t.name}")
    assert not changed, changed
    assert _snapshot(db, world) == before


def _insert_copy(db: Conn, p: Persona, t: Table, row: dict[str, Any], insertable: list[str]) -> bool:
    """Insert `row` (a fresh id) with the columns the persona may insert; True if it went in."""
    if "id" in row and "id" in insertable:
        row["id"] = str(uuid.uuid4())
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in insertable if c in row)
    statement = sql.SQL("insert into {} ({}) select {} from jsonb_populate_record(null::{}, %s)").format(
        t.ident, columns, columns, t.ident
    )
    count, _ = _attempt(db, p, statement, (json.dumps(row),))
    return bool(count)


def test_no_persona_creates_rows_in_a_name_or_room(db: Conn, world: World) -> None:
    forged = []
    for p in world.personas:
        for t in world.tables:
            targets = t.owner_columns + ([t.room_column] if t.room_column else [])
            if not targets or (
                _is_members_business(t, p) and p.room_member == "editor" and t.name in EDITOR_WRITES
            ):
                continue
            insertable = _privileged_columns(db, p.role, t, "insert")
            if not any(c in insertable for c in targets):
                continue  # the persona cannot even name an owner or a room here
            sample = db.execute(
                sql.SQL("select to_jsonb(t) from {} t where {} limit 1").format(t.ident, _mine(t, world))
            ).fetchone()
            assert sample is not None, t.name
            row = dict(sample[0])
            if _insert_copy(db, p, t, row, insertable):
                forged.append(f"{p.name} inserted a row of A's into {t.name}")
    assert not forged, forged


def test_no_persona_points_its_rows_at_what_is_not_theirs(db: Conn, world: World) -> None:
    """Own rows whose references name A's private objects (another room's element, A's document)."""
    by_name = {t.name: t for t in world.tables}
    forged = []
    for p in world.personas:
        if p.user is None:
            continue
        for t in world.tables:
            insertable = _privileged_columns(db, p.role, t, "insert")
            sample = db.execute(
                sql.SQL("select to_jsonb(t) from {} t where {} limit 1").format(
                    t.ident, _owned_by_a(t, world)
                )
            ).fetchone()
            if sample is None or not insertable:
                continue
            row = dict(sample[0])
            foreign = []
            for column, (target_name, target_column) in t.references.items():
                target = by_name.get(target_name)
                if target is None or column not in insertable or row.get(column) is None:
                    continue
                if not (target.owner_columns or target.room_column):
                    continue  # reference data (kinds, plans) belongs to nobody
                hidden = _one(
                    db,
                    sql.SQL("select count(*) from {} where {} = {} and {} and not ({})")
                    .format(
                        target.ident,
                        sql.Identifier(target_column),
                        sql.Literal(row[column]),
                        _mine(target, world, p),
                        sql.SQL(target.public_rows),
                    )
                    .as_string(db),
                )
                if hidden and not (p.room_member and target.room_column):
                    foreign.append(column)
            if not foreign:
                continue
            for column in t.owner_columns:
                row[column] = str(p.user)
            if _insert_copy(db, p, t, row, insertable):
                forged.append(f"{p.name} inserted into {t.name} a row referencing A's {', '.join(foreign)}")
    assert not forged, forged


def _functions(db: Conn) -> Iterator[tuple[str, list[str], list[str]]]:
    rows = db.execute(
        """
        select p.oid::regprocedure::text, p.proname::text,
               coalesce(p.proargnames[1:p.pronargs], '{}')::text[],
               array(select format_type(t, null) from unnest(p.proargtypes) t)
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.prokind = 'f'
        order by 1
        """
    ).fetchall()
    for _, name, arg_names, arg_types in rows:
        yield str(name), list(arg_names), list(arg_types)


ID_FOR_PARAMETER = {
    "p_document_id": "doc",
    "p_room_id": "room",
    "p_template_id": "template",
    "p_conflict_id": "conflict",
    "p_key_id": "key",
    "p_usage_id": "usage",
    "p_request_id": "ai_request",
}


def _calls(
    name: str, args: list[str], types: list[str], w: World, me: uuid.UUID | None
) -> Iterator[sql.Composed]:
    """One call per choice of A's ids for the uuid parameters; NULL elsewhere."""
    choices: list[str | None] = [None]
    if "p_id" in args:
        choices = ["doc", "share", "job", "key", "room", "conflict", "element"]
    for choice in choices:
        values: list[sql.Composable] = []
        for arg, typ in zip(args, types, strict=True):
            if typ == "uuid" and arg == "p_new_owner":
                value: Any = str(me) if me else None
            elif typ == "uuid" and arg == "p_id":
                value = str(w.ids[choice]) if choice else None
            elif typ == "uuid":
                value = str(w.ids[ID_FOR_PARAMETER[arg]]) if arg in ID_FOR_PARAMETER else str(w.a)
            else:
                value = None
            values.append(sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(typ)))
        yield sql.SQL("select to_jsonb(r)::text from public.{}({}) r").format(
            sql.Identifier(name), sql.SQL(", ").join(values)
        )


def test_no_function_hands_over_what_is_not_yours(db: Conn, world: World) -> None:
    before = _snapshot(db, world)
    leaks = []
    for p in world.personas:
        for name, args, types in _functions(db):
            if not _one(
                db,
                "select bool_or(has_function_privilege(%s, p.oid, 'execute')) from pg_proc p"
                " where p.proname = %s and p.pronamespace = 'public'::regnamespace",
                (p.role, name),
            ):
                continue
            if p.room_member and "room" in name:
                continue  # members act on their room by design; strangers are covered above
            for call in _calls(name, args, types, world, p.user):
                _, rows = _attempt(db, p, call)
                text = json.dumps(rows, default=str) if rows else ""
                if CANARY in text or str(world.ids["doc"]) in text:
                    leaks.append(f"{p.name}: {call.as_string(db)} returned A's private data")
    assert not leaks, leaks
    after = _snapshot(db, world)
    changed = [t for t in before if before[t] != after[t]]
    assert not changed, f"A's rows changed in {changed}"


def test_the_suite_can_see_a_leak(db: Conn, world: World, make_user: Callable[..., uuid.UUID]) -> None:
    """The attack's own control: open a hole on purpose and the read check finds it."""
    db.execute('create policy "test hole" on public.rooms for select to authenticated using (true)')
    stranger = next(p for p in world.personas if p.name == "stranger")
    rooms = next(t for t in world.tables if t.name == "public.rooms")
    _, rows = _attempt(
        db, stranger, sql.SQL("select count(*) from {} where {}").format(rooms.ident, _mine(rooms, world))
    )
    assert rows and rows[0][0] == 1
