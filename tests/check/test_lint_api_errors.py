"""`backline db check` lint api_error_maps_to_5xx: a function raising what PostgREST answers with 5xx.

Each test creates functions inside the `db` fixture's transaction (rolled back
afterwards) and runs the real lints through `run_checks`.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from workers.check import Finding, run_checks
from workers.check.postgrest_status import http_status
from workers.check.runner import load_lints

Conn = psycopg.Connection[Any]
LINT = "api_error_maps_to_5xx"
LINT_FILE = "0018_api_error_maps_to_5xx.sql"
# A name PL/pgSQL resolves to the first of several SQLSTATEs (the 2F/22 one, a 4xx).
SHADOWED_NAMES = {
    "null_value_not_allowed",
    "modifying_sql_data_not_permitted",
    "prohibited_sql_statement_attempted",
    "reading_sql_data_not_permitted",
}


def found(db: Conn) -> dict[str, Finding]:
    return {f.object: f for f in run_checks(db) if f.name == LINT}


def make_function(db: Conn, body: str, name: str = "chk_err", schema: str = "private") -> str:
    db.execute(
        f"create or replace function {schema}.{name}(p_id uuid) returns void"
        f" language plpgsql set search_path = '' as $fn$\n{body}\n$fn$"
    )
    return f"{schema}.{name}(p_id uuid)"


BAD = {
    "errcode P0002": (
        "begin\n  raise exception 'row % not found', p_id using errcode = 'P0002';\nend",
        "P0002",
    ),
    "raise sqlstate 55000": ("begin\n  raise sqlstate '55000' using message = 'busy';\nend", "55000"),
    "condition name": ("begin\n  raise no_data_found;\nend", "P0002 (no_data_found)"),
    "level and condition": (
        "begin\n  raise exception too_many_rows using hint = 'x';\nend",
        "P0003 (too_many_rows)",
    ),
    "errcode condition name": (
        "begin\n  raise exception 'oops' using errcode = 'internal_error';\nend",
        "XX000 (internal_error)",
    ),
    "using only": ("begin\n  raise using message = 'm', errcode = 'XX000';\nend", "XX000"),
    "nested in if": (
        "begin\n  if p_id is null then raise exception 'x' using errcode = 'P0004'; end if;\nend",
        "P0004",
    ),
    "stack depth class": ("begin\n  raise exception 'deep' using errcode = '54001';\nend", "54001"),
    "connection class 503": ("begin\n  raise exception 'down' using errcode = '08006';\nend", "08006"),
    "PT5xx": ("begin\n  raise sqlstate 'PT500' using message = 'boom';\nend", "PT500"),
    "PT not a number": ("begin\n  raise sqlstate 'PTX01' using message = 'boom';\nend", "PTX01"),
    "into strict": (
        "declare v uuid;\nbegin\n  select u.id into strict v from auth.users u where u.id = p_id;\nend",
        "SELECT ... INTO STRICT",
    ),
    "second statement": (
        "begin\n  raise notice 'first';\n  raise exception 'then' using errcode = 'P0002';\nend",
        "P0002",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_function_raising_a_5xx_code_is_reported_and_its_fix_is_not(db: Conn, case: str) -> None:
    body, shown = BAD[case]
    obj = make_function(db, body)
    hits = found(db)
    assert obj in hits, f"{LINT} did not report {case!r}; it reported {sorted(hits)}"
    finding = hits[obj]
    assert finding.level == "ERROR"
    assert shown in finding.detail and "HTTP 5" in finding.detail
    assert finding.remediation
    make_function(db, "begin\n  raise exception 'row % not found', p_id using errcode = 'PT404';\nend")
    assert obj not in found(db)


GOOD = {
    "PT404 with hint": "begin\n  raise exception 'x' using errcode = 'PT404', hint = 'h';\nend",
    "default P0001": "begin\n  raise exception 'bad input %', p_id;\nend",
    "bare message": "begin\n  raise 'bad input';\nend",
    "4xx codes": (
        "begin\n  if p_id is null then raise exception 'a' using errcode = '22023'; end if;\n"
        "  if p_id is null then raise exception 'b' using errcode = '42501'; end if;\n"
        "  if p_id is null then raise sqlstate 'PT409' using message = 'c'; end if;\n"
        "  raise unique_violation using message = 'd';\nend"
    ),
    "notice is not an error": "begin\n  raise notice 'x' using errcode = 'P0002';\nend",
    "warning is not an error": "begin\n  raise warning no_data_found;\nend",
    "line comment": "begin\n  -- raise exception 'x' using errcode = 'P0002';\n  return;\nend",
    "block comment": "begin\n  /* raise sqlstate 'XX000'; */\n  return;\nend",
    "text in a string": (
        "begin\n  raise exception 'do not raise no_data_found; use errcode = ''P0002'' never'"
        " using errcode = '22023';\nend"
    ),
    "handler, not a raise": (
        "declare v uuid;\nbegin\n  select u.id into v from auth.users u where u.id = p_id;\n"
        "exception when no_data_found or sqlstate 'P0003' then\n  raise;\nend"
    ),
    "re-raise": "begin\n  perform 1;\nexception when others then\n  raise;\nend",
    "shadowed name is 22004": "begin\n  raise null_value_not_allowed;\nend",
    "errcode from a variable": (
        "declare v text := 'P0002';\nbegin\n  raise exception 'x' using errcode = v;\nend"
    ),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_a_function_raising_only_4xx_codes_is_not_reported(db: Conn, case: str) -> None:
    obj = make_function(db, GOOD[case])
    hits = found(db)
    assert obj not in hits, f"{LINT} wrongly reported {case!r}: {hits[obj].detail}"


def test_every_schema_of_ours_is_read_but_not_the_platforms(db: Conn) -> None:
    body = "begin\n  raise exception 'x' using errcode = 'P0002';\nend"
    ours = make_function(db, body, schema="public")
    db.execute("create schema chk_app")
    other = make_function(db, body, schema="chk_app")
    platform = make_function(db, body, schema="auth", name="chk_platform_err")
    hits = found(db)
    assert ours in hits and other in hits
    assert platform not in hits


def test_trigger_functions_and_several_codes_in_one_finding(db: Conn) -> None:
    db.execute(
        "create function private.chk_trigger() returns trigger language plpgsql set search_path = ''"
        " as $fn$ begin\n  if new is null then raise sqlstate 'P0002'; end if;\n"
        "  raise exception 'gone' using errcode = '55000';\nend $fn$"
    )
    finding = found(db)["private.chk_trigger()"]
    assert "P0002 -> HTTP 500" in finding.detail and "55000 -> HTTP 500" in finding.detail


def test_sql_functions_cannot_raise_and_are_not_read(db: Conn) -> None:
    db.execute(
        "create function private.chk_sql() returns text language sql set search_path = ''"
        " as $fn$ select 'raise exception using errcode = ''P0002''' $fn$"
    )
    assert "private.chk_sql()" not in found(db)


def test_the_migrated_database_has_no_finding(db: Conn) -> None:
    hits = found(db)
    assert not hits, "functions answering HTTP 5xx:\n" + "\n".join(f.detail for f in hits.values())


# -- the lint's table of condition names ---------------------------------------------


def lint_conditions() -> dict[str, str]:
    sql = dict(load_lints())[LINT_FILE]
    return dict(re.findall(r"\('([a-z_][a-z0-9_]*)', '([0-9A-Z]{5})'\)", sql))


def test_the_condition_table_is_every_name_postgrest_answers_with_5xx() -> None:
    expected = {
        name.lower(): cls.sqlstate
        for name, cls in psycopg.errors._sqlcodes.items()  # name and SQLSTATE -> class
        if name != cls.sqlstate and name.lower() not in SHADOWED_NAMES and http_status(cls.sqlstate) >= 500
    }
    assert lint_conditions() == expected


def test_the_server_resolves_each_condition_name_to_the_listed_sqlstate(db: Conn) -> None:
    for name, sqlstate in lint_conditions().items():
        with pytest.raises(psycopg.Error) as caught, db.transaction():
            db.execute(f"do $$ begin raise {name}; end $$")
        if caught.value.sqlstate == "42704":  # unknown to this server version (e.g. 25P04 before 17)
            continue
        assert caught.value.sqlstate == sqlstate, name
    for name in SHADOWED_NAMES:
        with pytest.raises(psycopg.Error) as caught, db.transaction():
            db.execute(f"do $$ begin raise {name}; end $$")
        assert http_status(caught.value.sqlstate or "") < 500, name
