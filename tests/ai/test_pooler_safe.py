"""The AI proxy's database connections never prepare statements on the server, so its
DATABASE_URL may be a transaction pooler (Supavisor on port 6543, PgBouncer in transaction
mode), which cannot keep a statement prepared on one backend for the next transaction."""

from __future__ import annotations

from tests.ai.conftest import Proxy

RUNS = 8  # psycopg prepares a query from its sixth run on a connection, unless told not to


def test_pooled_connections_never_prepare_statements(proxy: Proxy) -> None:
    _, headers = proxy.user()
    for _ in range(RUNS):  # the same statements each time, through the sync pool
        assert proxy.http.get("/v1/keys", headers=headers).status_code == 200
    app = proxy.app.state.proxy
    with app.pool.connection() as conn:
        for _ in range(RUNS):
            conn.execute("select %s::int", (1,))
        prepared = conn.execute("select name, statement from pg_prepared_statements").fetchall()
    assert prepared == []
    # The async pool (admission, settlement) opens its connections with the same arguments.
    assert app.apool.kwargs["prepare_threshold"] is None
    assert app.pool.kwargs["prepare_threshold"] is None
