"""Split a SQL file into statements, the way the Supabase CLI records them.

Handles single-quoted strings (and E'' escapes), quoted identifiers, dollar
quoting, line and nested block comments, and SQL-standard `begin atomic ...
end` function bodies (whose inner semicolons do not end the statement). Each
statement starts at its first token (leading comments dropped) and keeps the
1-based line of that token, so errors can point into the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_ATOMIC_WORDS = re.compile(r"\b(begin\s+atomic|case|end)\b", re.IGNORECASE)
_TRANSACTION_CONTROL = re.compile(
    r"^(begin|commit|rollback|end|abort|start\s+transaction|savepoint|release|prepare\s+transaction)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Statement:
    text: str
    line: int

    @property
    def controls_transaction(self) -> bool:
        """True for BEGIN/COMMIT/ROLLBACK & co., which a migration file must not contain."""
        return bool(_TRANSACTION_CONTROL.match(self.text)) and not self.text.lower().startswith(
            ("begin atomic", "end if", "end loop")
        )


def split_statements(sql: str) -> list[Statement]:
    """Statements of `sql` without their terminating semicolons; empty ones dropped."""
    statements: list[Statement] = []
    first_code: int | None = None
    atomic_depth = 0
    for kind, begin, end in _tokens(sql):
        if kind == "end" and atomic_depth == 0:
            _append(statements, sql, first_code, begin)
            first_code = None
            continue
        if kind == "comment" or (first_code is None and not sql[begin:end].strip()):
            continue
        if first_code is None:
            first_code = begin + len(sql[begin:end]) - len(sql[begin:end].lstrip())
        if kind == "code":
            atomic_depth = _track_atomic(sql[begin:end], atomic_depth)
    _append(statements, sql, first_code, len(sql))
    return statements


def normalize_statements(statements: list[str]) -> list[str]:
    """Comparable form of statements: comments dropped, whitespace collapsed outside quotes."""
    result = []
    for text in statements:
        parts = []
        for kind, begin, end in _tokens(text):
            if kind == "code":
                parts.append(re.sub(r"\s+", " ", text[begin:end]))
            elif kind in ("quoted", "end"):
                parts.append(text[begin:end])
        normalized = re.sub(r" ?([(),;=]) ?", r"\1", "".join(parts)).strip().rstrip(";").strip()
        if normalized:
            result.append(normalized)
    return result


def _track_atomic(code: str, depth: int) -> int:
    for match in _ATOMIC_WORDS.finditer(code):
        word = match.group(1).lower()
        if word.startswith("begin") or (depth and word == "case"):
            depth += 1
        elif depth and word == "end":
            depth -= 1
    return depth


def _append(out: list[Statement], sql: str, first_code: int | None, end: int) -> None:
    if first_code is None:
        return
    out.append(Statement(sql[first_code:end].strip(), sql.count("\n", 0, first_code) + 1))


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
