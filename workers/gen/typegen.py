"""Database types from the catalog, by the generator `supabase gen types` runs.

The Supabase CLI generates types by running Supabase's postgres-meta
(`node dist/server/server.js` in its pgmeta image) with PG_META_DB_URL and
PG_META_GENERATE_TYPES* set; the typegen prints the file and exits. Backline
runs the same program, the npm package `@supabase/postgres-meta` at the version
Supabase CLI 2.117.0 pins (its pgmeta image v0.99.0), from a scratch install
under `.tools/` (made by `npm ci` from the lockfile beside this module on first
use), with the environment the CLI gives it. No Docker, no Supabase CLI.

`supabase gen types typescript --db-url URL --schema public` and
`backline gen types --database-url URL` print the same bytes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlencode

from psycopg import conninfo

from workers.errors import BacklineError
from workers.settings import PROJECT_ROOT

__all__ = [
    "LANGUAGES",
    "POSTGRES_META_VERSION",
    "TypegenError",
    "ensure_postgres_meta",
    "generate_types",
    "node_url",
    "tools_dir",
]

POSTGRES_META_VERSION: Final = "0.99.0"
LANGUAGES: Final = ("typescript", "python")
PIN_DIR: Final = Path(__file__).resolve().parent / "npm"
SERVER_JS: Final = Path("node_modules/@supabase/postgres-meta/dist/server/server.js")
_COMPLETE: Final = ".backline-complete"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class TypegenError(BacklineError):
    """postgres-meta could not be installed or did not produce types."""


def tools_dir() -> Path:
    """Where command-line tools are installed on first use (gitignored): BACKLINE_TOOLS_DIR or .tools/."""
    configured = os.environ.get("BACKLINE_TOOLS_DIR")
    return Path(configured) if configured else PROJECT_ROOT / ".tools"


def _pin_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PIN_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def _node_major(node: str) -> int:
    result = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
    match = re.fullmatch(r"v(\d+)\..*", result.stdout.strip())
    return int(match.group(1)) if match else 0


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise TypegenError(
            f"{program} not found on PATH: type generation runs Supabase's postgres-meta"
            " on Node.js 20 or newer (install nodejs and npm)"
        )
    return path


def ensure_postgres_meta(
    directory: Path | None = None, *, on_install: Callable[[str], None] | None = None
) -> Path:
    """The path of postgres-meta's server.js, installing the pinned version first if missing.

    The install is `npm ci --omit=dev --ignore-scripts` of the committed lockfile into a
    temporary folder renamed into place when complete, under a file lock, so concurrent
    callers (parallel tests, two shells) install once and never see half an install.
    """
    base = directory or tools_dir()
    target = base / f"postgres-meta-{POSTGRES_META_VERSION}-{_pin_digest()}"
    server = target / SERVER_JS
    if (target / _COMPLETE).exists() and server.exists():
        return server
    npm = _require("npm")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TypegenError(f"cannot create {base} for postgres-meta: {exc.strerror}") from exc
    with open(base / ".postgres-meta.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _COMPLETE).exists() and server.exists():
            return server
        if on_install:
            on_install(f"installing @supabase/postgres-meta {POSTGRES_META_VERSION} into {target}")
        scratch = Path(tempfile.mkdtemp(prefix=".postgres-meta-", dir=base))
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(PIN_DIR / name, scratch / name)
            result = subprocess.run(
                [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if result.returncode != 0 or not (scratch / SERVER_JS).exists():
                lines = [line for line in result.stderr.splitlines() if line.strip()]
                reason = lines[-1] if lines else f"exit code {result.returncode}"
                raise TypegenError(f"npm could not install @supabase/postgres-meta: {reason}")
            (scratch / _COMPLETE).write_text(POSTGRES_META_VERSION + "\n")
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return server


def node_url(database_url: str) -> str:
    """A libpq URL or key=value string as the postgresql:// URL node-postgres reads.

    A socket directory becomes the `host` query parameter; sslmode require/verify-* is
    kept (node-postgres has no `prefer`, which the CLI drops too)."""
    try:
        params = conninfo.conninfo_to_dict(database_url)
    except Exception as exc:
        raise TypegenError(f"not a database URL: {exc}") from exc
    host = str(params.get("host") or "localhost")
    if "," in host:
        raise TypegenError("a database URL with several hosts is not supported for type generation")
    user = quote(str(params.get("user") or "postgres"), safe="")
    password = params.get("password")
    auth = user + (":" + quote(str(password), safe="") if password else "")
    dbname = quote(str(params.get("dbname") or "postgres"), safe="")
    port = str(params.get("port") or "5432")
    query: dict[str, str] = {}
    sslmode = str(params.get("sslmode") or "")
    if sslmode in ("require", "verify-ca", "verify-full"):
        query["sslmode"] = sslmode
    if host.startswith("/"):
        query = {"host": host, "port": port, **query}
        netloc = f"{auth}@"
    else:
        shown = f"[{host}]" if ":" in host else host
        netloc = f"{auth}@{shown}:{port}"
    suffix = "?" + urlencode(query) if query else ""
    return f"postgresql://{netloc}/{dbname}{suffix}"


def generate_types(
    database_url: str,
    *,
    lang: str = "typescript",
    schemas: Sequence[str] = ("public",),
    on_install: Callable[[str], None] | None = None,
) -> str:
    """The types postgres-meta generates for `schemas` of the database, exactly as printed."""
    if lang not in LANGUAGES:
        raise TypegenError(f"unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    if not schemas:
        raise TypegenError("name at least one schema")
    for schema in schemas:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise TypegenError(f"not a schema name: {schema!r}")
    url = node_url(database_url)
    node = _require("node")
    if _node_major(node) < 20:
        raise TypegenError("postgres-meta needs Node.js 20 or newer")
    server = ensure_postgres_meta(on_install=on_install)
    env = {
        # What the Supabase CLI (internal/gen/types) passes to the pgmeta container.
        "PG_META_DB_URL": url,
        "PG_CONN_TIMEOUT_SECS": "15",
        "PG_QUERY_TIMEOUT_SECS": "15",
        "PG_META_GENERATE_TYPES": lang,
        "PG_META_GENERATE_TYPES_INCLUDED_SCHEMAS": ",".join(schemas),
        "PG_META_GENERATE_TYPES_SWIFT_ACCESS_CONTROL": "internal",
        "PG_META_GENERATE_TYPES_DETECT_ONE_TO_ONE_RELATIONSHIPS": "true",
        # Only what node needs: no PG* variables may change the connection.
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    try:
        result = subprocess.run(
            [node, str(server)],
            cwd=server.parent.parent.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TypegenError("postgres-meta did not finish within 300 s") from exc
    if result.returncode != 0 or not result.stdout.strip():
        lines = [
            line
            for line in result.stderr.splitlines()
            if line.strip() and "MaxListenersExceededWarning" not in line and "--trace-warnings" not in line
        ]
        reason = next((line.strip() for line in lines if "Error" in line), lines[0] if lines else "no output")
        raise TypegenError(f"postgres-meta failed: {reason}")
    return result.stdout
