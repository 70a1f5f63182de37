"""Render a room canvas to Markdown or PDF.

Input shape (what the rooms module hands over, one dict per element):

    {"id": "e1", "kind": "note" | "text" | "shape" | "image" | ...,
     "x": 120, "y": 40, "w": 200, "h": 120,          # canvas units, y grows down
     "data": {"text": "Idea: ..."},                  # optional
     "connections": ["e2", "e3"]}                    # ids this element points to

`element_from_row()` also accepts the column variants a room_elements row
may have (`type`, `body`/`data` jsonb holding the geometry), so the renderer
does not depend on the exact table layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from workers.export.pdf import Document, Page, wrap


@dataclass(frozen=True)
class CanvasElement:
    id: str
    kind: str
    x: float
    y: float
    w: float
    h: float
    text: str = ""
    connections: tuple[str, ...] = field(default_factory=tuple)


def _num(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def element_from_row(row: Mapping[str, Any]) -> CanvasElement:
    """A CanvasElement from the documented shape or a room_elements row (as JSON)."""
    data: dict[str, Any] = {}
    for key in ("body", "data", "content"):
        if isinstance(row.get(key), Mapping):
            data = {**data, **row[key]}
    merged = {**data, **{k: v for k, v in row.items() if v is not None}}
    connections = merged.get("connections") or data.get("connections") or []
    if not isinstance(connections, Sequence) or isinstance(connections, str):
        connections = []
    return CanvasElement(
        id=str(merged.get("id", "")),
        kind=str(merged.get("kind") or merged.get("type") or data.get("type") or "element"),
        x=_num(merged.get("x"), 0),
        y=_num(merged.get("y"), 0),
        w=max(_num(merged.get("w", merged.get("width")), 160), 1),
        h=max(_num(merged.get("h", merged.get("height")), 80), 1),
        text=str(data.get("text") or merged.get("text") or ""),
        connections=tuple(str(c.get("to") if isinstance(c, Mapping) else c) for c in connections),
    )


def reading_order(elements: Sequence[CanvasElement]) -> list[CanvasElement]:
    return sorted(elements, key=lambda e: (round(e.y / 40), e.x, e.id))


def render_markdown(
    title: str, elements: Sequence[CanvasElement], *, exported_at: datetime | None = None
) -> str:
    when = (exported_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    ordered = reading_order(elements)
    labels = {e.id: _label(e) for e in ordered}
    out = [
        f"# {_md_inline(title) or 'Untitled room'}",
        "",
        f"_Exported {when} · {len(ordered)} elements_",
        "",
    ]
    if ordered:
        out += ["## Elements", ""]
    for e in ordered:
        out.append(f"### {e.kind.capitalize()}: {_md_inline(labels[e.id])}")
        out.append("")
        out.append(f"<sub>at ({e.x:g}, {e.y:g}), {e.w:g} x {e.h:g}</sub>")
        out.append("")
        if e.text:
            out += [_md_block(e.text), ""]
    edges = [(e, target) for e in ordered for target in e.connections]
    if edges:
        out += ["## Connections", ""]
        for e, target in edges:
            out.append(
                f"- {_md_inline(labels[e.id])} → {_md_inline(labels.get(target, f'(missing {target})'))}"
            )
        out.append("")
    return "\n".join(out)


def render_pdf(
    title: str, elements: Sequence[CanvasElement], *, exported_at: datetime | None = None
) -> bytes:
    """Page 1: the canvas drawn to fit an A4 landscape page; then the full text of every element."""
    when = (exported_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    doc = Document(title=title or "Untitled room")
    page = doc.add_page()
    page.text(36, 40, title or "Untitled room", 16, bold=True)
    page.text(36, 56, f"Exported {when} - {len(elements)} elements", 9)
    ordered = reading_order(elements)
    if ordered:
        _draw_canvas(page, ordered)
    _text_pages(doc, ordered)
    return doc.render()


def _draw_canvas(page: Page, elements: Sequence[CanvasElement]) -> None:
    left = min(e.x for e in elements)
    top = min(e.y for e in elements)
    right = max(e.x + e.w for e in elements)
    bottom = max(e.y + e.h for e in elements)
    area_x, area_y, area_w, area_h = 36.0, 72.0, page.width - 72, page.height - 108
    scale = min(area_w / max(right - left, 1), area_h / max(bottom - top, 1), 1.5)

    def box(e: CanvasElement) -> tuple[float, float, float, float]:
        return (area_x + (e.x - left) * scale, area_y + (e.y - top) * scale, e.w * scale, e.h * scale)

    boxes = {e.id: box(e) for e in elements}
    for e in elements:
        for target in e.connections:
            if target in boxes:
                x, y, w, h = boxes[e.id]
                tx, ty, tw, th = boxes[target]
                page.line(x + w / 2, y + h / 2, tx + tw / 2, ty + th / 2)
    for e in elements:
        x, y, w, h = boxes[e.id]
        page.rect(x, y, w, h, fill_gray=0.95)
        size = max(4.0, min(9.0, 9 * scale))
        lines = wrap(e.text or e.kind, max(w - 6, size), size)
        max_lines = max(0, int((h - 4) // (size * 1.2)))
        for i, line in enumerate(lines[:max_lines]):
            page.text(x + 3, y + 3 + size * (i + 1) * 1.2 - size * 0.2, line, size)


def _text_pages(doc: Document, elements: Sequence[CanvasElement]) -> None:
    texts = [e for e in elements if e.text]
    if not texts:
        return
    page = doc.add_page(595, 842)
    y = 50.0
    page.text(50, y, "Element text", 14, bold=True)
    y += 24
    for e in texts:
        lines = [f"{e.kind.capitalize()}", *wrap(e.text, 495, 10)]
        for i, line in enumerate(lines):
            if y > 800:
                page = doc.add_page(595, 842)
                y = 50.0
            page.text(50, y, line, 10, bold=(i == 0))
            y += 14
        y += 8


def _label(e: CanvasElement) -> str:
    first = e.text.strip().splitlines()[0] if e.text.strip() else ""
    return (first[:60] + "…") if len(first) > 60 else (first or f"{e.kind} {e.id}")


def _md_inline(text: str) -> str:
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in text.replace("\n", " "))


def _md_block(text: str) -> str:
    return "\n".join(
        ("\\" + line if line.startswith(("#", ">", "-", "*", "+", "|")) else line)
        for line in text.splitlines()
    )
