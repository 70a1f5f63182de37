"""The committed frontend contract: generated files, regenerated from a freshly migrated database.

`supabase/types/database.ts` (postgres-meta's TypeScript types, what `supabase
gen types typescript --schema public` prints) and `docs/api.md` (the API
reference) are generated from the schema the migrations build. `backline gen
all` builds a scratch database from migrations/ on the target server, writes
both files and drops it; the drift tests and `backline gen all --check` compare
the committed files with a fresh generation and name that command.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from psycopg import conninfo, sql

from workers.db import migrations
from workers.db.connect import connect, first_line, redact
from workers.db.schema_snapshot import generate_schema_snapshot
from workers.errors import BacklineError
from workers.gen.api_docs import generate_api_docs
from workers.gen.typegen import generate_types
from workers.settings import PROJECT_ROOT

__all__ = [
    "ARTIFACTS",
    "REGENERATE_COMMAND",
    "Artifact",
    "drift_message",
    "scratch_database",
    "write_text",
]

REGENERATE_COMMAND: Final = "backline gen all"
_DIFF_LINES = 60


@dataclass(frozen=True)
class Artifact:
    """A committed file and how to generate it from a database URL."""

    path: Path
    generate: Callable[[str], str]

    @property
    def relative(self) -> str:
        try:
            return str(self.path.relative_to(PROJECT_ROOT))
        except ValueError:
            return str(self.path)


ARTIFACTS: Final = (
    Artifact(PROJECT_ROOT / "supabase" / "types" / "database.ts", lambda url: generate_types(url)),
    Artifact(PROJECT_ROOT / "docs" / "api.md", lambda url: generate_api_docs(url)),
    Artifact(PROJECT_ROOT / "supabase" / "schema.sql", lambda url: generate_schema_snapshot(url)),
)


def drift_message(artifact: Artifact, generated: str) -> str | None:
    """None when the committed file is what the schema generates; else what differs and the fix."""
    try:
        committed = artifact.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        committed = ""
    if committed == generated:
        return None
    diff = list(
        difflib.unified_diff(
            committed.splitlines(),
            generated.splitlines(),
            f"{artifact.relative} (committed)",
            f"{artifact.relative} (generated from migrations/)",
            lineterm="",
            n=1,
        )
    )
    shown = diff[:_DIFF_LINES] + (
        [f"... {len(diff) - _DIFF_LINES} more diff lines"] if len(diff) > _DIFF_LINES else []
    )
    return (
        f"{artifact.relative} does not match the schema the migrations build."
        f" Regenerate it with `{REGENERATE_COMMAND}` and commit the result.\n" + "\n".join(shown)
    )


@contextmanager
def scratch_database(server_url: str, directory: Path | None = None) -> Iterator[str]:
    """A new database on the server of `server_url`, migrated from `directory`; dropped after."""
    name = f"backline_gen_{uuid.uuid4().hex[:12]}"
    try:
        with connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    except Exception as exc:
        raise BacklineError(
            f"cannot create a scratch database on {redact(server_url)}: {first_line(exc)}"
            " (a fresh database is created and migrated from migrations/; use a server where you may"
            " create databases, such as the embedded default)"
        ) from None
    try:
        url = conninfo.make_conninfo(server_url, dbname=name)
        migrations.migrate(url, directory or PROJECT_ROOT / "migrations")
        yield url
    finally:
        with connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def write_text(path: Path, text: str) -> bool:
    """Write `text` to `path` exactly (atomically); False if it already held exactly that."""
    if not path.parent.is_dir():
        raise BacklineError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise BacklineError(f"cannot write {path}: it is a folder")
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(scratch, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        scratch.replace(path)
    except OSError as exc:
        scratch.unlink(missing_ok=True)
        raise BacklineError(f"cannot write {path}: {exc.strerror}") from None
    return True
