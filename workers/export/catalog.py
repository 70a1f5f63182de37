"""What belongs to a user, derived from the catalog so new modules are covered without code changes.

A user's rows: every table (outside `auth`, `private` included) with a
foreign key to auth.users(id), filtered on each such column. That covers
rows the user owns (`on delete cascade`: gone with the account) and rows
the user authored in something shared (`on delete set null`, e.g. chat
messages and elements in someone else's room: they stay, unattributed).
In exported rows, those columns keep only the user's own id: the id of any
other account (who invited them, who last edited their element) is
replaced by null, so an export never discloses other people's accounts.
A user's files: every storage object whose owner_id is the user or whose
first folder is the user's id (the per-user folder convention of every
bucket policy).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class UserTable:
    schema: str
    table: str
    columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    def where(self) -> sql.Composed:
        return sql.SQL(" or ").join(sql.SQL("{} = %(uid)s").format(sql.Identifier(c)) for c in self.columns)

    def select_rows(self) -> sql.Composed:
        """The user's rows as JSON, with other accounts' ids in the user columns replaced by null."""
        own_ids = sql.SQL(", ").join(
            sql.SQL("{}, case when t.{} = %(uid)s then t.{} end").format(
                sql.Literal(c), sql.Identifier(c), sql.Identifier(c)
            )
            for c in self.columns
        )
        return sql.SQL("select to_jsonb(t) || jsonb_build_object({}) from {}.{} t where {}").format(
            own_ids, sql.Identifier(self.schema), sql.Identifier(self.table), self.where()
        )

    def count_rows(self) -> sql.Composed:
        return sql.SQL("select count(*) from {}.{} where {}").format(
            sql.Identifier(self.schema), sql.Identifier(self.table), self.where()
        )


USER_TABLES_SQL = """
select n.nspname, c.relname, array_agg(a.attname::text order by a.attname)
  from pg_constraint k
  join pg_class c on c.oid = k.conrelid
  join pg_namespace n on n.oid = c.relnamespace
  join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
 where k.contype = 'f'
   and k.confrelid = 'auth.users'::regclass
   and array_length(k.conkey, 1) = 1
   and n.nspname <> 'auth'
 group by n.nspname, c.relname
 order by n.nspname, c.relname
"""

OBJECTS_SQL = """
select bucket_id, name, coalesce((metadata ->> 'size')::bigint, 0), coalesce(metadata ->> 'mimetype', '')
  from storage.objects
 where (owner_id = %(uid)s::text or (storage.foldername(name))[1] = %(uid)s::text)
   and (%(all)s or bucket_id <> 'exports')
 order by bucket_id, name
"""

ACCOUNT_SQL = """
select jsonb_build_object(
  'id', id, 'email', email, 'phone', phone, 'is_anonymous', is_anonymous,
  'created_at', created_at, 'last_sign_in_at', last_sign_in_at, 'email_confirmed_at', email_confirmed_at,
  'user_metadata', raw_user_meta_data, 'app_metadata', raw_app_meta_data)
  from auth.users where id = %(uid)s
"""


@dataclass(frozen=True)
class UserObject:
    bucket: str
    name: str
    size: int
    mimetype: str


def user_tables(conn: psycopg.Connection[Any]) -> list[UserTable]:
    """Every table outside `auth` with a single-column foreign key to auth.users(id)."""
    return [UserTable(s, t, tuple(cols)) for s, t, cols in conn.execute(USER_TABLES_SQL).fetchall()]


def user_objects(
    conn: psycopg.Connection[Any], user_id: uuid.UUID, *, include_exports: bool
) -> list[UserObject]:
    rows = conn.execute(OBJECTS_SQL, {"uid": user_id, "all": include_exports}).fetchall()
    return [UserObject(*r) for r in rows]


def account(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> dict[str, Any] | None:
    row = conn.execute(ACCOUNT_SQL, {"uid": user_id}).fetchone()
    return dict(row[0]) if row else None


def iter_rows(conn: psycopg.Connection[Any], table: UserTable, user_id: uuid.UUID) -> Iterator[Any]:
    """The user's rows of one table as JSON values, through a server-side cursor (flat memory)."""
    with conn.cursor(name=f"export_{table.schema}_{table.table}"[:60]) as cur:
        cur.itersize = 2000
        cur.execute(table.select_rows(), {"uid": user_id})
        for (value,) in cur:
            yield value


def referencing_rows(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> dict[str, int]:
    """Tables (and storage.objects) that still reference the user, with counts; empty when none."""
    left: dict[str, int] = {}
    for table in user_tables(conn):
        (n,) = conn.execute(table.count_rows(), {"uid": user_id}).fetchone() or (0,)
        if n:
            left[table.qualified] = int(n)
    (n,) = conn.execute(
        "select count(*) from storage.objects where owner_id = %s::text", (user_id,)
    ).fetchone() or (0,)
    if n:
        left["storage.objects"] = int(n)
    return left
