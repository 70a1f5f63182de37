"""The HTTP status PostgREST 12 answers for a SQLSTATE the database raised.

A mirror of ``mapSQLtoHTTP`` in PostgREST 12.2's ``src/PostgREST/Error.hs``
(documented in docs/references/errors.rst, "HTTP Status Codes"), so tests and
lints can tell which errors a client sees as its own mistake (4xx) and which as
an outage (5xx). The rules are tried in PostgREST's order; the first match wins:

    08*    503   connection error             28*    403   invalid authorization
    09*    500   triggered action exception   2D*    500   invalid transaction end
    0L*    403   invalid grantor              38*    500   external routine exception
    0P*    403   invalid role specification   39*    500   external routine invocation
    23503  409   foreign key violation        3B*    500   savepoint exception
    23505  409   unique violation             40*    500   transaction rollback
    25006  405   read-only transaction        53400  500   configuration limit exceeded
    21000  500   cardinality violation        53*    503   insufficient resources
                 (400 if the message ends     54*    500   program limit exceeded
                 "requires a WHERE clause")   55*    500   object not in prerequisite state
    25*    500   invalid transaction state    57P01  503   admin shutdown
    F0*    500   configuration file error     57*    500   operator intervention
    HV*    500   foreign data wrapper error   58*    500   system error
    P0001  400   RAISE's default              P0*    500   other PL/pgSQL errors
    XX*    500   internal error               42883  404   undefined function
    42P01  404   undefined table                           (406 for xmlagg)
    42P17  500   infinite recursion           42501  403   insufficient privilege (401 anon)
    PTxyz  xyz   (500 unless xyz is a number) PGRST  DETAIL's JSON "status" (500 if unparsable)
    anything else 400

PostgREST 12.0 answered 54* with 413 and 53400 with 503; 12.2.0 changed both to
500 (PostgREST #3255, #3267), which is the version Supabase runs.
"""

from __future__ import annotations

import json
import re

__all__ = ["http_status", "is_server_error"]

# Haskell's `readMaybe :: String -> Maybe Int` on the three characters after "PT".
_PT_NUMBER = re.compile(r"\s*(-?[0-9]+)\s*")

# (prefix, status) in PostgREST's order, for the codes that need no message.
_PREFIX_RULES: tuple[tuple[str, int], ...] = (
    ("08", 503),
    ("09", 500),
    ("0L", 403),
    ("0P", 403),
    ("23503", 409),
    ("23505", 409),
    ("25006", 405),
)
_LATER_RULES: tuple[tuple[str, int], ...] = (
    ("25", 500),
    ("28", 403),
    ("2D", 500),
    ("38", 500),
    ("39", 500),
    ("3B", 500),
    ("40", 500),
    ("53400", 500),
    ("53", 503),
    ("54", 500),
    ("55", 500),
    ("57P01", 503),
    ("57", 500),
    ("58", 500),
    ("F0", 500),
    ("HV", 500),
    ("P0001", 400),
    ("P0", 500),
    ("XX", 500),
)


def http_status(
    sqlstate: str,
    authenticated: bool = True,
    *,
    message: str = "",
    detail: str | None = None,
) -> int:
    """The HTTP status PostgREST 12 sends when a request fails with `sqlstate`.

    `authenticated` is whether the request carried a user's JWT (42501 is 403
    then, 401 for anon). `message` matters only for 21000, 42883 and 'PGRST',
    `detail` only for 'PGRST' (its JSON "status"); the defaults give the answer
    for a function's own RAISE without those.
    """
    if not isinstance(sqlstate, str) or len(sqlstate) != 5:
        raise ValueError(f"a SQLSTATE is 5 characters, got {sqlstate!r}")
    code = sqlstate.upper()
    for prefix, status in _PREFIX_RULES:
        if code.startswith(prefix):
            return status
    if code == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    for prefix, status in _LATER_RULES:
        if code.startswith(prefix):
            return status
    if code == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if code == "42P01":
        return 404
    if code == "42P17":
        return 500
    if code == "42501":
        return 403 if authenticated else 401
    if code.startswith("PT"):
        number = _PT_NUMBER.fullmatch(sqlstate[2:])
        return int(number.group(1)) if number else 500
    if code == "PGRST":
        return _pgrst_status(message, detail)
    return 400


def is_server_error(sqlstate: str, authenticated: bool = True) -> bool:
    """True if PostgREST answers `sqlstate` with a 5xx (clients and monitoring see an outage)."""
    return http_status(sqlstate, authenticated) >= 500


def _pgrst_status(message: str, detail: str | None) -> int:
    """RAISE SQLSTATE 'PGRST': MESSAGE must be JSON with "code" and "message", DETAIL JSON with
    "status" and "headers"; the status is DETAIL's. Anything else is PGRST121 (500)."""
    try:
        body = json.loads(message)
        meta = json.loads(detail) if detail is not None else None
    except ValueError:
        return 500
    if not (
        isinstance(body, dict)
        and isinstance(body.get("code"), str)
        and isinstance(body.get("message"), str)
        and isinstance(meta, dict)
        and isinstance(meta.get("headers"), dict)
    ):
        return 500
    status = meta.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    return 500
