"""docs/api.md is the API reference the migrated schema generates, and it says what the catalog says.

1. Drift: the committed file equals a fresh generation from the test's migrated
   database; a renamed column proves the check fails (with the command to run).
2. Content: on a probe table and RPCs made inside the test, the reference lists
   the comments, exactly the columns each role was granted, the policies, the
   constraints and the errors (own, called, trigger) with their HTTP status;
   a role without grants is shown as having none.
3. Completeness: every exposed table, its columns and every RPC have `comment on` text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import backline, one_line_error
from workers.check.raise_statements import RaisedError, raised_errors
from workers.gen.api_docs import API_ROLES, build_reference, generate_api_docs, render_markdown
from workers.gen.contract import ARTIFACTS, REGENERATE_COMMAND, drift_message
from workers.gen.typegen import ensure_postgres_meta
from workers.settings import PROJECT_ROOT

Conn = psycopg.Connection[Any]
API_DOCS = next(a for a in ARTIFACTS if a.path.name == "api.md")

# -- 1. drift --------------------------------------------------------------------------


def test_committed_api_reference_matches_the_migrated_schema(clone_url: str) -> None:
    generated = generate_api_docs(clone_url)
    assert generated.startswith("# API reference\n")
    assert "\n### documents\n" in generated and "\n### sync_push\n" in generated
    assert API_DOCS.path == PROJECT_ROOT / "docs" / "api.md"
    message = drift_message(API_DOCS, generated)
    assert message is None, message


def test_a_renamed_column_makes_the_api_reference_drift(make_database: Callable[..., str]) -> None:
    url = make_database()
    with psycopg.connect(url) as conn:
        conn.execute("alter table public.documents rename column title to headline")
    message = drift_message(API_DOCS, generate_api_docs(url))
    assert message is not None
    assert f"Regenerate it with `{REGENERATE_COMMAND}`" in message
    assert "+| headline | text |" in message and "-| title | text |" in message


def test_gen_all_check_passes_on_the_committed_files(server_url: str) -> None:
    """The one command CI and the drift messages name: builds its own scratch database."""
    ensure_postgres_meta()  # a first install in this process, not inside the CLI's time limit
    result = backline("gen", "all", "--check", "--database-url", server_url)
    assert result.returncode == 0, result.stderr


def test_cli_writes_the_reference_and_refuses_bad_input(clone_url: str, tmp_path: Path) -> None:
    out = tmp_path / "api.md"
    written = backline("gen", "api-docs", "--database-url", clone_url, "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert out.read_text() == generate_api_docs(clone_url)
    missing = tmp_path / "no" / "api.md"
    refused = backline("gen", "api-docs", "--database-url", clone_url, "--out", str(missing))
    assert refused.returncode == 1 and "does not exist" in one_line_error(refused)
    assert not missing.parent.exists()
    unknown = backline("gen", "api-docs", "--database-url", clone_url, "--schema", "nope")
    assert unknown.returncode == 1
    assert 'schema "nope" does not exist' in one_line_error(unknown)


# -- 2. what the reference says -----------------------------------------------------------

PROBE = """
create table public.h11_probe (
  id bigint generated always as identity primary key,
  owner_id uuid not null default auth.uid(),
  label text not null constraint h11_probe_label_length check (length(label) <= 10),
  secret text
);
comment on table public.h11_probe is 'Probe rows.';
comment on column public.h11_probe.label is 'A short label.';
alter table public.h11_probe enable row level security;
revoke all on table public.h11_probe from anon, authenticated, service_role;
grant select (id, label) on public.h11_probe to authenticated;
grant insert (label) on public.h11_probe to authenticated;
grant delete on public.h11_probe to authenticated;
create policy "owners read their probes" on public.h11_probe for select to authenticated
  using (owner_id = (select auth.uid()));
create function private.h11_probe_guard() returns trigger language plpgsql set search_path = '' as $$
begin
  if new.label = 'x' then
    raise exception 'label x is reserved' using errcode = '22023', hint = 'Pick another label.';
  end if;
  return new;
end $$;
create trigger h11_probe_guard before insert on public.h11_probe
  for each row execute function private.h11_probe_guard();
create function private.h11_probe_find(p_id bigint) returns text language plpgsql set search_path = '' as $$
begin
  raise exception 'probe % not found', p_id using errcode = 'PT404';
end $$;
create function public.h11_probe_call(p_id bigint, p_note text default null) returns text
  language plpgsql set search_path = '' as $$
begin
  if p_id < 0 then
    raise exception 'p_id must not be negative' using errcode = '22023';
  end if;
  if p_note = 'nope' then
    raise insufficient_privilege using message = 'not yours';
  end if;
  insert into public.h11_probe (label) values (p_note);
  return private.h11_probe_find(p_id);
