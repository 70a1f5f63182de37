"""`backline audit list|retention`: the operators' view of the audit trail.

Reads public.audit_changes (every row change on user-owned tables) as `service_role`,
the role an admin UI would use; users read their own part through RLS instead.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from workers.cli.common import AsJson, DatabaseUrl, info, print_json, print_table
from workers.errors import BacklineError

app = typer.Typer(
    help="The audit trail: every change to user-owned rows, and its retention.", no_args_is_help=True
)

ACTIONS = ("insert", "update", "delete")
LIST_SQL = """
select id, created_at, table_name, row_id, action, columns, user_id, actor_id, actor
  from public.audit_changes
 where (%(user)s::uuid is null or user_id = %(user)s)
   and (%(actor)s::uuid is null or actor_id = %(actor)s)
   and (%(table)s::text is null or table_name = %(table)s)
   and (%(action)s::text is null or action = %(action)s)
 order by id desc
 limit %(limit)s
"""


def _user_id(value: str | None, option: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"must be a uuid, got {value!r}", param_hint=option) from None


def _table(value: str | None) -> str | None:
    if value is None:
        return None
    return value if "." in value else f"public.{value}"


def _run(database_url: str | None, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    from workers.cli.common import target_url
    from workers.db.connect import connect
    from workers.db.impersonate import act_as

    with connect(target_url(database_url)) as conn, act_as(conn, None, "service_role", rollback=False) as cur:
        cur.row_factory = dict_row
        return list(cur.execute(query, params).fetchall())


@app.command("list")
def list_changes(
    user: Annotated[str | None, typer.Option("--user", help="Only changes of this user's rows.")] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Only changes this user made (any rows; slower: no index)."),
    ] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="Only this table (schema.table; public. by default).")
    ] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only insert, update or delete.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many.")] = 100,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Row changes, newest first: table, row, action, changed columns, whose row, who did it."""
    if action is not None and action not in ACTIONS:
        raise typer.BadParameter(f"must be one of {', '.join(ACTIONS)}", param_hint="--action")
    rows = _run(
        database_url,
        LIST_SQL,
        {
            "user": _user_id(user, "--user"),
            "actor": _user_id(actor, "--actor"),
            "table": _table(table),
            "action": action,
            "limit": limit,
        },
    )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["columns"] = ",".join(row["columns"] or [])
        row["actor"] = f"{row['actor']} {row['actor_id']}" if row["actor_id"] else row["actor"]
    print_table(rows, ("id", "created_at", "table_name", "row_id", "action", "columns", "user_id", "actor"))


@app.command("retention")
def retention(
    days: Annotated[
        int | None, typer.Argument(help="New retention in days (1-36500). Without it: print the current one.")
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Show or set how long audit changes are kept (the privacy-cleanup deletes older ones)."""
    if days is not None and not 1 <= days <= 36500:
        raise typer.BadParameter("must be between 1 and 36500", param_hint="DAYS")
    if days is None:
        rows = _run(database_url, "select retention_days from private.audit_settings", {})
    else:
        rows = _run(
            database_url,
            "update private.audit_settings set retention_days = %(days)s, updated_at = now()"
            " returning retention_days",
            {"days": days},
        )
    if not rows:
        raise BacklineError("private.audit_settings is empty: is the database migrated?")
    if as_json:
        print_json(rows[0])
    elif days is None:
        typer.echo(rows[0]["retention_days"])
    else:
        info(f"audit changes are now kept {rows[0]['retention_days']} days")
