"""workers.check.postgrest_status mirrors PostgREST 12.2's SQLSTATE -> HTTP status table.

Expected values are PostgREST's (src/PostgREST/Error.hs, docs/references/errors.rst of v12.2),
one case per rule, including the order in which overlapping rules are tried.
"""

from __future__ import annotations

import json

import pytest

from workers.check.postgrest_status import http_status, is_server_error

TABLE = [
    # connection and triggered-action classes
    ("08000", 503),
    ("08006", 503),
    ("08P01", 503),
    ("09000", 500),
    ("0L000", 403),
    ("0LP01", 403),
    ("0P000", 403),
    # integrity: conflicts are 409, the rest of class 23 falls through to 400
    ("23503", 409),
    ("23505", 409),
    ("23502", 400),
    ("23514", 400),
    ("23P01", 400),
    # transaction state: 25006 before 25*
    ("25006", 405),
    ("25001", 500),
    ("25P02", 500),
    ("21000", 500),
    ("28000", 403),
    ("28P01", 403),
    ("2D000", 500),
    ("38000", 500),
    ("38003", 500),
    ("39000", 500),
    ("39P01", 500),
    ("3B000", 500),
    ("40001", 500),
    ("40P01", 500),
    # resources: 53400 before 53*; 54* is 500 since 12.2.0 (was 413)
    ("53400", 500),
    ("53000", 503),
    ("53100", 503),
    ("53200", 503),
    ("53300", 503),
    ("54000", 500),
    ("54001", 500),
    ("55000", 500),
    ("55P03", 500),
    # operator intervention: 57P01 before 57*
    ("57P01", 503),
    ("57014", 500),
    ("57P03", 500),
    ("58000", 500),
    ("58030", 500),
    ("F0000", 500),
    ("HV000", 500),
    ("HV00N", 500),
    # PL/pgSQL: P0001 before P0*
    ("P0001", 400),
    ("P0000", 500),
    ("P0002", 500),
    ("P0003", 500),
    ("P0004", 500),
    ("XX000", 500),
    ("XX001", 500),
    # class 42
    ("42883", 404),
    ("42P01", 404),
    ("42P17", 500),
    ("42703", 400),
    ("42601", 400),
    # PTxyz: the status itself
    ("PT400", 400),
    ("PT402", 402),
    ("PT404", 404),
    ("PT409", 409),
    ("PT410", 410),
    ("PT413", 413),
    ("PT429", 429),
    ("PT503", 503),
    ("PTX01", 500),
    ("PT4A4", 500),
    # everything else
    ("22023", 400),
    ("22P02", 400),
    ("22001", 400),
    ("2F003", 400),
    ("0A000", 400),
    ("44000", 400),
    ("72000", 400),
]


@pytest.mark.parametrize(("sqlstate", "status"), TABLE)
def test_each_rule_of_postgrests_table(sqlstate: str, status: int) -> None:
    assert http_status(sqlstate) == status
    assert is_server_error(sqlstate) == (status >= 500)


def test_insufficient_privilege_is_403_for_a_user_and_401_for_anon() -> None:
    assert http_status("42501") == 403
    assert http_status("42501", authenticated=True) == 403
    assert http_status("42501", authenticated=False) == 401
    assert http_status("PT404", authenticated=False) == 404  # only 42501 depends on the caller


def test_messages_that_change_the_status() -> None:
    assert http_status("21000", message="DELETE requires a WHERE clause") == 400  # pg-safeupdate
    assert http_status("21000", message="more than one row returned by a subquery") == 500
    assert http_status("42883", message="function xmlagg(bytea) does not exist") == 406
    assert http_status("42883", message="function public.nope() does not exist") == 404


def test_raise_sqlstate_pgrst_takes_the_status_from_detail() -> None:
    message = json.dumps({"code": "123", "message": "Payment Required"})
    detail = json.dumps({"status": 402, "headers": {"X-Powered-By": "Nerd Rage"}})
    assert http_status("PGRST", message=message, detail=detail) == 402
    assert http_status("PGRST", message="not json", detail=detail) == 500  # PGRST121
    assert http_status("PGRST", message=message, detail=None) == 500
    assert http_status("PGRST", message=message, detail='{"status": 402}') == 500  # headers missing
    assert http_status("PGRST") == 500


@pytest.mark.parametrize("bad", ["", "P000", "P00021", "404"])
def test_a_sqlstate_has_five_characters(bad: str) -> None:
    with pytest.raises(ValueError, match="5 characters"):
        http_status(bad)
