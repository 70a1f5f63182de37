"""Split a SQL file into statements, the way the Supabase CLI records them.

Handles single-quoted strings (and E'' escapes), quoted identifiers, dollar
quoting, line and nested block comments. Each statement keeps the 1-based line
it starts on so errors can point into the file.
"""

from __future__ import annotations

import re
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
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and nxt == "*":
            i = _skip_block_comment(sql, i)
        elif ch == "'":
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            i = _skip_quoted(sql, i, "'", backslash=escaped)
        elif ch == '"':
            i = _skip_quoted(sql, i, '"', backslash=False)
        elif ch == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            match = _DOLLAR_TAG.match(sql, i)
            if match:
                close = sql.find(match.group(0), match.end())
                i = n if close < 0 else close + len(match.group(0))
            else:
                i += 1
        elif ch == ";":
            _append(statements, sql, start, i)
            i += 1
            start = i
        else:
            i += 1
    _append(statements, sql, start, n)
    return statements


def normalize(sql: str) -> str:
    """Comparable form of SQL text: comments and whitespace removed."""
    parts = []
    for stmt in split_statements(sql):
        parts.append(re.sub(r"\s+", "", _strip_comments(stmt.text)))
    return ";".join(p for p in parts if p)


def _append(out: list[Statement], sql: str, start: int, end: int) -> None:
    chunk = sql[start:end]
    if not _strip_comments(chunk).strip():
        return
    line = sql.count("\n", 0, start + _code_offset(chunk)) + 1
    out.append(Statement(chunk.strip(), line))


def _code_offset(chunk: str) -> int:
    """Offset of the first character that is neither whitespace nor comment."""
    i = 0
    while i < len(chunk):
        if chunk[i].isspace():
            i += 1
        elif chunk.startswith("--", i):
            end = chunk.find("\n", i)
            i = len(chunk) if end < 0 else end + 1
        elif chunk.startswith("/*", i):
            i = _skip_block_comment(chunk, i)
        else:
            return i
    return 0


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


def _strip_comments(sql: str) -> str:
    """Remove comments outside quotes (used only for emptiness and comparison)."""
    out: list[str] = []
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif ch == "/" and nxt == "*":
            i = _skip_block_comment(sql, i)
        elif ch in "'\"":
            j = _skip_quoted(sql, i, ch, backslash=False)
            out.append(sql[i:j])
            i = j
        elif ch == "$":
            match = _DOLLAR_TAG.match(sql, i)
            if match and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                close = sql.find(match.group(0), match.end())
                j = n if close < 0 else close + len(match.group(0))
                out.append(sql[i:j])
                i = j
            else:
                out.append(ch)
                i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)
