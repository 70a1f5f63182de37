"""Normalise deparsed SQL expressions so the same condition reads the same after a dump and restore.

PostgreSQL keeps `a and b and c` as nested boolean nodes when it was written with
BETWEEN or across parentheses, and deparses it as `((a AND b) AND c)`; the same
expression reloaded from pg_dump's text becomes one flat node, `(a AND b AND c)`.
Both mean the same, so drift must not call it a change: nested AND chains inside
an AND chain (and OR inside OR) are flattened. Quoted strings and identifiers are
left untouched; nothing else is rewritten, so precedence-changing edits still differ.
"""

from __future__ import annotations

from typing import Union

Item = Union[str, "Group"]


class Group(list[Item]):
    """The items between one pair of parentheses."""


def _parse(text: str) -> Group:
    root = Group()
    stack = [root]
    i = 0
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            stack[-1].append("".join(buffer))
            buffer.clear()

    while i < len(text):
        char = text[i]
        if char in ("'", '"'):
            end = i + 1
            while end < len(text):
                if text[end] == char:
                    if end + 1 < len(text) and text[end + 1] == char:
                        end += 2
                        continue
                    break
                end += 1
            flush()
            stack[-1].append(text[i : end + 1])  # its own item: never split, never flattened
            i = end + 1
            continue
        if char == "(":
            flush()
            group = Group()
            stack[-1].append(group)
            stack.append(group)
        elif char == ")" and len(stack) > 1:
            flush()
            stack.pop()
        else:
            buffer.append(char)
        i += 1
    flush()
    if len(stack) != 1:
        return Group([text])  # unbalanced: leave as it is
    return root


def _is_quoted(piece: str) -> bool:
    return piece[:1] in ("'", '"')


def _operator(items: Group) -> str | None:
    """'AND' or 'OR' when the items are a chain of that operator (and not both)."""
    found = set()
    for item in items:
        if isinstance(item, str) and not _is_quoted(item):
            for op in ("AND", "OR"):
                if f" {op} " in item:
                    found.add(op)
    return found.pop() if len(found) == 1 else None


def _operands(items: Group, op: str) -> list[list[Item]]:
    operands: list[list[Item]] = [[]]
    separator = f" {op} "
    for item in items:
        if isinstance(item, str) and not _is_quoted(item) and separator in item:
            parts = item.split(separator)
            for index, part in enumerate(parts):
                if index:
                    operands.append([])
                if part:
                    operands[-1].append(part)
        else:
            operands[-1].append(item)
    return operands


def _render(items: Group) -> str:
    op = _operator(items)
    if op is None:
        return "".join(item if isinstance(item, str) else f"({_render(item)})" for item in items)
    rendered: list[str] = []
    for operand in _operands(items, op):
        meaningful = [i for i in operand if not (isinstance(i, str) and not i.strip())]
        if len(meaningful) == 1 and isinstance(meaningful[0], Group) and _operator(meaningful[0]) == op:
            rendered.append(_render(meaningful[0]))  # same chain: drop the inner parentheses
        else:
            rendered.append(_render(Group(operand)))
    return f" {op} ".join(rendered)


def flatten_boolean_chains(text: str) -> str:
    """`((a AND b) AND c)` -> `(a AND b AND c)`; any other text unchanged."""
    if " AND " not in text and " OR " not in text:
        return text
    return _render(_parse(text))
