"""What a role may do with a relation, as PostgreSQL decides it (grants to the role or PUBLIC).

Shared by the API reference (`backline gen api-docs`) and the privilege contract tests, so the
documentation and the contract read grants the same way.
"""

from __future__ import annotations

from typing import Any, Literal

import psycopg

WholeTable = Literal["*"]
COLUMN_PRIVILEGES = ("select", "insert", "update", "references")


def granted_columns(
    conn: psycopg.Connection[Any], relation: int | str, role: str, privilege: str
) -> WholeTable | list[str]:
    """`"*"` when `role` holds `privilege` on the whole relation, else the columns (in column
    order) it holds it on, possibly none. `relation` is an oid or a qualified name."""
    target = str(relation)
    row = conn.execute(
        "select has_table_privilege(%s, %s::regclass, %s)", (role, target, privilege)
    ).fetchone()
    if row and row[0]:
        return "*"
    if privilege.lower() not in COLUMN_PRIVILEGES:
        return []  # delete, truncate, trigger exist only for the whole table
    return [
        str(name)
        for (name,) in conn.execute(
            """
            select a.attname from pg_catalog.pg_attribute a
             where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
               and has_column_privilege(%s, a.attrelid, a.attnum, %s)
             order by a.attnum
            """,
            (target, role, privilege),
        )
    ]
