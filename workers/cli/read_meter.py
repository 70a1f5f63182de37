"""`backline db read-meter ...`: count every Data API request (reads, and failing requests too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from workers.cli.common import AsJson, DatabaseUrl, info, print_json, target_url

if TYPE_CHECKING:
    from workers.db import read_meter

app = typer.Typer(
    help=(
        "Count every Data API request in a meter session the request cannot roll back: reads (which"
        " PostgREST runs read-only) and requests that fail. Off: writes count only if they succeed,"
        " reads are only checked."
    ),
    no_args_is_help=True,
)


def _report(state: read_meter.MeterStatus, as_json: bool) -> None:
    if as_json:
        print_json(state.as_dict())
    elif state.enabled:
        info(f"requests are counted, failing ones too: meter session {state.user}@{state.host}:{state.port}")
    else:
        info(
            "meter disabled: writes are counted only if they succeed, reads are checked against the limit"
            " but not counted"
        )


@app.command()
def enable(
    database_url: DatabaseUrl = None,
    host: Annotated[
        str | None, typer.Option(help="Host the server reaches itself on. Default: its own Unix socket.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port for --host. Default: the server's port.")] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="BACKLINE_API_METER_PASSWORD",
            show_envvar=True,
            help="Password for the meter role, for servers that ask for one (hosted Supabase).",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Count every request: let the meter role log in, prove the hook can connect, then store the settings."""
    from workers.db import read_meter
    from workers.db.connect import connect

    with connect(target_url(database_url), autocommit=True) as conn:
        _report(read_meter.enable(conn, host=host, port=port, password=password), as_json)


@app.command()
def disable(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Stop metering: writes are counted only if they succeed; reads are refused once the window is full."""
    from workers.db import read_meter
    from workers.db.connect import connect

    with connect(target_url(database_url), autocommit=True) as conn:
        _report(read_meter.disable(conn), as_json)


@app.command()
def status(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Show whether requests are metered and where the meter connects (never the password)."""
    from workers.db import read_meter
    from workers.db.connect import connect

    with connect(target_url(database_url), autocommit=True) as conn:
        _report(read_meter.status(conn), as_json)
