"""`backline up` / `backline down`: everything a developer needs on this machine.

Status lines go to stderr (stdout stays for data; these commands print none).
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from workers.cli.common import DatabaseUrl, info, settings, target_url, targets_embedded
from workers.cli.services import Service

if TYPE_CHECKING:
    from workers.settings import Settings

SERVICES = (Service("workers", ("workers", "run")), Service("ai", ("ai", "serve")))


def local_ai_master_keys_path(data_dir: Path) -> Path:
    return data_dir.expanduser().resolve() / "ai-master-keys"


def local_ai_master_keys(data_dir: Path) -> str:
    """A development master key for the AI proxy, made once and kept (mode 0600) in the data dir."""
    path = local_ai_master_keys_path(data_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"local1:{base64.b64encode(secrets.token_bytes(32)).decode()}")
    return path.read_text().strip()


def ai_master_keys(s: Settings, embedded: bool) -> str:
    """The master keys the AI proxy uses: BACKLINE_AI_MASTER_KEYS, else (embedded only) the local
    key file `backline up` made and handed to the proxy it started. Empty when neither exists."""
    if s.ai_master_keys or not embedded:
        return s.ai_master_keys
    path = local_ai_master_keys_path(s.data_dir)
    return path.read_text().strip() if path.exists() else ""


def up(
    database_url: DatabaseUrl = None,
    services: Annotated[
        bool, typer.Option("--services/--no-services", help="Also start the background services.")
    ] = True,
    init: Annotated[
        bool,
        typer.Option("--init", help="Create a new empty cluster if BACKLINE_DATA_DIR does not exist."),
    ] = False,
) -> None:
    """Start the embedded database (unless a URL is set), migrate, seed, start workers and AI proxy.

    Prints what runs (on stderr). Services run detached with logs in <data dir>/services/;
    `backline down` stops them (and the embedded database).
    """
    from workers.cli.db import apply_migrations
    from workers.cli.services import Services, check_port_free
    from workers.db import read_meter
    from workers.db.connect import connect, redact
    from workers.db.embedded import EmbeddedServer
    from workers.db.reset import seed

    s = settings()
    supervisor = Services(s.data_dir)
    if services and supervisor.pid("ai") is None:
        # Checked before anything starts: a taken port is refused (naming its holder), and a
        # foreign server answering /healthz there must never pass for the proxy.
        check_port_free(s.ai_host, s.ai_port)
    url = target_url(database_url, init=init)
    embedded = targets_embedded(database_url)
    applied = apply_migrations(url)
    seeded = embedded and seed(url)
    info(f"database   {'embedded PostgreSQL' if embedded else 'external'}  {redact(url)}")
    if embedded:
        info(f"cluster    {EmbeddedServer(settings().data_dir).pgdata}")
    info(f"migrations {len(applied)} applied now, schema up to date")
    if seeded:
        info("seed       supabase/seed.sql loaded (idempotent)")
    if embedded:
        with connect(url, autocommit=True) as conn:
            meter = read_meter.enable(conn)
        where = f"{meter.user}@{meter.host}:{meter.port}"
        info(f"api meter  every request counted, failing ones too ({where})")
    if services:
        env = {"DATABASE_URL": url}
        if embedded and not s.ai_master_keys:
            env["BACKLINE_AI_MASTER_KEYS"] = local_ai_master_keys(s.data_dir)
        started_now: list[str] = []
        try:
            for service in SERVICES:
                pid, started = supervisor.start(service, env)
                if started:
                    started_now.append(service.name)
                    if service.name == "ai":
                        supervisor.wait_serving("ai", pid, s.ai_host, s.ai_port)
                state = "started" if started else "already running"
                info(f"{service.name:<10} {state} (pid {pid}), log {supervisor.log_path(service.name)}")
        except BaseException:
            for name in reversed(started_now):  # leave nothing running that this command started
                supervisor.stop(name)
            raise
        info(f"{'ai proxy':<10} http://{s.ai_host}:{s.ai_port}  (GET /healthz)")
    info('next       psql "$(backline db url)"  ·  backline db status  ·  backline down')


def down(
    keep_database: Annotated[
        bool, typer.Option("--keep-database", help="Stop the services but leave the database running.")
    ] = False,
) -> None:
    """Stop what `backline up` started: the services, then the embedded database.

    The test suite's own server (scripts/test, in .backline-test/) is not this one: scripts/test
    stops it when it finishes.
    """
    from workers.cli.services import Services
    from workers.db.embedded import EmbeddedServer

    data_dir = settings().data_dir
    supervisor = Services(data_dir)
    for name in supervisor.names():
        info(f"{name:<10} {'stopped' if supervisor.stop(name) else 'was not running'}")
    if not keep_database:
        stopped = EmbeddedServer(data_dir).stop()
        info(f"{'database':<10} {'stopped' if stopped else 'was not running'}")
