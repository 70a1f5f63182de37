"""Backline's schema as a list of named objects read from the catalog: what drift compares and
what supabase/schema.sql renders.

One reader serves both uses, so the snapshot shows exactly what `backline db diff`
compares. Scope: everything in `public` and `private`, and Backline's objects in
the platform's schemas (policies on auth/storage/realtime tables, triggers there
that call a Backline function, the buckets and extensions the migrations create).
Grants are those to PUBLIC and the API roles (anon, authenticated, service_role,
authenticator): the platform manages its own roles' grants, and hosted Supabase
gives its admin roles privileges the stand-in does not have.

Every definition is rendered by the server's own deparsers (pg_get_functiondef,
pg_get_constraintdef, pg_get_expr, ...) with an empty search_path, so names are
schema-qualified the same way on every server, and version noise is removed
(PostgreSQL 17's MAINTAIN privilege, 18's catalogued NOT NULL constraints) so
PostgreSQL 15 and the embedded 18 give identical objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from workers.db.expr_normalize import flatten_boolean_chains

OWN_SCHEMAS: Final = ("public", "private")
PLATFORM_SCHEMAS: Final = ("auth", "storage", "realtime")
API_ROLES: Final = ("anon", "authenticated", "service_role", "authenticator")
# Kinds compared only from the reference's side: the platform has more of them (hosted
# Supabase ships dozens of extensions; operators add buckets), which is not drift.
REFERENCE_ONLY_KINDS: Final = frozenset({"extension", "bucket"})

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class CatalogObject:
    """One schema object: `kind` + `name` identify it, `definition` is what must match.

    `parent` is the relation (or function/schema) the object belongs to, so the
    snapshot prints a table's columns, constraints, indexes, policies, triggers,
    grants and comments under it; `position` orders columns.
    """

    kind: str
    name: str
    definition: str
    parent: str = ""
    position: int = 0
    owner: tuple[str, str] | None = None  # the object this one exists for (a grant's table, ...)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    @property
    def owner_keys(self) -> tuple[tuple[str, str], ...]:
        """Keys of the object this one belongs to: dropping that drops this one too."""
        if self.owner is not None:
            kind, name = self.owner
            return ((kind, name), ("view", name)) if kind == "table" else ((kind, name),)
        if self.kind in ("column", "constraint", "index", "policy", "trigger", "publication"):
            return (("table", self.parent), ("view", self.parent))
        return ()


def read_catalog(conn: Conn) -> list[CatalogObject]:
    """Backline's objects in the database `conn` is connected to, in a stable order."""
    with conn.transaction():
        # Empty search_path: the deparsers then qualify every name outside pg_catalog.
        conn.execute("set local search_path = ''")
        objects = [
            *_schemas(conn),
            *_extensions(conn),
            *_types(conn),
            *_sequences(conn),
            *_relations(conn),
            *_columns(conn),
            *_constraints(conn),
            *_indexes(conn),
            *_policies(conn),
            *_functions(conn),
            *_triggers(conn),
            *_publications(conn),
            *_buckets(conn),
        ]
    return sorted(objects, key=lambda o: (o.parent, o.kind, o.position, o.name))


def _rows(conn: Conn, query: str, *params: object) -> list[tuple[Any, ...]]:
    return conn.execute(query.encode(), params).fetchall()


def _ident(name: str) -> str:
    """An identifier quoted the way quote_ident does (only when needed)."""
    simple = name.isidentifier() and name == name.lower() and name.isascii()
    return name if simple and name not in _RESERVED else '"' + name.replace('"', '""') + '"'


