"""What the API roles may do, read from the catalog and from tests/security/privileges.toml.

The declaration is the contract: for every table, view, sequence and function in
our schemas it says what `anon`, `authenticated` and `service_role` may do, and
which columns the database maintains. test_privilege_contract.py compares it
with the catalog in both platform flavours.

To print the catalog in the declaration's format (to add a new object, then
review every line of it):

    .venv/bin/python -m tests.security.privilege_contract "$DATABASE_URL"
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from workers.check.privileges import granted_columns

CONTRACT_FILE = Path(__file__).with_name("privileges.toml")
API_ROLES = ("anon", "authenticated", "service_role")
CLIENT_ROLES = ("anon", "authenticated")
SCHEMAS = ("public", "private")
TABLE_PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")
SEQUENCE_PRIVILEGES = ("usage", "select", "update")

# role -> privilege -> "*" (table-wide) or the sorted columns
RolePrivileges = dict[str, dict[str, Any]]


@dataclass
class Catalog:
    tables: dict[str, RolePrivileges] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    sequences: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    functions: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Contract:
    tables: dict[str, RolePrivileges]
    never_written: dict[str, list[str]]
    never_updated: dict[str, list[str]]
    sequences: dict[str, dict[str, list[str]]]
    functions: dict[str, list[str]]


def _flag(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> bool:
    row = conn.execute(query, params).fetchone()
    return bool(row and row[0])


def read_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    """Effective privileges (grants to the role or to PUBLIC) on our objects."""
    cat = Catalog()
    rels = conn.execute(
        """
        select c.oid, n.nspname || '.' || c.relname, c.relkind::text
        from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
          and not exists (select from pg_catalog.pg_depend d
                          where d.objid = c.oid and d.deptype = 'e')
        order by 2
        """,
        (list(SCHEMAS),),
    ).fetchall()
    for oid, name, kind in rels:
        if kind == "S":
            cat.sequences[name] = {
                role: [
                    p
                    for p in SEQUENCE_PRIVILEGES
                    if _flag(conn, "select has_sequence_privilege(%s, %s, %s)", (role, oid, p))
                ]
                for role in API_ROLES
            }
            cat.sequences[name] = {r: ps for r, ps in cat.sequences[name].items() if ps}
            continue
        columns = [
            str(r[0])
            for r in conn.execute(
                "select attname from pg_catalog.pg_attribute"
                " where attrelid = %s and attnum > 0 and not attisdropped order by attname",
                (oid,),
            )
        ]
        cat.columns[name] = columns
        per_role: RolePrivileges = {}
        for role in API_ROLES:
            granted: dict[str, Any] = {}
            for priv in TABLE_PRIVILEGES:
                cols = granted_columns(conn, oid, role, priv)
                if cols:
                    granted[priv] = cols if cols == "*" else sorted(cols)
            if granted:
                per_role[role] = granted
        cat.tables[name] = per_role
    funcs = conn.execute(
        """
        select p.oid, n.nspname || '.' || p.proname
                      || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
        from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s)
          and not exists (select from pg_catalog.pg_depend d
                          where d.objid = p.oid and d.deptype = 'e')
        order by 2
        """,
        (list(SCHEMAS),),
    ).fetchall()
    for oid, signature in funcs:
        cat.functions[str(signature)] = [
            role
            for role in API_ROLES
            if _flag(conn, "select has_function_privilege(%s, %s, 'execute')", (role, oid))
        ]
    return cat


def load_contract(path: Path = CONTRACT_FILE) -> Contract:
    data = tomllib.loads(path.read_text())
    tables: dict[str, RolePrivileges] = {}
    never_written: dict[str, list[str]] = {}
    never_updated: dict[str, list[str]] = {}
    for name, spec in data.get("tables", {}).items():
        tables[name] = {
            role: {p: (v if v == "*" else sorted(v)) for p, v in spec[role].items()}
            for role in API_ROLES
            if role in spec
        }
        never_written[name] = list(spec.get("never_written", []))
        never_updated[name] = list(spec.get("never_updated", []))
    return Contract(
        tables=tables,
        never_written=never_written,
        never_updated=never_updated,
        sequences={k: dict(v) for k, v in data.get("sequences", {}).items()},
        functions={k: list(v) for k, v in data.get("functions", {}).items()},
    )


def _toml_value(value: Any) -> str:
    if value == "*":
        return '"*"'
    return "[" + ", ".join(f'"{v}"' for v in value) + "]"


def render_table(name: str, privileges: RolePrivileges) -> str:
    lines = [f'[tables."{name}"]']
    for role in API_ROLES:
        if role in privileges:
            inner = ", ".join(f"{p} = {_toml_value(v)}" for p, v in privileges[role].items())
            lines.append(f"{role} = {{ {inner} }}")
    return "\n".join(lines)


def render(cat: Catalog) -> str:
    """The catalog in the declaration's format (without the maintained-column lists)."""
    parts = [render_table(name, privs) for name, privs in cat.tables.items()]
    parts.append("[sequences]")
    parts.extend(
        f'"{name}" = {{ {", ".join(f"{r} = {_toml_value(p)}" for r, p in privs.items())} }}'
        for name, privs in cat.sequences.items()
    )
    parts.append("\n[functions]")
    parts.extend(f'"{sig}" = {_toml_value(roles)}' for sig, roles in cat.functions.items())
    return "\n\n".join(parts[: len(cat.tables)]) + "\n\n" + "\n".join(parts[len(cat.tables) :]) + "\n"


if __name__ == "__main__":
    with psycopg.connect(sys.argv[1]) as connection:
        print(render(read_catalog(connection)), end="")
