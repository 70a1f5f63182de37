"""The API reference (docs/api.md) read from the migrated database's catalog.

What a frontend calling Supabase directly needs, all of it from the database
itself so it cannot drift from the schema: every table and view of the exposed
schema with its columns, types and `comment on` text; what `anon` and
`authenticated` may select, insert, update and delete (their grants, table-wide
or per column, read with has_*_privilege); the row level security policies by
name; the constraints and triggers a write can run into; every RPC with its
signature, comment, who may execute it and the errors it may raise with the
HTTP status PostgREST 12 answers (workers.check.postgrest_status), read from
the RAISE statements of its body, of the functions it calls and of the triggers
on the tables it writes (workers.check.raise_statements); and the pre-request
hook's errors, which any request may get.

Everything is sorted by name (code points, not the server's collation), and
nothing depends on the server version or the platform's flavour of default
privileges, so the output is byte-identical wherever the migrations ran.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from workers.check.postgrest_status import http_status
from workers.check.privileges import granted_columns
from workers.check.raise_statements import RaisedError, raised_errors, resolve_sqlstate

__all__ = ["API_ROLES", "build_reference", "generate_api_docs", "render_markdown"]

Conn = psycopg.Connection[Any]

API_ROLES = ("anon", "authenticated")
SCANNED_SCHEMAS = ("public", "private")
_RELKINDS = {
    "r": "table",
    "p": "table (partitioned)",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}
_CONSTRAINTS = {
    "p": ("23505", "primary key"),
    "u": ("23505", "unique"),
    "f": ("23503", "foreign key"),
    "c": ("23514", "check"),
    "x": ("23P01", "exclusion"),
}
_CALL = re.compile(r"\b(public|private)\s*\.\s*\"?([a-z_][a-z0-9_]*)\"?\s*\(", re.I)
_WRITE = re.compile(
    r"\b(?:insert\s+into|update|delete\s+from|merge\s+into)\s+(public|private)\s*\.\s*\"?([a-z_][a-z0-9_]*)",
    re.I,
)
_COMMENT_OR_STRING = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    default: str | None
    comment: str | None


@dataclass(frozen=True)
class Access:
    """One role's grants on a relation: None = nothing, () = every column, else those columns."""

    select: tuple[str, ...] | None
    insert: tuple[str, ...] | None
    update: tuple[str, ...] | None
    delete: bool


@dataclass(frozen=True)
class DocError:
    sqlstate: str
    code: str
    message: str
    hint: str
    source: str


@dataclass
class Relation:
    name: str
    kind: str
    comment: str | None
    rls: bool
    realtime: bool
    columns: list[Column]
    access: dict[str, Access]
    policies: list[tuple[str, str, str]]  # (name, command, roles)
    constraints: list[tuple[str, str, str, str]]  # (sqlstate, kind, name, columns)
    trigger_errors: list[DocError]


@dataclass
class Function:
    name: str
    arguments: str
    identity: str
    result: str
    comment: str | None
    security_definer: bool
    volatility: str
    callers: tuple[str, ...]
    inputs: tuple[str, ...] = ()  # argument names a call passes, optional ones ending in '?'
    errors: list[DocError] = field(default_factory=list)


@dataclass
class Reference:
    schema: str
    relations: list[Relation]
    functions: list[Function]
    request_hook: str | None
    request_errors: list[DocError]


# -- reading the catalog ---------------------------------------------------------------