# Words quote_ident quotes in the names Backline uses; others are not valid table/column names anyway.
_RESERVED: Final = frozenset(
    {
        "user",
        "order",
        "group",
        "table",
        "select",
        "where",
        "from",
        "to",
        "default",
        "check",
        "limit",
        "offset",
        "end",
        "window",
        "primary",
        "references",
        "unique",
        "column",
        "constraint",
        "grant",
        "all",
        "and",
        "or",
        "not",
        "null",
        "true",
        "false",
        "case",
        "when",
        "then",
        "else",
        "desc",
        "asc",
        "with",
        "as",
        "on",
        "in",
        "is",
        "current_user",
        "session_user",
        "current_date",
        "current_time",
        "current_timestamp",
        "both",
        "leading",
        "trailing",
        "analyse",
        "analyze",
        "array",
        "cast",
        "collate",
        "create",
        "deferrable",
        "distinct",
        "do",
        "except",
        "fetch",
        "for",
        "foreign",
        "having",
        "initially",
        "intersect",
        "into",
        "lateral",
        "localtime",
        "localtimestamp",
        "only",
        "placing",
        "returning",
        "some",
        "symmetric",
        "union",
        "using",
        "variadic",
    }
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comment(target: str, name: str, text: str | None, parent: str) -> Iterator[CatalogObject]:
    if text:
        owner_kind = "function" if target == "procedure" else target
        yield CatalogObject(
            "comment",
            f"{target} {name}",
            f"comment on {target} {name} is {_literal(text)};",
            parent,
            owner=(owner_kind, name),
        )


_GRANT_ACL_SQL: Final = """
    select coalesce(nullif(a.grantee, 0)::regrole::text, 'PUBLIC') as grantee,
           string_agg(lower(a.privilege_type), ', ' order by a.privilege_type) as privileges
      from pg_catalog.aclexplode(%s::pg_catalog.aclitem[]) a
     where a.privilege_type <> 'MAINTAIN'
       and a.grantee <> %s::pg_catalog.oid
       and (a.grantee = 0 or a.grantee in
            (select oid from pg_catalog.pg_roles where rolname = any(%s)))
     group by 1 order by 1
"""


def _grants(
    conn: Conn, acl: Any, owner: int, on: str, parent: str, columns: str = ""
) -> Iterator[CatalogObject]:
    """`grant ... on <on> to <role>` objects for the API roles and PUBLIC in an ACL."""
    if acl is None:
        return
    kind_word, target = on.split(" ", 1)
    owner_key = (
        ("column", f"{target}.{columns.strip()[1:-1]}")
        if columns
        else ("function" if kind_word == "procedure" else kind_word, target)
    )
    for grantee, privileges in _rows(conn, _GRANT_ACL_SQL, acl, owner, list(API_ROLES)):
        privilege_text = ", ".join(f"{p}{columns}" for p in str(privileges).split(", "))
        yield CatalogObject(
            "grant",
            f"{on}{columns} to {grantee}",
            f"grant {privilege_text} on {on} to {grantee};",
            parent,
            owner=owner_key,
        )


def _schemas(conn: Conn) -> Iterator[CatalogObject]:
    for name, acl, owner, comment in _rows(
        conn,
        "select nspname, coalesce(nspacl, pg_catalog.acldefault('n', nspowner)), nspowner::oid,"
        " pg_catalog.obj_description(oid, 'pg_namespace')"
        " from pg_catalog.pg_namespace where nspname = any(%s) order by nspname",
        list(OWN_SCHEMAS),
    ):
        # public exists on every server; only its grants and comment are Backline's.
        yield CatalogObject("schema", name, f"create schema {_ident(name)};", name)
        yield from _grants(conn, acl, owner, f"schema {_ident(name)}", name)
        yield from _comment("schema", _ident(name), comment, name)


def _extensions(conn: Conn) -> Iterator[CatalogObject]:
    for name, schema in _rows(
        conn,
        "select e.extname, n.nspname from pg_catalog.pg_extension e"
        " join pg_catalog.pg_namespace n on n.oid = e.extnamespace"
        " where e.extname <> 'plpgsql' order by 1",
    ):
        yield CatalogObject(
            "extension",
            name,
            f"create extension if not exists {_ident(name)} with schema {_ident(schema)};",
            "extensions",
        )


_NOT_EXTENSION_MEMBER = (
    "not exists (select from pg_catalog.pg_depend d where d.classid = {cls}::regclass"
    " and d.objid = {oid} and d.deptype = 'e')"
)


def _types(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select t.oid, n.nspname, t.typname, t.typtype, pg_catalog.format_type(t.typbasetype, t.typtypmod),"
        " t.typnotnull, t.typdefault,"
        " (select string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' order by e.enumsortorder)"
        "    from pg_catalog.pg_enum e where e.enumtypid = t.oid),"
        " (select string_agg(pg_catalog.pg_get_constraintdef(c.oid), ' ' order by c.conname)"
        "    from pg_catalog.pg_constraint c where c.contypid = t.oid and c.contype = 'c'),"
        " (select string_agg(pg_catalog.quote_ident(a.attname) || ' ' ||"
        "        pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)"
        "    from pg_catalog.pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0"
        "     and not a.attisdropped),"
        " pg_catalog.obj_description(t.oid, 'pg_type')"
        " from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace"
        " where n.nspname = any(%s) and t.typtype in ('e', 'd', 'c')"
        " and (t.typtype <> 'c'"
        "      or (select c.relkind from pg_catalog.pg_class c where c.oid = t.typrelid) = 'c')"
        " and " + _NOT_EXTENSION_MEMBER.format(cls="'pg_type'", oid="t.oid"),
        list(OWN_SCHEMAS),
    )
    for _oid, schema, name, typtype, base, notnull, default, labels, checks, attrs, comment in rows:
        qualified = f"{_ident(schema)}.{_ident(name)}"
        if typtype == "e":
            definition = f"create type {qualified} as enum ({labels or ''});"
        elif typtype == "c":
            definition = f"create type {qualified} as ({attrs or ''});"
        else:
            definition = f"create domain {qualified} as {base}"
            definition += f" default {default}" if default else ""
            definition += " not null" if notnull else ""
            definition += f" {checks}" if checks else ""
            definition += ";"
        yield CatalogObject("type", qualified, definition, qualified)
        yield from _comment("type", qualified, comment, qualified)


def _sequences(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select n.nspname, c.relname, pg_catalog.format_type(s.seqtypid, null), s.seqincrement, s.seqmin,"
        " s.seqmax, s.seqstart, s.seqcache, s.seqcycle, c.relacl, c.relowner::oid,"
        " (select pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.relname) || '.'"
        "         || pg_catalog.quote_ident(a.attname)"
        "    from pg_catalog.pg_depend d join pg_catalog.pg_class t on t.oid = d.refobjid"
        "    join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace"
        "    join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid"
        "   where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'a'),"
        " pg_catalog.obj_description(c.oid, 'pg_class')"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_sequence s on s.seqrelid = c.oid"
        " where c.relkind = 'S' and n.nspname = any(%s)"
        # identity sequences belong to their column's definition
        " and not exists (select from pg_catalog.pg_depend d where d.classid = 'pg_class'::regclass"
        "   and d.objid = c.oid and d.deptype = 'i')"
        " and " + _NOT_EXTENSION_MEMBER.format(cls="'pg_class'", oid="c.oid"),
        list(OWN_SCHEMAS),
    )
    for schema, name, typ, inc, smin, smax, start, cache, cycle, acl, owner, owned_by, comment in rows:
        qualified = f"{_ident(schema)}.{_ident(name)}"
        definition = (
            f"create sequence {qualified} as {typ} increment by {inc} minvalue {smin} maxvalue {smax}"
            f" start with {start} cache {cache}{' cycle' if cycle else ''}"
            f"{f' owned by {owned_by}' if owned_by else ''};"
        )
        yield CatalogObject("sequence", qualified, definition, qualified)
        yield from _grants(conn, acl, owner, f"sequence {qualified}", qualified)
        yield from _comment("sequence", qualified, comment, qualified)


def _relations(conn: Conn) -> Iterator[CatalogObject]:
    """Tables (with RLS flags and replica identity) and views, with their grants and comments."""
    rows = _rows(
        conn,
        "select n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,"
        " c.relreplident,"
        " (select i.relname from pg_catalog.pg_index x join pg_catalog.pg_class i on i.oid = x.indexrelid"
        "   where x.indrelid = c.oid and x.indisreplident),"
        " case when c.relkind = 'p' then pg_catalog.pg_get_partkeydef(c.oid) end,"
        " case when c.relispartition then"
        "   (select pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname) || ' '"
        "           || pg_catalog.pg_get_expr(c.relpartbound, c.oid)"
        "      from pg_catalog.pg_inherits h join pg_catalog.pg_class p on p.oid = h.inhparent"
        "      join pg_catalog.pg_namespace pn on pn.oid = p.relnamespace where h.inhrelid = c.oid) end,"
        " case when c.relkind in ('v', 'm') then pg_catalog.pg_get_viewdef(c.oid) end,"
        " c.reloptions, c.relacl, c.relowner::oid, pg_catalog.obj_description(c.oid, 'pg_class')"
        " from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = any(%s)"
        " and " + _NOT_EXTENSION_MEMBER.format(cls="'pg_class'", oid="c.oid"),
        list(OWN_SCHEMAS),
    )
    for (
        schema,
        name,
        relkind,
        persistence,
        rls,
        force,
        replident,
        replindex,
        partkey,
        partof,
        viewdef,
        options,
        acl,
        owner,
        comment,
    ) in rows:
        qualified = f"{_ident(schema)}.{_ident(name)}"
        with_options = f" with ({', '.join(options)})" if options else ""
        if relkind in ("v", "m"):
            kind = "view" if relkind == "v" else "materialized view"
            definition = f"create {kind} {qualified}{with_options} as\n{str(viewdef).rstrip().rstrip(';')};"
            yield CatalogObject("view", qualified, definition, qualified)
        else:
            lines = [
                f"create {'unlogged ' if persistence == 'u' else ''}"
                f"{'foreign ' if relkind == 'f' else ''}table {qualified}"
                + (f" partition of {partof}" if partof else "")
                + (f" partition by {partkey}" if partkey else "")
                + with_options
            ]
            if rls:
                lines.append(f"alter table {qualified} enable row level security;")
            if force:
                lines.append(f"alter table {qualified} force row level security;")
            if replident == "f":
                lines.append(f"alter table {qualified} replica identity full;")
            elif replident == "n":
                lines.append(f"alter table {qualified} replica identity nothing;")
            elif replident == "i":
                lines.append(
                    f"alter table {qualified} replica identity using index {_ident(str(replindex))};"
                )
            yield CatalogObject("table", qualified, "\n".join(lines), qualified)
        yield from _grants(conn, acl, owner, f"table {qualified}", qualified)
        yield from _comment("view" if relkind in ("v", "m") else "table", qualified, comment, qualified)


def _columns(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select n.nspname, c.relname, a.attname, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod),"
        " a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,"
        " case when a.attcollation <> t.typcollation then"
        "   (select pg_catalog.quote_ident(co.collname) from pg_catalog.pg_collation co"
        "     where co.oid = a.attcollation) end,"
        " a.attacl, c.relowner::oid, pg_catalog.col_description(c.oid, a.attnum), c.relkind"
        " from pg_catalog.pg_attribute a join pg_catalog.pg_class c on c.oid = a.attrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_type t on t.oid = a.atttypid"
        " left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
        " where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = any(%s)"
        " and a.attnum > 0 and not a.attisdropped"
        " and " + _NOT_EXTENSION_MEMBER.format(cls="'pg_class'", oid="c.oid"),
        list(OWN_SCHEMAS),
    )
    for (
        schema,
        table,
        column,
        attnum,
        typ,
        notnull,
        default,
        identity,
        generated,
        collation,
        acl,
        owner,
        comment,
        relkind,
    ) in rows:
        parent = f"{_ident(schema)}.{_ident(table)}"
        qualified = f"{parent}.{_ident(column)}"
        if relkind in ("v", "m"):
            # A view's columns are its query's; only grants and comments are the column's own.
            yield from _grants(conn, acl, owner, f"table {parent}", parent, f" ({_ident(column)})")
            yield from _comment("column", qualified, comment, parent)
            continue
        fragment = f"{_ident(column)} {typ}"
        if collation:
            fragment += f" collate {collation}"
        if generated == "s":
            fragment += f" generated always as ({default}) stored"
        elif identity:
            fragment += f" generated {'always' if identity == 'a' else 'by default'} as identity"
        elif default is not None:
            fragment += f" default {default}"
        if notnull:
            fragment += " not null"
        yield CatalogObject("column", qualified, fragment, parent, int(attnum))
        yield from _grants(conn, acl, owner, f"table {parent}", parent, f" ({_ident(column)})")
        yield from _comment("column", qualified, comment, parent)


