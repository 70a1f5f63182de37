"""Backline's connections never prepare statements on the server, so every DATABASE_URL may be
a transaction pooler (Supavisor on port 6543, PgBouncer in transaction mode), where the next
transaction can run on a backend that lacks a statement prepared earlier. psycopg prepares a
query from its sixth run on a connection unless `prepare_threshold=None`. The job queue's pool
is the one exception: it prepares only when its URL is not the transaction pooler."""

from __future__ import annotations

import ast
from pathlib import Path

from workers.db.connect import connect

WORKERS = Path(__file__).resolve().parents[2] / "workers"
CONNECTS = {"psycopg.connect", "psycopg.AsyncConnection.connect"}


def test_connect_never_prepares(clone_url: str) -> None:
    with connect(clone_url, autocommit=True) as conn:
        for _ in range(8):
            conn.execute("select %s::int", (1,))
        assert conn.execute("select count(*) from pg_prepared_statements").fetchone() == (0,)


def test_every_connection_in_workers_says_prepare_threshold() -> None:
    missing = []
    for path in sorted(WORKERS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in CONNECTS
                and not any(k.arg == "prepare_threshold" for k in node.keywords)
            ):
                missing.append(f"{path.relative_to(WORKERS.parent)}:{node.lineno}")
    assert missing == [], f"pass prepare_threshold=None to: {', '.join(missing)}"
