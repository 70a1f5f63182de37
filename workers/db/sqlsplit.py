"""Split a SQL file into statements, the way the Supabase CLI records them.

Handles single-quoted strings (and E'' escapes), quoted identifiers, dollar
quoting, line and nested block comments. Each statement keeps the 1-based line
its first token starts on, so errors can point into the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    text: str
    line: int


def split_statements(sql: str) -> list[Statement]:
    """Statements of `sql` without their terminating semicolons; empty ones dropped."""
    statements: list[Statement] = []
    start = 0
    first_code: int | None = None
    for kind, begin, end in _tokens(sql):
        if kind == "end":
            _append(statements, sql, start, begin, first_code)
            start, first_code = end, None
        elif kind != "comment" and first_code is None and sql[begin:end].strip():
            first_code = begin + len(sql[begin:end]) - len(sql[begin:end].lstrip())
    _append(statements, sql, start, len(sql), first_code)
    return statements


def normalize(sql: str) -> str:
    """Comparable form of SQL text: comments and whitespace removed."""
    parts = []
    for stmt in split_statements(sql):
        code = "".join(stmt.text[b:e] for kind, b, e in _tokens(stmt.text) if kind != "comment")
        parts.append(re.sub(r"\s+", "", code))
    return ";".join(p for p in parts if p)


def _append(out: list[Statement], sql: str, start: int, end: int, first_code: int | None) -> None:
    if first_code is None:
        return
    out.append(Statement(sql[start:end].strip(), sql.count("\n", 0, first_code) + 1))


def _tokens(sql: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) spans: 'code', 'quoted', 'comment', or 'end' for a semicolon."""
    i = 0
    code_start = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        end = -1
        kind = "quoted"
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            end, kind = (n if newline < 0 else newline), "comment"
        elif sql.startswith("/*", i):
            end, kind = _skip_block_comment(sql, i), "comment"
        elif ch == "'":
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            end = _skip_quoted(sql, i, "'", backslash=escaped)
        elif ch == '"':
            end = _skip_quoted(sql, i, '"', backslash=False)
        elif ch == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            match = _DOLLAR_TAG.match(sql, i)
            if match:
                close = sql.find(match.group(0), match.end())
                end = n if close < 0 else close + len(match.group(0))
        elif ch == ";":
            end, kind = i + 1, "end"
        if end < 0:
            i += 1
            continue
        if code_start < i:
            yield "code", code_start, i
        yield kind, i, end
        i = code_start = end
    if code_start < n:
        yield "code", code_start, n


def _skip_block_comment(sql: str, i: int) -> int:
    depth = 0
    n = len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _skip_quoted(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    i += 1
    n = len(sql)
    while i < n:
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n