def _rows(conn: Conn, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return list(conn.execute(query, params).fetchall())


def _code_body(text: str) -> str:
    return _COMMENT_OR_STRING.sub(" ", text)


class _ErrorGraph:
    """The errors each function of public/private may raise, with what it calls and writes."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.by_oid: dict[int, tuple[str, str, list[RaisedError]]] = {}
        self.by_name: dict[str, list[int]] = {}
        self.calls: dict[int, set[str]] = {}
        self.writes: dict[int, set[str]] = {}
        self.triggers: dict[str, set[int]] = {}
        self.sqlstates: dict[str, str] = {}
        rows = _rows(
            conn,
            """
            select p.oid::int8, n.nspname, p.proname, l.lanname, p.prosrc
              from pg_proc p
              join pg_namespace n on n.oid = p.pronamespace
              join pg_language l on l.oid = p.prolang
             where n.nspname = any(%s)
               and not exists (select 1 from pg_depend d
                                where d.classid = 'pg_proc'::regclass and d.objid = p.oid
                                  and d.deptype = 'e')
            """,
            (list(SCANNED_SCHEMAS),),
        )
        for oid, schema, name, language, body in rows:
            qualified = f"{schema}.{name}"
            errors = raised_errors(body) if language == "plpgsql" else []
            self.by_oid[oid] = (qualified, language, errors)
            self.by_name.setdefault(qualified, []).append(oid)
            code = _code_body(body or "")
            self.calls[oid] = {f"{s.lower()}.{n.lower()}" for s, n in _CALL.findall(code)}
            self.writes[oid] = {f"{s.lower()}.{n.lower()}" for s, n in _WRITE.findall(code)}
        for table, function in _rows(
            conn,
            """
            select c.relnamespace::regnamespace::text || '.' || c.relname, t.tgfoid::int8
              from pg_trigger t join pg_class c on c.oid = t.tgrelid
             where not t.tgisinternal and c.relnamespace::regnamespace::text = any(%s)
            """,
            (list(SCANNED_SCHEMAS),),
        ):
            self.triggers.setdefault(table, set()).add(function)

    def sqlstate(self, code: str) -> str:
        if code not in self.sqlstates:
            try:
                self.sqlstates[code] = resolve_sqlstate(self.conn, code)
            except ValueError:
                self.sqlstates[code] = "?"
        return self.sqlstates[code]

    def reachable(self, start: Iterable[int]) -> list[int]:
        """The functions `start` may run: itself, what it calls, the triggers of what it writes."""
        seen: list[int] = []
        stack = sorted(start, reverse=True)
        while stack:
            oid = stack.pop()
            if oid in seen or oid not in self.by_oid:
                continue
            seen.append(oid)
            nxt: set[int] = set()
            for name in self.calls[oid]:
                nxt.update(self.by_name.get(name, ()))
            for table in self.writes[oid]:
                nxt.update(self.triggers.get(table, ()))
            stack.extend(sorted(nxt - set(seen), key=lambda o: self.by_oid[o][0], reverse=True))
        return seen

    def errors(self, start: Iterable[int]) -> list[DocError]:
        """The distinct errors of every function `start` may run, its own first, then by source."""
        start = list(start)
        found: dict[tuple[str, str, str], DocError] = {}
        reached = self.reachable(start)
        ordered = [o for o in reached if o in start] + sorted(
            (o for o in reached if o not in start), key=lambda o: self.by_oid[o][0]
        )
        for oid in ordered:
            source, _language, errors = self.by_oid[oid]
            for error in errors:
                state = self.sqlstate(error.code)
                key = (state, error.message, error.hint)
                if key not in found:
                    found[key] = DocError(state, error.code, error.message, error.hint, source)
        return list(found.values())


def _access(conn: Conn, oid: int, role: str) -> Access:
    def columns_with(privilege: str) -> tuple[str, ...] | None:
        granted = granted_columns(conn, oid, role, privilege)
        if granted == "*":
            return ()
        return tuple(granted) if granted else None

    return Access(
        select=columns_with("SELECT"),
        insert=columns_with("INSERT"),
        update=columns_with("UPDATE"),
        delete=granted_columns(conn, oid, role, "DELETE") == "*",
    )


def build_reference(conn: Conn, schema: str = "public") -> Reference:
    """Everything the reference says, read from the catalog of the database `conn` is on."""
    graph = _ErrorGraph(conn)
    relations: list[Relation] = []
    for oid, name, kind, comment, rls in _rows(
        conn,
        """
        select c.oid::int8, c.relname, c.relkind::text, obj_description(c.oid, 'pg_class'), c.relrowsecurity
          from pg_class c
         where c.relnamespace = %s::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
        """,
        (schema,),
    ):
        columns = [
            Column(*row)
            for row in _rows(
                conn,
                """
                select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                       case when a.attgenerated = 's' then 'generated: ' || pg_get_expr(d.adbin, d.adrelid)
                            when a.attidentity <> '' then 'identity'
                            else pg_get_expr(d.adbin, d.adrelid) end,
                       col_description(a.attrelid, a.attnum)
                  from pg_attribute a
                  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
                 where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
                 order by a.attnum
                """,
                (oid,),
            )
        ]
        realtime = conn.execute(
            """
            select exists (select 1 from pg_publication_tables
                            where pubname = 'supabase_realtime' and schemaname = %s and tablename = %s)
            """,
            (schema, name),
        ).fetchone()
        policies = sorted(
            (str(p), str(cmd), ", ".join(sorted(roles)))
            for p, cmd, roles in _rows(
                conn,
                "select policyname, cmd, roles::text[] from pg_policies"
                " where schemaname = %s and tablename = %s",
                (schema, name),
            )
        )
        constraints = sorted(
            (
                _CONSTRAINTS[contype][0],
                _CONSTRAINTS[contype][1],
                str(conname),
                ", ".join(str(c) for c in (cols or [])),
            )
            for conname, contype, cols in _rows(
                conn,
                """
                select k.conname, k.contype::text,
                       array(select a.attname from unnest(k.conkey) with ordinality u(n, i)
                               join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n
                              order by u.i)::text[]
                  from pg_constraint k
                 where k.conrelid = %s and k.contype in ('p', 'u', 'f', 'c', 'x')
                """,
                (oid,),
            )
        )
        relations.append(
            Relation(
                name=name,
                kind=_RELKINDS[kind],
                comment=comment,
                rls=bool(rls),
                realtime=bool(realtime and realtime[0]),
                columns=columns,
                access={role: _access(conn, oid, role) for role in API_ROLES},
                policies=policies,
                constraints=constraints,
                trigger_errors=graph.errors(graph.triggers.get(f"{schema}.{name}", ())),
            )
        )
    functions: list[Function] = []
    for oid, name, arguments, identity, result, comment, definer, volatility, names, defaults in _rows(
        conn,
        """
        select p.oid::int8, p.proname, pg_get_function_arguments(p.oid),
               pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
               obj_description(p.oid, 'pg_proc'), p.prosecdef, p.provolatile::text,
               array(select coalesce(a.name, '')
                       from unnest(p.proargnames, p.proargmodes::text[]) with ordinality a(name, mode, i)
                      where coalesce(a.mode, 'i') in ('i', 'b', 'v')
                      order by a.i)::text[],
               p.pronargdefaults
          from pg_proc p
         where p.pronamespace = %s::regnamespace and p.prokind = 'f'
           and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
        """,
        (schema,),
    ):
        callers = tuple(
            role
            for role in (*API_ROLES, "service_role")
            if (
                row := conn.execute(
                    "select has_function_privilege(%s, %s, 'EXECUTE')", (role, oid)
                ).fetchone()
            )
            and row[0]
        )
        functions.append(
            Function(
                name=name,
                arguments=arguments,
                identity=identity,
                result=result,
                comment=comment,
                security_definer=bool(definer),
                volatility={"i": "immutable", "s": "stable", "v": "volatile"}[volatility],
                callers=callers,
                inputs=tuple(
                    arg + ("?" if index >= len(names or []) - defaults else "")
                    for index, arg in enumerate(names or [])
                ),
                errors=graph.errors([oid]),
            )
        )
    hook_row = conn.execute(
        """
        select split_part(s, '=', 2)
          from pg_db_role_setting r, unnest(r.setconfig) s
         where r.setrole = (select oid from pg_roles where rolname = 'authenticator')
           and r.setdatabase in (0, (select oid from pg_database where datname = current_database()))
           and s like 'pgrst.db\\_pre\\_request=%%'
         order by r.setdatabase desc
         limit 1
        """
    ).fetchone()
    hook = str(hook_row[0]) if hook_row else None
    hook_errors = graph.errors(graph.by_name.get(hook, ())) if hook else []
    relations.sort(key=lambda r: r.name)
    functions.sort(key=lambda f: (f.name, f.identity))
    return Reference(schema, relations, functions, hook, hook_errors)


# -- markdown --------------------------------------------------------------------------


def _cell(text: str | None) -> str:
    """Text fit for one markdown table cell."""
    if not text:
        return ""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _status(sqlstate: str) -> str:
    if sqlstate == "?":
        return "decided at run time"
    if sqlstate == "42501":
        return "403 (401 without a user token)"
    return str(http_status(sqlstate))


def _error_table(errors: Sequence[DocError], *, source: bool = True) -> list[str]:
    header = "| HTTP | SQLSTATE | message | hint |" + (" raised in |" if source else "")
    lines = [header, "|---|---|---|---|" + ("---|" if source else "")]
    for error in sorted(errors, key=lambda e: (_sort_status(e.sqlstate), e.sqlstate)):
        state = error.sqlstate if error.code in (error.sqlstate, "?") else f"{error.sqlstate} ({error.code})"
        row = f"| {_status(error.sqlstate)} | {state} | {_cell(error.message)} | {_cell(error.hint)} |"
        lines.append(row + (f" {_code(error.source)} |" if source else ""))
    return lines


def _sort_status(sqlstate: str) -> int:
    return 999 if sqlstate == "?" else http_status(sqlstate)


def _columns_text(granted: tuple[str, ...] | None) -> str:
    if granted is None:
        return "no"
    if granted == ():
        return "all columns"
    return ", ".join(granted)


def _relation_lines(schema: str, relation: Relation) -> list[str]:
    lines = [f"### {relation.name}", ""]
    lines.append(relation.comment.strip() if relation.comment else "_No comment._")
    lines.append("")
    facts = [f"{relation.kind} `{schema}.{relation.name}`"]
    if relation.kind in ("table", "table (partitioned)"):
        facts.append("row level security " + ("on" if relation.rls else "**off**"))
    if relation.realtime:
        facts.append("Realtime: in publication `supabase_realtime`")
    lines += ["; ".join(facts) + ".", ""]
    lines += ["| column | type | null | default | description |", "|---|---|---|---|---|"]
    for column in relation.columns:
        lines.append(
            f"| {column.name} | {_cell(column.type)} | {'' if column.not_null else 'yes'} |"
            f" {_cell(column.default)} | {_cell(column.comment)} |"
        )
    lines += ["", "| role | select | insert | update | delete |", "|---|---|---|---|---|"]
    for role, access in relation.access.items():
        lines.append(
            f"| {role} | {_columns_text(access.select)} | {_columns_text(access.insert)} |"
            f" {_columns_text(access.update)} | {'yes' if access.delete else 'no'} |"
        )
    lines.append("")
    if relation.policies:
        lines.append("Policies (which rows each granted command reaches):")
        lines.append("")
        for policy, command, roles in relation.policies:
            lines.append(f"- {_cell(policy)} ({command.lower()}; {roles})")
        lines.append("")
    if relation.constraints:
        lines.append("Constraints a write can violate:")
        lines.append("")
        for state, kind, name, cols in relation.constraints:
            on = f" on ({cols})" if cols else ""
            lines.append(f"- {_status(state)}, {state}: {kind} `{name}`{on}")
        lines.append("")
    if relation.trigger_errors:
        lines.append("Errors its triggers may raise on a write:")
        lines.append("")
        lines += _error_table(relation.trigger_errors)
        lines.append("")
    return lines


def _function_lines(schema: str, overloads: Sequence[Function]) -> list[str]:
    """One heading per RPC name; each overload with its signature, callers and errors."""
    lines = [f"### {overloads[0].name}", ""]
    if len(overloads) > 1:
        lines += [
            f"{len(overloads)} overloads; PostgREST picks the one whose argument names the call uses.",
            "",
        ]
    for function in overloads:
        lines.append(function.comment.strip() if function.comment else "_No comment._")
        lines += [
            "",
            "```sql",
            f"{schema}.{function.name}({function.arguments})",
            f"  returns {function.result}",
            "```",
            "",
        ]
        method = "GET or POST" if function.volatility != "volatile" else "POST"
        callers = ", ".join(function.callers) if function.callers else "nobody"
        lines.append(
            f"Call: `supabase.rpc('{function.name}'{_rpc_args(function.inputs)})`"
            f" ({method} `/rest/v1/rpc/{function.name}`)."
            f" Executable by: {callers}."
            f" Runs as {'its owner (security definer)' if function.security_definer else 'the caller'};"
            f" {function.volatility}."
        )
        lines.append("")
        if function.errors:
            lines.append(
                "Errors it may raise (its own, then those of the functions it calls"
                " and of the triggers on the tables it writes):"
            )
            lines.append("")
            lines += _error_table(function.errors)
        else:
            lines.append("Errors it raises itself: none.")
        lines.append("")
    return lines


def _rpc_args(inputs: Sequence[str]) -> str:
    """The argument object of a supabase-js call: `, { p_a, p_b? }` (optional ones marked)."""
    return ", { " + ", ".join(inputs) + " }" if inputs else ""


def render_markdown(reference: Reference) -> str:
    """docs/api.md for the reference."""
    schema = reference.schema
    reachable = [r for r in reference.relations if any(_reaches(a) for a in r.access.values())]
    server_only = [r for r in reference.relations if r not in reachable]
    client_rpcs = [f for f in reference.functions if set(f.callers) & set(API_ROLES)]
    server_rpcs = [f for f in reference.functions if f not in client_rpcs]
    lines = [
        "# API reference",
        "",
        "<!-- Generated from the migrated database by `backline gen all`; do not edit by hand. -->",
        "",
        f"What a frontend may read, write and call in the `{schema}` schema through the Data API",
        "(PostgREST, `supabase-js`), read from the database catalog: tables and views with their",
        "columns and `comment on` text, what the roles may do (their grants), the row level security",
        "policies by name, and every RPC with the errors it may raise and the HTTP status PostgREST 12",
        "answers for them. Types for the same schema: `supabase/types/database.ts`.",
        "",
        "- `anon`: a request without a user's token (the publishable/anon key alone).",
        "- `authenticated`: a request with a signed-in user's token, anonymous sign-ins included.",
        "- `service_role`: the secret key, for servers only; it bypasses row level security.",
        "",
        "A grant says which commands and columns a role may use at all; the policies then decide",
        "which rows: a select returns only the rows they allow, an update or delete of a row they hide",
        "changes nothing (an empty answer, not an error), and an insert or update whose new row they",
        "refuse fails with 42501 (HTTP 403). A column not listed under insert or update is maintained",
        "by the database; writing it fails with 42501 as well. Missing rows in RPCs are `PTxyz` codes:",
        "PostgREST answers HTTP xyz.",
        "",
    ]
    if reference.request_hook:
        lines += [
            "## Every request",
            "",
            f"PostgREST runs `{reference.request_hook}` before every request (its `db-pre-request` hook);",
            "any request may therefore fail with:",
            "",
            *_error_table(reference.request_errors),
            "",
        ]
    lines += ["## Contents", ""]
    lines.append("Tables and views a client role can reach: " + _links(r.name for r in reachable) + ".")
    lines.append("")
    if server_only:
        lines.append(
            "Server only (no grant to anon or authenticated): " + _links(r.name for r in server_only) + "."
        )
        lines.append("")
    lines.append("RPCs a client may call: " + _links(dict.fromkeys(f.name for f in client_rpcs)) + ".")
    lines.append("")
    if server_rpcs:
        lines.append("Server-only RPCs: " + _links(dict.fromkeys(f.name for f in server_rpcs)) + ".")
        lines.append("")
    lines += ["## Tables and views", ""]
    for relation in reachable:
        lines += _relation_lines(schema, relation)
    if server_only:
        lines += ["## Server-only tables", ""]
        for relation in server_only:
            lines += _relation_lines(schema, relation)
    lines += ["## RPC functions", ""]
    for name in dict.fromkeys(f.name for f in client_rpcs):
        lines += _function_lines(schema, [f for f in client_rpcs if f.name == name])
    if server_rpcs:
        lines += ["## Server-only functions", ""]
        for name in dict.fromkeys(f.name for f in server_rpcs):
            lines += _function_lines(schema, [f for f in server_rpcs if f.name == name])
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def _reaches(access: Access) -> bool:
    return (
        access.select is not None or access.insert is not None or access.update is not None or access.delete
    )


def _links(names: Iterable[str]) -> str:
    return ", ".join(f"[{name}](#{_anchor(name)})" for name in names) or "none"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading (lower case, punctuation dropped, spaces as hyphens)."""
    return re.sub(r"[^a-z0-9_\- ]", "", heading.lower()).replace(" ", "-")


def generate_api_docs(database_url: str, schema: str = "public") -> str:
    """docs/api.md for the database at `database_url` (read only; nothing is changed)."""
    with psycopg.connect(database_url, prepare_threshold=None) as conn:
        conn.read_only = True
        try:
            return render_markdown(build_reference(conn, schema))
        finally:
            conn.rollback()