def _constraints(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select n.nspname, c.relname, k.conname, pg_catalog.pg_get_constraintdef(k.oid),"
        " pg_catalog.obj_description(k.oid, 'pg_constraint')"
        " from pg_catalog.pg_constraint k join pg_catalog.pg_class c on c.oid = k.conrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        # 'n' (PostgreSQL 18's catalogued NOT NULL) is the column's `not null`
        " where n.nspname = any(%s) and k.contype in ('p', 'u', 'f', 'c', 'x')"
        " and " + _NOT_EXTENSION_MEMBER.format(cls="'pg_class'", oid="c.oid"),
        list(OWN_SCHEMAS),
    )
    for schema, table, name, definition, comment in rows:
        parent = f"{_ident(schema)}.{_ident(table)}"
        key = f"{_ident(name)} on {parent}"
        yield CatalogObject(
            "constraint",
            key,
            f"alter table {parent} add constraint {_ident(name)} {flatten_boolean_chains(str(definition))};",
            parent,
        )
        yield from _comment("constraint", key, comment, parent)


def _indexes(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select n.nspname, c.relname, i.relname, pg_catalog.pg_get_indexdef(x.indexrelid),"
        " pg_catalog.obj_description(i.oid, 'pg_class')"
        " from pg_catalog.pg_index x join pg_catalog.pg_class c on c.oid = x.indrelid"
        " join pg_catalog.pg_class i on i.oid = x.indexrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s)"
        # an index that implements a constraint is that constraint
        " and not exists (select from pg_catalog.pg_constraint k where k.conindid = x.indexrelid"
        "   and k.conrelid = x.indrelid and k.contype in ('p', 'u', 'x'))"
        " and " + _NOT_EXTENSION_MEMBER.format(cls="'pg_class'", oid="c.oid"),
        list(OWN_SCHEMAS),
    )
    for schema, table, name, definition, comment in rows:
        parent = f"{_ident(schema)}.{_ident(table)}"
        qualified = f"{_ident(schema)}.{_ident(name)}"
        yield CatalogObject(
            "index", qualified, f"{_lower_keywords(flatten_boolean_chains(str(definition)))};", parent
        )
        yield from _comment("index", qualified, comment, parent)