end $$;
comment on function public.h11_probe_call(bigint, text) is 'Probe RPC.';
revoke execute on function public.h11_probe_call(bigint, text) from public, anon, authenticated, service_role;
grant execute on function public.h11_probe_call(bigint, text) to authenticated;
create function public.h11_probe_server() returns integer language sql as 'select 1';
revoke execute on function public.h11_probe_server() from public, anon, authenticated, service_role;
grant execute on function public.h11_probe_server() to service_role;
"""


def test_the_reference_reads_grants_policies_constraints_and_errors(db: Conn) -> None:
    db.execute(PROBE)
    reference = build_reference(db)
    probe = next(r for r in reference.relations if r.name == "h11_probe")
    assert probe.comment == "Probe rows." and probe.rls
    assert [(c.name, c.comment) for c in probe.columns][:3] == [
        ("id", None),
        ("owner_id", None),
        ("label", "A short label."),
    ]
    assert next(c for c in probe.columns if c.name == "id").default == "identity"
    authenticated = probe.access["authenticated"]
    assert authenticated.select == ("id", "label")  # column grants, in column order
    assert authenticated.insert == ("label",)
    assert authenticated.update is None and authenticated.delete
    anon = probe.access["anon"]
    assert (anon.select, anon.insert, anon.update, anon.delete) == (None, None, None, False)
    assert probe.policies == [("owners read their probes", "SELECT", "authenticated")]
    assert ("23514", "check", "h11_probe_label_length", "label") in probe.constraints
    assert ("23505", "primary key", "h11_probe_pkey", "id") in probe.constraints
    assert [(e.sqlstate, e.message, e.hint, e.source) for e in probe.trigger_errors] == [
        ("22023", "label x is reserved", "Pick another label.", "private.h11_probe_guard")
    ]

    call = next(f for f in reference.functions if f.name == "h11_probe_call")
    assert call.callers == ("authenticated",) and call.comment == "Probe RPC."
    assert call.arguments == "p_id bigint, p_note text DEFAULT NULL::text"
    assert call.inputs == ("p_id", "p_note?")
    assert [(e.sqlstate, e.code, e.message, e.source) for e in call.errors] == [
        ("22023", "22023", "p_id must not be negative", "public.h11_probe_call"),
        ("42501", "insufficient_privilege", "not yours", "public.h11_probe_call"),
        ("PT404", "PT404", "probe % not found", "private.h11_probe_find"),  # a function it calls
        ("22023", "22023", "label x is reserved", "private.h11_probe_guard"),  # trigger of its insert
    ]
    server = next(f for f in reference.functions if f.name == "h11_probe_server")
    assert server.callers == ("service_role",) and server.errors == []

    text = render_markdown(reference)
    section = text[text.index("\n### h11_probe\n") :]
    section = section[: section.index("\n### ", 5)]
    assert "| authenticated | id, label | label | no | yes |" in section
    assert "| anon | no | no | no | no |" in section
    assert "- owners read their probes (select; authenticated)" in section
    assert "- 400, 23514: check `h11_probe_label_length` on (label)" in section
    rpc = text[text.index("\n### h11_probe_call\n") :]
    assert "Executable by: authenticated." in rpc
    assert (
        "Call: `supabase.rpc('h11_probe_call', { p_id, p_note? })` (POST `/rest/v1/rpc/h11_probe_call`)."
        in rpc
    )
    assert "| 404 | PT404 | probe % not found |  | `private.h11_probe_call`" not in rpc
    assert "| 404 | PT404 | probe % not found |  | `private.h11_probe_find` |" in rpc
    assert "| 403 (401 without a user token) | 42501 (insufficient_privilege) | not yours |" in rpc
    assert "[h11_probe_server](#h11_probe_server)" in text.split("Server-only RPCs: ")[1].split("\n")[0]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            "begin raise exception 'bad % value', x using errcode = '22023', hint = 'Use a uuid.'; end",
            [RaisedError("22023", "bad % value", "Use a uuid.")],
        ),
        (
            "begin raise sqlstate 'PT404' using message = format('room %s not found', p_id); end",
            [RaisedError("PT404", "room %s not found")],
        ),
        (
            "begin raise exception using errcode = 'P0001', message = 'It''s bad'; end",
            [RaisedError("P0001", "It's bad")],
        ),
        (
            "begin raise exception using errcode = 'PT409', message = 'x' || y; end",
            [RaisedError("PT409", "'x' || y")],
        ),
        ("begin raise notice 'hello'; end", []),
    ],
)
def test_raise_statements_give_code_message_and_hint(body: str, errors: list[RaisedError]) -> None:
    assert raised_errors(body) == errors


# -- 3. completeness ------------------------------------------------------------------------


def test_every_exposed_table_column_and_rpc_has_a_comment(db: Conn) -> None:
    reference = build_reference(db)
    missing = [f"table {r.name}" for r in reference.relations if not r.comment]
    missing += [f"column {r.name}.{c.name}" for r in reference.relations for c in r.columns if not c.comment]
    missing += [
        f"function {f.name}({f.identity})"
        for f in reference.functions
        if not f.comment and set(f.callers) & {*API_ROLES, "service_role"}
    ]
    assert len(reference.relations) > 20 and len(reference.functions) > 20
    assert not missing, "add `comment on` text (shown in docs/api.md) for:\n" + "\n".join(missing)
