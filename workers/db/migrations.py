"""Apply `migrations/<14-digit version>_<name>.sql` the way the Supabase CLI records them.

History lives in `supabase_migrations.schema_migrations (version, statements,
name)`, so `supabase migration list` and `supabase db push` agree with us on
the same database. Every run holds one advisory lock; every file is applied
in its own transaction, statement by statement, so a failure names the file
and line and leaves nothing half-applied.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.pq import TransactionStatus

from workers.db.platform_layer import ensure_platform
from workers.db.sqlsplit import Statement, normalize_statements, split_statements
from workers.errors import BacklineError, MigrationError

FILE_PATTERN = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
LOCK_KEY = 7_314_220_401  # advisory lock id shared by every `backline db migrate`
LOCK_WAIT_SECONDS = 300.0

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class MigrationFile:
    version: str
    name: str
    path: Path

    @property
    def statements(self) -> list[Statement]:
        return split_statements(self.path.read_text())


@dataclass(frozen=True)
class MigrationStatus:
    version: str
    name: str
    state: str  # applied | pending | changed | missing-file

    def as_dict(self) -> dict[str, str]:
        return {"version": self.version, "name": self.name, "state": self.state}


def discover(directory: Path) -> list[MigrationFile]:
    """Migration files in version order; a malformed name is an error, not skipped."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} does not exist")
    files: list[MigrationFile] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(
                f"malformed migration name {path.name!r}: expected <14-digit version>_<name>.sql"
            )
        version = match["version"]
        if version in seen:
            raise MigrationError(f"two migrations share version {version}: {seen[version].name}, {path.name}")
        seen[version] = path
        files.append(MigrationFile(version, match["name"], path))
    return files


def ensure_history_table(conn: Conn) -> None:
    """Create the Supabase CLI's history table if missing (same DDL shape as the CLI)."""
    conn.execute("create schema if not exists supabase_migrations")
    conn.execute(
        "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)"
    )
    conn.execute(
        "alter table supabase_migrations.schema_migrations add column if not exists statements text[]"
    )
    conn.execute("alter table supabase_migrations.schema_migrations add column if not exists name text")


def applied(conn: Conn) -> dict[str, tuple[str, list[str] | None]]:
    """Applied versions -> (name, statements); statements None when the row has none recorded."""
    if conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone() == (None,):
        return {}
    rows = conn.execute(
        "select version, coalesce(name, ''), statements"
        " from supabase_migrations.schema_migrations order by version"
    ).fetchall()
    return {str(v): (str(n), None if s is None else list(s)) for v, n, s in rows}  # type: ignore[call-overload]


def status(conn: Conn, directory: Path) -> list[MigrationStatus]:
    files = discover(directory)
    done = applied(conn)
    result: list[MigrationStatus] = []
    for f in files:
        if f.version not in done:
            result.append(MigrationStatus(f.version, f.name, "pending"))
        elif not _same(f, done[f.version][1]):
            result.append(MigrationStatus(f.version, f.name, "changed"))
        else:
            result.append(MigrationStatus(f.version, f.name, "applied"))
    known = {f.version for f in files}
    for version, (name, _) in done.items():
        if version not in known:
            result.append(MigrationStatus(version, name, "missing-file"))
    return sorted(result, key=lambda s: s.version)


def migrate(
    url: str,
    directory: Path,
    *,
    dry_run: bool = False,
    on_apply: Callable[[MigrationFile], None] | None = None,
    on_applied: Callable[[MigrationFile], None] | None = None,
    on_wait: Callable[[], None] | None = None,
    lock_timeout: float = LOCK_WAIT_SECONDS,
) -> list[MigrationFile]:
    """Apply pending migrations under an advisory lock. Returns the files applied (or due).

    `on_apply(f)` runs before a file is applied, `on_applied(f)` once its transaction
    committed. If a file fails, the MigrationError names the files this run applied
    (and committed) before it, so a partial run says exactly where the database stands.
    """
    from workers.db.connect import connect

    files = discover(directory)
    with connect(url, autocommit=True) as conn:
        _take_lock(conn, on_wait, lock_timeout)
        try:
            if not dry_run:
                ensure_platform(conn)
                with conn.transaction():
                    ensure_history_table(conn)
            pending = _pending(conn, files)
            if dry_run:
                return pending
            done: list[MigrationFile] = []
            for f in pending:
                if on_apply:
                    on_apply(f)
                try:
                    _apply(conn, f)
                except MigrationError as exc:
                    raise MigrationError(f"{exc}{_applied_before(done)}") from None
                done.append(f)
                if on_applied:
                    on_applied(f)
            if pending:
                conn.execute("notify pgrst, 'reload schema'")
            return pending
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))