def _lower_keywords(indexdef: str) -> str:
    """pg_get_indexdef's upper-case keywords in the house style (identifiers untouched)."""
    for word in (
        "CREATE UNIQUE INDEX ",
        "CREATE INDEX ",
        " ON ONLY ",
        " ON ",
        " USING ",
        " INCLUDE ",
        " WHERE ",
        " NULLS NOT DISTINCT",
    ):
        indexdef = indexdef.replace(word, word.lower())
    return indexdef


_POLICY_COMMANDS: Final = {"r": "select", "a": "insert", "w": "update", "d": "delete", "*": "all"}


def _policies(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive,"
        " (select string_agg(case when r = 0 then 'public' else pg_catalog.quote_ident(r::regrole::text) end,"
        "         ', ' order by case when r = 0 then 'public' else r::regrole::text end)"
        "    from unnest(p.polroles) r),"
        " pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),"
        " pg_catalog.obj_description(p.oid, 'pg_policy')"
        " from pg_catalog.pg_policy p join pg_catalog.pg_class c on c.oid = p.polrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s)",
        [*OWN_SCHEMAS, *PLATFORM_SCHEMAS],
    )
    for schema, table, name, command, permissive, roles, using, check, comment in rows:
        parent = f"{_ident(schema)}.{_ident(table)}"
        key = f'"{name}" on {parent}'
        definition = (
            f"create policy {_quoted(name)} on {parent} as {'permissive' if permissive else 'restrictive'}"
            f" for {_POLICY_COMMANDS[str(command)]} to {roles}"
        )
        definition += f"\n  using ({flatten_boolean_chains(using)})" if using is not None else ""
        definition += f"\n  with check ({flatten_boolean_chains(check)})" if check is not None else ""
        yield CatalogObject("policy", key, definition + ";", parent)
        yield from _comment("policy", key, comment, parent)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _functions(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),"
        " pg_catalog.pg_get_functiondef(p.oid),"
        " coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)), p.proowner::oid, p.prokind,"
        " pg_catalog.obj_description(p.oid, 'pg_proc')"
        " from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = any(%s) and p.prokind in ('f', 'p')"
        " and " + _NOT_EXTENSION_MEMBER.format(cls="'pg_proc'", oid="p.oid"),
        list(OWN_SCHEMAS),
    )
    for schema, name, args, definition, acl, owner, prokind, comment in rows:
        qualified = f"{_ident(schema)}.{_ident(name)}({args})"
        body = str(definition).rstrip() + ";"
        yield CatalogObject("function", qualified, body, qualified)
        kind = "procedure" if prokind == "p" else "function"
        yield from _grants(conn, acl, owner, f"{kind} {qualified}", qualified)
        yield from _comment(kind, qualified, comment, qualified)


