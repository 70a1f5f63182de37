"""Schema drift: the live database compared with what the migration chain builds.

Like `supabase db diff` (a shadow database migrated from the migration files,
then a catalog comparison, migra or pg-delta), but reporting instead of
generating SQL: the chain is applied to a scratch database on the live server
(platform layer + migrations/, as `backline gen all` does) or read from a
reference database the caller migrated elsewhere (`reference_url`, for servers
where the login may not create databases, such as hosted Supabase), both are
read with the same catalog reader (workers/db/catalog.py) and every object is
reported missing (the chain has it, the live database does not), extra (the
other way round) or changed (same name, different definition).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from workers.db.catalog import REFERENCE_ONLY_KINDS, CatalogObject, by_key, read_catalog
from workers.db.connect import connect
from workers.errors import BacklineError

STATUSES: Final = ("missing", "extra", "changed")


@dataclass(frozen=True)
class Drift:
    """One difference: `expected` is the chain's definition, `actual` the live one (None if absent)."""

    status: str
    kind: str
    name: str
    expected: str | None
    actual: str | None
    includes: int = 0  # objects that belong to this one (a dropped table's columns, ...), not listed

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "kind": self.kind,
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
            "includes": self.includes,
        }

    def describe(self, context_lines: int = 0) -> str:
        """`changed function public.f(uuid)` and, for a change, the differing lines."""
        head = f"{self.status} {self.kind} {self.name}"
        if self.includes:
            head += f" (and {self.includes} objects that belong to it)"
        if self.status != "changed" or self.expected is None or self.actual is None:
            return head
        diff = difflib.unified_diff(
            self.expected.splitlines(),
            self.actual.splitlines(),
            "migrations",
            "live",
            lineterm="",
            n=context_lines,
        )
        body = [line for line in diff if not line.startswith(("---", "+++", "@@"))]
        return "\n".join([head, *(f"    {line}" for line in body)])


@dataclass(frozen=True)
class DriftReport:
    drifts: list[Drift]
    pending_migrations: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift": [d.as_dict() for d in self.drifts],
            "pending_migrations": self.pending_migrations,
        }


def compare(reference: list[CatalogObject], live: list[CatalogObject]) -> list[Drift]:
    """Missing, extra and changed objects of `live` against `reference`, sorted by kind and name."""
    expected = by_key(reference)
    actual = by_key(live)
    missing = {k: o for k, o in expected.items() if k not in actual}
    extra = {k: o for k, o in actual.items() if k not in expected and o.kind not in REFERENCE_ONLY_KINDS}
    drifts = [
        Drift("changed", o.kind, o.name, o.definition, actual[k].definition)
        for k, o in expected.items()
        if k in actual and actual[k].definition != o.definition
    ]
    for status, absent in (("missing", missing), ("extra", extra)):
        # An object whose owner is itself missing (extra) is reported as part of the owner.
        top: dict[tuple[str, str], int] = {}
        for key, obj in absent.items():
            root = _root(obj, absent)
            top[root] = top.get(root, 0) + (0 if root == key else 1)
        for key, includes in top.items():
            obj = absent[key]
            drifts.append(
                Drift(
                    status,
                    obj.kind,
                    obj.name,
                    obj.definition if status == "missing" else None,
                    obj.definition if status == "extra" else None,
                    includes,
                )
            )
    return sorted(drifts, key=lambda d: (d.kind, d.name, STATUSES.index(d.status)))


def _root(obj: CatalogObject, absent: dict[tuple[str, str], CatalogObject]) -> tuple[str, str]:
    """The outermost absent object `obj` belongs to (itself if its owner is present)."""
    current = obj
    for _ in range(4):  # grant -> column -> table: ownership is at most a few levels deep
        owner = next((k for k in current.owner_keys if k in absent), None)
        if owner is None:
            break
        current = absent[owner]
    return current.key


def read_objects(url: str) -> list[CatalogObject]:
    with connect(url) as conn:
        return read_catalog(conn)


def pending_migrations(url: str, directory: Path) -> list[str]:
    """File names of migrations the live database has not applied (their objects show as missing)."""
    from workers.db import migrations

    with connect(url) as conn:
        return [
            f"{s.version}_{s.name}.sql" for s in migrations.status(conn, directory) if s.state == "pending"
        ]


@contextmanager
def chain_database(live_url: str, directory: Path, reference_url: str | None) -> Iterator[str]:
    """A database holding exactly what the chain builds: `reference_url`, or a scratch one on the
    live server."""
    if reference_url is not None:
        behind = pending_migrations(reference_url, directory)
        if behind:
            raise BacklineError(
                f"the reference database has {len(behind)} pending migrations (first: {behind[0]});"
                " migrate it from migrations/ first: backline db migrate --database-url REFERENCE_URL"
            )
        yield reference_url
        return
    from workers.gen.contract import scratch_database

    scratch = scratch_database(live_url, directory)
    try:
        url = scratch.__enter__()
    except BacklineError as exc:
        raise BacklineError(
            f"{exc}. Without the right to create databases (hosted Supabase), migrate a database"
            " elsewhere (e.g. the embedded server: `backline db migrate`) and pass it as --reference-url"
        ) from None
    try:
        yield url
    finally:
        scratch.__exit__(None, None, None)


def diff_schema(live_url: str, directory: Path, reference_url: str | None = None) -> DriftReport:
    """Compare the live database with the chain in `directory` (built on the live server, or read
    from `reference_url`)."""
    pending = pending_migrations(live_url, directory)
    with chain_database(live_url, directory, reference_url) as url:
        reference = read_objects(url)
    live = read_objects(live_url)
    return DriftReport(compare(reference, live), pending)