def _applied_before(done: list[MigrationFile]) -> str:
    if not done:
        return "; no migration was applied before it in this run"
    return f"; applied before it in this run (kept): {', '.join(f.path.name for f in done)}"


def new_migration(directory: Path, name: str, *, now: datetime | None = None) -> Path:
    """Create an empty, correctly named migration file."""
    if not NAME_PATTERN.match(name):
        raise BacklineError(
            f"invalid migration name {name!r}: use lower-case letters, digits and underscores"
        )
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    existing = {f.version for f in discover(directory)}
    while stamp in existing:
        stamp = str(int(stamp) + 1)
    path = directory / f"{stamp}_{name}.sql"
    path.write_text(f"-- {name.replace('_', ' ')}: what this migration adds and why.\n\n")
    return path


def _take_lock(conn: Conn, on_wait: Callable[[], None] | None, timeout: float) -> None:
    """Wait for the migration lock, telling the caller once, and give up after `timeout`."""
    deadline = time.monotonic() + timeout
    told = False
    while not _scalar(conn, "select pg_try_advisory_lock(%s)", LOCK_KEY):
        if not told and on_wait:
            on_wait()
            told = True
        if time.monotonic() > deadline:
            raise MigrationError(
                f"another migration has held the lock for over {timeout:.0f} s; is a migrate stuck?"
            )
        time.sleep(0.2)


def _scalar(conn: Conn, query: str, *params: object) -> object:
    row = conn.execute(query.encode(), params).fetchone()
    return None if row is None else row[0]


def _pending(conn: Conn, files: list[MigrationFile]) -> list[MigrationFile]:
    done = applied(conn)
    known = {f.version for f in files}
    unknown = sorted(v for v in done if v not in known)
    if unknown:
        raise MigrationError(
            f"the database has migration {unknown[0]} ({done[unknown[0]][0]}) that "
            f"{files[0].path.parent if files else 'the migrations folder'} lacks; "
            "fetch it or repair the history before migrating"
        )
    for f in files:
        if f.version in done and not _same(f, done[f.version][1]):
            raise MigrationError(
                f"{f.path.name} was changed after it was applied; migrations are forever: "
                "revert the edit and add a new migration"
            )
    return [f for f in files if f.version not in done]


def _same(f: MigrationFile, recorded: list[str] | None) -> bool:
    """Whether the file still holds what was applied. A row without statements
    (old CLI versions, hand repairs) cannot be verified and counts as the same."""
    if not recorded:
        return True
    return normalize_statements(recorded) == normalize_statements([s.text for s in f.statements])


def _apply(conn: Conn, f: MigrationFile) -> None:
    statements = f.statements
    for stmt in statements:
        if stmt.controls_transaction:
            raise MigrationError(
                f"{f.path.name}:{stmt.line}: transaction control ({stmt.text.split()[0]}) is not "
                "allowed: every migration file already runs in its own transaction"
            )
    try:
        with conn.transaction(), conn.cursor() as cur:
            for stmt in statements:
                try:
                    cur.execute(stmt.text.encode())
                except psycopg.Error as exc:
                    raise MigrationError(_describe(f, stmt, exc)) from None
                if conn.info.transaction_status != TransactionStatus.INTRANS:
                    raise MigrationError(f"{f.path.name}:{stmt.line}: the statement ended the transaction")
            cur.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values (%s, %s, %s)",
                (f.version, f.name, [s.text for s in statements]),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{f.path.name}: {exc}") from None


def _describe(f: MigrationFile, stmt: Statement, exc: psycopg.Error) -> str:
    line = stmt.line
    position = exc.diag.statement_position
    if position:
        line += stmt.text.count("\n", 0, int(position) - 1)
    code = f" [{exc.sqlstate}]" if exc.sqlstate else ""
    message = exc.diag.message_primary or str(exc).splitlines()[0]
    return f"{f.path.name}:{line}: {message}{code}; nothing from this file was applied"