def _triggers(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select n.nspname, c.relname, t.tgname, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled,"
        " pg_catalog.obj_description(t.oid, 'pg_trigger')"
        " from pg_catalog.pg_trigger t join pg_catalog.pg_class c on c.oid = t.tgrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " join pg_catalog.pg_proc f on f.oid = t.tgfoid"
        " join pg_catalog.pg_namespace fn on fn.oid = f.pronamespace"
        " where not t.tgisinternal and (n.nspname = any(%s)"
        # on platform tables, the triggers that call Backline's functions are Backline's
        "   or (n.nspname = any(%s) and fn.nspname = any(%s)))",
        list(OWN_SCHEMAS),
        list(PLATFORM_SCHEMAS),
        list(OWN_SCHEMAS),
    )
    states = {"D": "disable", "R": "enable replica", "A": "enable always"}
    for schema, table, name, definition, enabled, comment in rows:
        parent = f"{_ident(schema)}.{_ident(table)}"
        key = f"{_ident(name)} on {parent}"
        text = _lower_trigger_keywords(flatten_boolean_chains(str(definition))) + ";"
        if enabled in states:
            text += f"\nalter table {parent} {states[str(enabled)]} trigger {_ident(name)};"
        yield CatalogObject("trigger", key, text, parent)
        yield from _comment("trigger", key, comment, parent)


