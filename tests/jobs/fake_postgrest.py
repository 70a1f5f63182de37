"""A local stand-in for Supabase's Data API (PostgREST) RPC endpoint, for the RPC transport tests.

It records each request exactly as the `postgrest` SDK sent it and answers
like PostgREST 12: POST /rest/v1/rpc/<fn> with a JSON object of named
arguments; the call runs in the real database as the role of the JWT (here
the service key's `service_role`) with `request.jwt.claims` set; a set-returning
function answers a JSON array, a scalar one the bare JSON value; errors answer
{"code", "message", "details", "hint"} with PostgREST's status for the SQLSTATE.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg import sql

SERVICE_KEY = "test-service-role-key"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakePostgrest:
    database_url: str
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakePostgrest:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append(
                    Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if (
                    self.headers.get("apikey") != SERVICE_KEY
                    or self.headers.get("Authorization") != f"Bearer {SERVICE_KEY}"
                ):
                    self._send(
                        401, {"code": "PGRST301", "message": "JWT invalid", "details": None, "hint": None}
                    )
                    return
                if not self.path.startswith("/rest/v1/rpc/"):
                    self._send(
                        404, {"code": "PGRST202", "message": "not found", "details": None, "hint": None}
                    )
                    return
                status, payload = fake.call(self.path.removeprefix("/rest/v1/rpc/"), body or {})
                self._send(status, payload)

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def call(self, fn: str, args: dict[str, Any]) -> tuple[int, Any]:
        with psycopg.connect(self.database_url) as conn:
            found = conn.execute(
                "select p.proretset, coalesce(p.proargnames, '{}'),"
                " array(select format_type(t, null) from unnest(p.proargtypes) t)"
                " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'public' and p.proname = %s",
                (fn,),
            ).fetchone()
            if found is None:
                return 404, {
                    "code": "PGRST202",
                    "message": f"Could not find the function public.{fn}",
                    "details": None,
                    "hint": None,
                }
            retset, names, types = found
            unknown = set(args) - set(names)
            if unknown:
                return 404, {
                    "code": "PGRST202",
                    "message": f"no parameters {sorted(unknown)}",
                    "details": None,
                    "hint": None,
                }
            # Like PostgREST: arguments from the JSON body by name, typed by the function's signature.
            given = [(n, t) for n, t in zip(names, types, strict=False) if n in args]
            record = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in given
            )
            call_args = sql.SQL(", ").join(
                sql.SQL("{} := a.{}").format(sql.Identifier(n), sql.Identifier(n)) for n, _ in given
            )
            fn_sql = sql.SQL("public.{}({})").format(sql.Identifier(fn), call_args)
            source = (
                sql.SQL("json_to_record(%s::json) as a({})").format(record)
                if given
                else sql.SQL("(select 1) as a")
            )
            if retset:
                query = sql.SQL("select coalesce(json_agg(r), '[]') from {}, lateral {} r").format(
                    source, fn_sql
                )
            else:
                query = sql.SQL("select to_json({}) from {}").format(fn_sql, source)
            try:
                with conn.transaction():
                    conn.execute("set local role service_role")
                    conn.execute(
                        "select set_config('request.jwt.claims', '{\"role\": \"service_role\"}', true)"
                    )
                    row = conn.execute(query, (json.dumps(args),) if given else ()).fetchone()
            except psycopg.Error as exc:
                diag = exc.diag
                code = exc.sqlstate or "XX000"
                status = 500 if code[:2] in ("55", "P0", "XX", "40", "53") and code != "P0001" else 400
                if code == "42501":
                    status = 403
                return status, {
                    "code": code,
                    "message": diag.message_primary,
                    "details": diag.message_detail,
                    "hint": diag.message_hint,
                }
        return 200, row[0] if row else None
