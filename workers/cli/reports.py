"""`backline reports list|show|resolve`: moderation of abuse reports.

A thin layer over the SQL functions the admin UI will call (public.moderation_*,
service role only): every call runs as `service_role`, exactly as through PostgREST
with the secret key, so the CLI exercises the same grants.
"""

from __future__ import annotations

import getpass
import json
import uuid
from typing import Annotated, Any

import typer

from workers.cli.common import AsJson, DatabaseUrl, info, print_json, print_table
from workers.errors import BacklineError

app = typer.Typer(
    help="Moderation: list abuse reports, show one, resolve it (dismiss, hide the document, ban the owner).",
    no_args_is_help=True,
)

STATUSES = ("open", "reviewed", "dismissed", "hidden", "banned", "all")
ACTIONS = ("dismiss", "hide", "ban")
ReportId = Annotated[str, typer.Argument(help="The report's id (a uuid, from `backline reports list`).")]


def _report_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"must be a uuid, got {value!r}", param_hint="REPORT_ID") from None


def _call(database_url: str | None, query: str, params: tuple[Any, ...]) -> Any:
    """Run one moderation function as service_role and commit; SQL errors become one line."""
    import psycopg

    from workers.cli.common import target_url
    from workers.db.connect import connect
    from workers.db.impersonate import act_as

    with connect(target_url(database_url)) as conn:
        try:
            with act_as(conn, None, "service_role", rollback=False) as cur:
                row = cur.execute(query, params).fetchone()
        except psycopg.Error as exc:
            diag = exc.diag
            hint = f" ({diag.message_hint})" if diag.message_hint else ""
            raise BacklineError(f"{diag.message_primary or exc}{hint}") from None
    return row[0] if row else None


@app.command("list")
def list_reports(
    status: Annotated[str, typer.Option("--status", help=f"One of {', '.join(STATUSES)}.")] = "open",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 50,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Abuse reports, oldest first (default: the open ones)."""
    if status not in STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(STATUSES)}", param_hint="--status")
    rows = _call(
        database_url,
        "select public.moderation_reports(%s, %s)",
        (None if status == "all" else status, limit),
    )
    if as_json:
        print_json(rows)
        return
    print_table(
        rows,
        ("id", "status", "reason", "document_id", "document_title", "reports_of_document", "created_at"),
    )


@app.command("show")
def show(report_id: ReportId, as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """One report with its document, the other reports of it and its takedown/ban state."""
    report = _call(database_url, "select public.moderation_report(%s)", (_report_id(report_id),))
    if as_json:
        print_json(report)
        return
    doc = report["document"]
    for key in (
        "id",
        "status",
        "reason",
        "details",
        "created_at",
        "resolved_at",
        "resolved_by",
        "resolution_note",
    ):
        typer.echo(f"{key:<16} {report.get(key) if report.get(key) is not None else ''}")
    typer.echo(f"{'document':<16} {doc['id']} ({doc['kind']}, {doc['visibility']}) {doc['title']!r}")
    typer.echo(f"{'owner':<16} {doc['owner_id']}{' (banned)' if report['owner_banned'] else ''}")
    typer.echo(f"{'taken down':<16} {'yes' if report['taken_down'] else 'no'}")
    typer.echo(f"{'other reports':<16} {len(report['other_reports'])}")
    typer.echo(f"{'body':<16} {json.dumps(doc['body'])[:500]}")


@app.command("resolve")
def resolve(
    report_id: ReportId,
    action: Annotated[
        str,
        typer.Option(
            "--action",
            help="dismiss (no change), hide (take the document and its forks' public copies down, revoke "
            "links, notify owners) or ban (hide + the owner may no longer publish).",
        ),
    ],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required for hide and ban; the owner is told).")
    ] = None,
    moderator: Annotated[
        str | None, typer.Option("--by", help="Who decides (kept in the audit trail). Default: your login.")
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Resolve an open report. Every decision keeps who, when and why."""
    rid = _report_id(report_id)
    if action not in ACTIONS:
        raise typer.BadParameter(f"must be one of {', '.join(ACTIONS)}", param_hint="--action")
    if action != "dismiss" and not (reason or "").strip():
        raise typer.BadParameter(f"a reason is required to {action}", param_hint="--reason")
    by = moderator if moderator is not None else getpass.getuser()
    result = _call(
        database_url, "select public.moderation_resolve_report(%s, %s, %s, %s)", (rid, action, reason, by)
    )
    if as_json:
        print_json(result)
        return
    info(
        f"report {result['report_id']} {result['status']}: "
        f"{len(result['documents_hidden'])} documents hidden, "
        f"{result['share_links_revoked']} share links revoked, {result['owners_notified']} owners notified"
        + (", owner banned from publishing" if result["owner_banned"] else "")
    )