def _lower_trigger_keywords(triggerdef: str) -> str:
    for word in (
        "CREATE TRIGGER ",
        "CREATE CONSTRAINT TRIGGER ",
        " BEFORE ",
        " AFTER ",
        " INSTEAD OF ",
        " INSERT",
        " UPDATE OF ",
        " UPDATE",
        " DELETE",
        " TRUNCATE",
        " OR ",
        " ON ",
        " FOR EACH ROW",
        " FOR EACH STATEMENT",
        " WHEN ",
        " EXECUTE FUNCTION ",
        " REFERENCING ",
        " NEW TABLE AS ",
        " OLD TABLE AS ",
        " DEFERRABLE",
        " INITIALLY DEFERRED",
        " INITIALLY IMMEDIATE",
        " FROM ",
    ):
        triggerdef = triggerdef.replace(word, word.lower())
    return triggerdef


def _publications(conn: Conn) -> Iterator[CatalogObject]:
    rows = _rows(
        conn,
        "select p.pubname, n.nspname, c.relname, pg_catalog.pg_get_expr(r.prqual, r.prrelid)"
        " from pg_catalog.pg_publication_rel r join pg_catalog.pg_publication p on p.oid = r.prpubid"
        " join pg_catalog.pg_class c on c.oid = r.prrelid"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = any(%s)",
        list(OWN_SCHEMAS),
    )
    for publication, schema, table, row_filter in rows:
        parent = f"{_ident(schema)}.{_ident(table)}"
        where = f" where ({row_filter})" if row_filter else ""
        yield CatalogObject(
            "publication",
            f"{_ident(publication)} {parent}",
            f"alter publication {_ident(publication)} add table {parent}{where};",
            parent,
        )


def _buckets(conn: Conn) -> Iterator[CatalogObject]:
    if _rows(conn, "select pg_catalog.to_regclass('storage.buckets') is null")[0][0]:
        return
    rows = _rows(
        conn,
        "select id, name, public, file_size_limit,"
        " (select string_agg(pg_catalog.quote_literal(m), ', ' order by m)"
        "    from unnest(allowed_mime_types) m)"
        " from storage.buckets order by id",
    )
    for bucket_id, name, public, size_limit, mime_types in rows:
        mimes = f"array[{mime_types}]" if mime_types else "null"
        yield CatalogObject(
            "bucket",
            str(bucket_id),
            "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) values "
            f"({_literal(str(bucket_id))}, {_literal(str(name))}, {str(bool(public)).lower()}, "
            f"{'null' if size_limit is None else size_limit}, {mimes});",
            "storage.buckets",
        )


def by_key(objects: Iterable[CatalogObject]) -> dict[tuple[str, str], CatalogObject]:
    return {o.key: o for o in objects}
