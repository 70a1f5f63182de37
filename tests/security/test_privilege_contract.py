"""The privilege contract: tests/security/privileges.toml against the catalog.

The suite runs once per platform flavour (BACKLINE_DEFAULT_PRIVILEGES=legacy,
as `supabase start`, and =none, as new hosted projects; .ci/run does both), and
the catalog must equal the declaration in each: a missing REVOKE shows up in
the legacy run, a missing GRANT in the none run, and a new table, column,
sequence or function without a declaration fails here until someone decides
what clients may do with it.

Columns the database maintains are declared per table:
- `never_written`: no client role (anon, authenticated) may insert or update them;
- `never_updated`: a client may set them on insert (a policy pins the value,
  e.g. owner_id = auth.uid()) but never change them afterwards.
Both are proven from the catalog and through act_as, the way PostgREST runs a
request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.helpers import act_as
from tests.security.privilege_contract import (
    CLIENT_ROLES,
    Catalog,
    Contract,
    load_contract,
    read_catalog,
    render_table,
)

Conn = psycopg.Connection[Any]

# Column names that always mean "the database maintains this": a new table
# with such a column writable by a client fails
# test_columns_named_as_maintained_are_not_client_writable.
MAINTAINED_NAME = re.compile(
    r"^(created_at|updated_at|version|plan|storage_used|token_hash|joined_at|attempts"
    r"|locked_by|locked_until|finished_at|use_count|.*_count|.*_version)$"
)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="module")
def catalog(shared_db_url: str) -> Catalog:
    with psycopg.connect(shared_db_url) as conn:
        return read_catalog(conn)


def test_every_table_is_declared_and_matches(catalog: Catalog, contract: Contract) -> None:
    undeclared = sorted(set(catalog.tables) - set(contract.tables))
    assert not undeclared, "declare these in tests/security/privileges.toml:\n\n" + "\n\n".join(
        render_table(name, catalog.tables[name]) for name in undeclared
    )
    gone = sorted(set(contract.tables) - set(catalog.tables))
    assert not gone, f"declared but missing from the database: {gone}"
    differ = {
        name: (contract.tables[name], catalog.tables[name])
        for name in catalog.tables
        if catalog.tables[name] != contract.tables[name]
    }
    assert not differ, "\n".join(
        f"{name}:\n  declared {want}\n  database {have}" for name, (want, have) in differ.items()
    )


def test_every_function_is_declared_and_matches(catalog: Catalog, contract: Contract) -> None:
    undeclared = sorted(set(catalog.functions) - set(contract.functions))
    assert not undeclared, "declare these under [functions]:\n" + "\n".join(
        f'"{sig}" = {catalog.functions[sig]}' for sig in undeclared
    )
    gone = sorted(set(contract.functions) - set(catalog.functions))
    assert not gone, f"declared but missing from the database: {gone}"
    differ = {
        sig: (sorted(contract.functions[sig]), catalog.functions[sig])
        for sig in catalog.functions
        if sorted(contract.functions[sig]) != sorted(catalog.functions[sig])
    }
    assert not differ, "\n".join(f"{sig}: declared {w}, database {h}" for sig, (w, h) in differ.items())


def test_every_sequence_is_declared_and_matches(catalog: Catalog, contract: Contract) -> None:
    assert catalog.sequences == contract.sequences


def test_maintained_columns_exist_and_no_client_may_write_them(catalog: Catalog, contract: Contract) -> None:
    for table, privileges in contract.tables.items():
        for column in contract.never_written[table] + contract.never_updated[table]:
            assert column in catalog.columns[table], f"{table}.{column} is declared but does not exist"
        for role in CLIENT_ROLES:
            granted = privileges.get(role, {})
            for column in contract.never_written[table]:
                for priv in ("insert", "update"):
                    cols = granted.get(priv, [])
                    assert cols != "*" and column not in cols, f"{role} may {priv} {table}.{column}"
            for column in contract.never_updated[table]:
                cols = granted.get("update", [])
                assert cols != "*" and column not in cols, f"{role} may update {table}.{column}"


def test_columns_named_as_maintained_are_not_client_writable(catalog: Catalog) -> None:
    """A column named like a counter, version, owner-set timestamp or token is never client-writable.

    This catches the new table whose created_at or *_count a client could set
    before anyone thinks of declaring it.
    """
    writable = [
        f"{role} may {priv} {table}.{column}"
        for table, privileges in catalog.tables.items()
        for role in CLIENT_ROLES
        for priv in ("insert", "update")
        for column in catalog.columns[table]
        if MAINTAINED_NAME.match(column)
        and (privileges.get(role, {}).get(priv) == "*" or column in privileges.get(role, {}).get(priv, []))
    ]
    assert not writable, writable


def test_client_roles_hold_no_truncate_references_or_trigger(catalog: Catalog) -> None:
    for table, privileges in catalog.tables.items():
        for role in ("anon", "authenticated", "service_role"):
            for priv in ("truncate", "references", "trigger"):
                assert priv not in privileges.get(role, {}), f"{role} holds {priv} on {table}"


def _write_statements(db: Conn, table: str, column: str, updates_only: bool) -> list[sql.Composed]:
    """An UPDATE (and INSERT) of the column that touches no row: privileges are checked anyway."""
    schema, name = table.split(".")
    target = sql.Identifier(schema, name)
    col = sql.Identifier(column)
    statements = [sql.SQL("update {} set {} = default where false").format(target, col)]
    row = db.execute(
        "select attgenerated <> '' or attidentity = 'a' from pg_attribute"
        " where attrelid = %s::regclass and attname = %s",
        (table, column),
    ).fetchone()
    generated = bool(row and row[0])  # nobody can insert those, the server refuses before privileges
    if not updates_only and not generated:
        statements.append(
            sql.SQL("insert into {} ({}) select {} from {} where false").format(target, col, col, target)
        )
    return statements


def test_clients_cannot_write_maintained_columns_through_act_as(
    db: Conn, contract: Contract, make_user: Callable[..., uuid.UUID]
) -> None:
    """PostgREST's own path: privileges are checked before any row is touched."""
    user = make_user()
    for table in contract.tables:
        for column, updates_only in [(c, False) for c in contract.never_written[table]] + [
            (c, True) for c in contract.never_updated[table]
        ]:
            for role, who in (("anon", None), ("authenticated", user)):
                for statement in _write_statements(db, table, column, updates_only):
                    with act_as(db, who, role=role) as cur, pytest.raises(errors.InsufficientPrivilege):
                        cur.execute(statement)


