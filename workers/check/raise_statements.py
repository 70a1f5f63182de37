"""The errors a PL/pgSQL body raises, read from its RAISE statements.

Shared by the HTTP status tests (tests/security/test_http_statuses.py), which
check that none of them is a 5xx, and by the API reference (`backline gen
api-docs`), which lists them per RPC with their HTTP status. A static reading:
it finds `raise [exception] ... [using errcode = ...]`, `raise sqlstate '...'`,
`raise condition_name` and `select ... into strict` (P0002), skipping comments,
string literals, notices and bare re-raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

__all__ = ["RaisedError", "raised_codes", "raised_errors", "resolve_sqlstate"]

_COMMENT_OR_STRING = re.compile(r"('(?:[^']|'')*')|--[^\n]*|/\*.*?\*/", re.S)
_STATEMENT = re.compile(r"(?:[^;']|'(?:[^']|'')*')+")
_STRING = re.compile(r"'(?:[^']|'')*'")
_RAISE_START = re.compile(r"(?:^|\b(?:then|else|loop|begin)\b)\s*raise\b", re.I)
_LEVEL = re.compile(r"\s*(debug|log|info|notice|warning|exception)\b", re.I)
_SQLSTATE = re.compile(r"\s*sqlstate\s*'([^']*)'", re.I)
_CONDITION = re.compile(r"\s*([a-z_][a-z0-9_$]*)", re.I)
_ERRCODE = re.compile(r"\berrcode\s*:?=\s*('(?:[^']|'')*'|[^,;\s]+)", re.I)
_MESSAGE = re.compile(r"\bmessage\s*:?=\s*", re.I)
_HINT = re.compile(r"\bhint\s*:?=\s*", re.I)
_USING = re.compile(r"\busing\b", re.I)
_LITERAL_AT_START = re.compile(r"\s*(?:E)?'((?:[^']|'')*)'", re.I)
_FORMAT_CALL = re.compile(r"\s*format\s*\(\s*'((?:[^']|'')*)'\s*[,)].*", re.I | re.S)
_OPTION_END = re.compile(
    r",\s*(?:message|detail|hint|errcode|column|constraint|datatype|table|schema)\s*:?=", re.I
)


@dataclass(frozen=True)
class RaisedError:
    """One RAISE: its errcode as written ('P0001' for RAISE's default, '?' when computed at run
    time, a condition name such as 'no_data_found' as is), its message and hint as written
    (a literal's text, `%` placeholders kept; an expression's source; '' when none)."""

    code: str
    message: str = ""
    hint: str = ""


def _mask(text: str) -> str:
    """String literals' contents as underscores: keywords inside them vanish, offsets stay."""
    return _STRING.sub(lambda m: "'" + "_" * (len(m.group(0)) - 2) + "'", text)


def _option_value(tail: str, masked: str, option: re.Pattern[str]) -> str:
    """The value of a USING option (`message = ...`, `hint = ...`) as written: a lone literal's
    text, otherwise the expression's source."""
    using = _USING.search(masked)
    if using is None:
        return ""
    found = option.search(masked, using.end())
    if found is None:
        return ""
    rest_masked = masked[found.end() :]
    end = _OPTION_END.search(rest_masked)
    value = tail[found.end() : found.end() + (end.start() if end else len(rest_masked))].strip()
    return _literal_or_source(value)


def _literal_or_source(value: str) -> str:
    """A literal's text; `format('...', ...)`'s format string; otherwise the expression's source."""
    literal = _LITERAL_AT_START.fullmatch(value) or _FORMAT_CALL.fullmatch(value)
    if literal:
        return literal.group(1).replace("''", "'")
    return " ".join(value.split())


def _format_message(tail: str) -> str:
    """RAISE [level] 'format', args...: the format string."""
    literal = _LITERAL_AT_START.match(tail)
    return literal.group(1).replace("''", "'") if literal else ""


def raised_errors(body: str) -> list[RaisedError]:
    """The RAISE ... EXCEPTION statements of a PL/pgSQL body, in order. A bare RAISE (re-raise
    inside a handler) and notices are not errors of this function; `into strict` adds
    'no_data_found' (P0002; P0003 for several rows)."""
    body = _COMMENT_OR_STRING.sub(lambda m: m.group(1) or " ", body)
    errors: list[RaisedError] = []
    for stmt in _STATEMENT.findall(body):
        start = _RAISE_START.search(_mask(stmt))
        if start is None:
            continue
        tail = stmt[start.end() :]
        level = _LEVEL.match(tail)
        if level:
            if level.group(1).lower() != "exception":
                continue
            tail = tail[level.end() :]
        if not tail.strip():
            continue  # re-raise
        masked = _mask(tail)
        explicit = _SQLSTATE.match(tail)
        errcode = _ERRCODE.search(masked)  # outside string literals; the value read unmasked
        condition = _CONDITION.match(tail)
        message = _option_value(tail, masked, _MESSAGE) or _format_message(tail)
        hint = _option_value(tail, masked, _HINT)
        if explicit:
            code = explicit.group(1)
        elif errcode:
            value = tail[errcode.start(1) : errcode.end(1)]
            code = value[1:-1] if value.startswith("'") else "?"
        elif condition and condition.group(1).lower() != "using":
            code = condition.group(1).lower()
        else:
            code = "P0001"
        errors.append(RaisedError(code, message, hint))
    if re.search(r"\binto\s+strict\b", _STRING.sub("''", body), re.I):
        errors.append(RaisedError("no_data_found", "query returned no rows"))
    return errors


def raised_codes(body: str) -> list[str]:
    """The errcodes (SQLSTATE or condition name) of the RAISE ... EXCEPTION statements in a
    PL/pgSQL body, in order; 'P0001' for RAISE's default; '?' for a code computed at run time.
    A bare RAISE (re-raise inside a handler) and notices are not errors of this function."""
    return [error.code for error in raised_errors(body)]


def resolve_sqlstate(conn: psycopg.Connection[Any], code: str) -> str:
    """A SQLSTATE as is; a condition name as the server resolves it (`raise name` in a savepoint).

    ValueError for a code that is neither (a computed '?', an unknown condition)."""
    if re.fullmatch(r"[0-9A-Z]{5}", code):
        return code
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", code):
        raise ValueError(f"errcode {code!r} is not a literal")
    try:
        with conn.transaction():
            conn.execute(f"do $$ begin raise {code}; end $$")
    except psycopg.Error as exc:
        if exc.sqlstate and exc.sqlstate != "42704":
            return exc.sqlstate
    raise ValueError(f"unknown condition name {code!r}")
