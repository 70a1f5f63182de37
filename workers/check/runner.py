"""Run the schema lints in ``lints/`` against a live database.

Each ``lints/NNNN_name.sql`` is one read-only SELECT returning the columns of
:class:`Finding`. The lints take two text[] parameters: ``%(exposed)s``, the
schemas the Data API exposes, and ``%(platform)s``, the schemas Supabase owns.
They run inside a savepoint (or a transaction of their own) that is rolled
back, with ``search_path`` set to '' so deparsed policies and views always
print schema-qualified names: the caller's transaction is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import class_row

LEVELS = ("ERROR", "WARN", "INFO")

# Hosted Supabase's default Data API schemas (PostgREST db-schemas).
DEFAULT_EXPOSED: tuple[str, ...] = ("public", "graphql_public")

# Schemas Supabase (or Postgres) owns: lints about "our" objects skip them.
PLATFORM_SCHEMAS: tuple[str, ...] = (
    "pg_catalog",
    "information_schema",
    "pg_toast",
    "auth",
    "storage",
    "realtime",
    "extensions",
    "supabase_migrations",
    "supabase_functions",
    "graphql",
    "graphql_public",
    "vault",
    "pgsodium",
    "pgsodium_masks",
    "pgbouncer",
    "net",
    "cron",
    "pgmq",
    "pgtle",
    "_realtime",
    "_analytics",
    "_supavisor",
)


@dataclass(frozen=True)
class Finding:
    """One problem found by one lint."""

    name: str
    level: str
    object: str
    detail: str
    remediation: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"lint {self.name!r} returned unknown level {self.level!r}")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def load_lints() -> list[tuple[str, str]]:
    """Return ``(file name, sql)`` for every lint, in file-name order."""
    folder = resources.files("workers.check").joinpath("lints")
    lints = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(lints)


def _sort_key(finding: Finding) -> tuple[int, str, str]:
    return (LEVELS.index(finding.level), finding.name, finding.object)


def run_checks(
    conn: psycopg.Connection[Any],
    exposed: Sequence[str] = DEFAULT_EXPOSED,
    platform: Sequence[str] = PLATFORM_SCHEMAS,
) -> list[Finding]:
    """Run every lint and return the findings, ERROR first.

    Read-only: works inside the caller's open transaction (as a savepoint) or
    on an autocommit connection, and leaves no trace either way.
    """
    params = {"exposed": list(exposed), "platform": list(platform)}
    findings: list[Finding] = []
    with (
        conn.transaction(force_rollback=True),
        conn.cursor(row_factory=class_row(Finding)) as cur,
    ):
        cur.execute("select pg_catalog.set_config('search_path', '', true)")
        for _file_name, query in load_lints():
            cur.execute(query, params, prepare=False)
            findings.extend(cur.fetchall())
    return sorted(findings, key=_sort_key)


def has_errors(findings: Iterable[Finding]) -> bool:
    """True if any finding is ERROR level (the CLI then exits 1)."""
    return any(f.level == "ERROR" for f in findings)