# -- the done-means of issue 12, on real rows -----------------------------------


def test_owner_cannot_raise_their_plan_or_reset_their_usage(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    user = make_user()
    for statement in (
        "update public.profiles set plan = 'pro' where id = %s",
        "update public.profiles set storage_used = 0 where id = %s",
        "update public.profiles set is_anonymous = false where id = %s",
        "update public.profiles set id = gen_random_uuid() where id = %s",
    ):
        with act_as(db, user) as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement, (user,))
    plan = db.execute("select plan from public.profiles where id = %s", (user,)).fetchone()
    assert plan == ("free",)


def test_owner_cannot_set_counters_version_or_owner_of_their_document(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    owner, other = make_user(), make_user()
    with act_as(db, owner, rollback=False) as cur:
        row = cur.execute(
            "insert into public.documents (kind, title, body)"
            " values ('folder', 'Mine', '{\"name\": \"Mine\"}') returning id"
        ).fetchone()
    assert row is not None
    doc = row[0]
    for column, value in (("fork_count", 1000), ("view_count", 10**6), ("version", 99), ("owner_id", other)):
        statement = sql.SQL("update public.documents set {} = %s where id = %s").format(
            sql.Identifier(column)
        )
        with act_as(db, owner) as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement, (value, doc))
    with act_as(db, owner) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(
            "insert into public.documents (kind, title, body, version)"
            " values ('folder', 'x', '{\"name\": \"x\"}', 7)"
        )
    counts = db.execute(
        "select fork_count, view_count, version, owner_id from public.documents where id = %s", (doc,)
    ).fetchone()
    assert counts == (0, 0, 1, owner)


def test_nobody_reads_plan_or_storage_used_of_a_profile(
    db: Conn, make_user: Callable[..., uuid.UUID]
) -> None:
    owner, stranger = make_user(), make_user()
    db.execute("update public.profiles set username = %s where id = %s", (f"u{owner.hex[:10]}", owner))
    for role, who in (("anon", None), ("authenticated", stranger), ("authenticated", owner)):
        for column in ("plan", "storage_used"):
            statement = sql.SQL("select {} from public.profiles").format(sql.Identifier(column))
            with act_as(db, who, role=role) as cur, pytest.raises(errors.InsufficientPrivilege):
                cur.execute(statement)
    # The owner reads their own plan through the RPC made for it.
    with act_as(db, owner) as cur:
        mine = cur.execute("select plan from public.my_profile()").fetchone()
    assert mine == ("free",)


def test_nothing_of_ours_is_granted_to_public(db: Conn) -> None:
    """EXECUTE and table privileges go to named roles: PostgreSQL's default EXECUTE for PUBLIC
    (what a new function has until revoked) would reach every role, present and future."""
    functions = db.execute(
        """
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'private')
          and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
          and (p.proacl is null or exists (select from aclexplode(p.proacl) a where a.grantee = 0))
        """
    ).fetchall()
    assert functions == [], "revoke execute ... from public, anon, authenticated, service_role"
    relations = db.execute(
        """
        select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('public', 'private') and c.relacl is not null
          and exists (select from aclexplode(c.relacl) a where a.grantee = 0)
        """
    ).fetchall()
    assert relations == []
