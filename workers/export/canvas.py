"""Render a room canvas to Markdown or PDF.

Input: one CanvasElement per public.room_elements row of the room (see
workers/export/rooms.py, which reads them as the requesting member):
position and size in canvas units (y grows down), the element's
`data.title` and `data.text`, its outgoing connections
(public.room_element_connections, with their labels) and, for chat
elements, the messages of public.room_chat_messages, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from workers.export.pdf import Document, Page, wrap

SPEAKERS = {"user": "Member", "assistant": "AI", "system": "System"}


@dataclass(frozen=True)
class Link:
    """A connection from one element to another (`to` is the target element id)."""

    to: str
    label: str = ""


@dataclass(frozen=True)
class ChatLine:
    role: str
    content: str

    @property
    def speaker(self) -> str:
        return SPEAKERS.get(self.role, self.role.capitalize())


@dataclass(frozen=True)
class CanvasElement:
    id: str
    kind: str
    x: float
    y: float
    w: float
    h: float
    text: str = ""
    title: str = ""
    connections: tuple[Link, ...] = field(default_factory=tuple)
    messages: tuple[ChatLine, ...] = field(default_factory=tuple)

    @property
    def body(self) -> str:
        """The element's full text: its text, then (chat elements) the transcript."""
        parts = [self.text] if self.text else []
        parts += [f"{m.speaker}: {m.content}" for m in self.messages]
        return "\n".join(parts)


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
        if e.messages:
            for m in e.messages:
                out += [f"**{m.speaker}:** {_md_block(m.content)}", ""]
    edges = [(e, link) for e in ordered for link in e.connections]
    if edges:
        out += ["## Connections", ""]
        for e, link in edges:
            target = labels.get(link.to, f"(missing {link.to})")
            label = f" ({_md_inline(link.label)})" if link.label else ""
            out.append(f"- {_md_inline(labels[e.id])} → {_md_inline(target)}{label}")
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
    size = max(4.0, min(9.0, 9 * scale))

    def box(e: CanvasElement) -> tuple[float, float, float, float]:
        return (area_x + (e.x - left) * scale, area_y + (e.y - top) * scale, e.w * scale, e.h * scale)

    boxes = {e.id: box(e) for e in elements}
    for e in elements:
        for link in e.connections:
            if link.to in boxes:
                x, y, w, h = boxes[e.id]
                tx, ty, tw, th = boxes[link.to]
                x1, y1, x2, y2 = x + w / 2, y + h / 2, tx + tw / 2, ty + th / 2
                page.line(x1, y1, x2, y2)
                if link.label:
                    page.text((x1 + x2) / 2 + 2, (y1 + y2) / 2 - 2, link.label[:60], max(4.0, size - 2))
    for e in elements:
        x, y, w, h = boxes[e.id]
        page.rect(x, y, w, h, fill_gray=0.95)
        heading = [e.title] if e.title else []
        text = e.text or ("" if e.title else e.kind)
        lines = [*heading, *(wrap(text, max(w - 6, size), size) if text else [])]
        max_lines = max(0, int((h - 4) // (size * 1.2)))
        for i, line in enumerate(lines[:max_lines]):
            page.text(
                x + 3, y + 3 + size * (i + 1) * 1.2 - size * 0.2, line, size, bold=bool(heading) and i == 0
            )


def _text_pages(doc: Document, elements: Sequence[CanvasElement]) -> None:
    texts = [e for e in elements if e.body]
    if not texts:
        return
    page = doc.add_page(595, 842)
    y = 50.0
    page.text(50, y, "Element text", 14, bold=True)
    y += 24
    for e in texts:
        heading = f"{e.kind.capitalize()}: {e.title}" if e.title else e.kind.capitalize()
        lines = [heading, *wrap(e.body, 495, 10)]
        for i, line in enumerate(lines):
            if y > 800:
                page = doc.add_page(595, 842)
                y = 50.0
            page.text(50, y, line, 10, bold=(i == 0))
            y += 14
        y += 8


def _label(e: CanvasElement) -> str:
    """A short name for headings and connections: the title, else the first line of the text."""
    first = e.title.strip() or (e.text.strip().splitlines()[0] if e.text.strip() else "")
    return (first[:60] + "…") if len(first) > 60 else (first or f"{e.kind} {e.id}")


def _md_inline(text: str) -> str:
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in text.replace("\n", " "))


def _md_block(text: str) -> str:
    return "\n".join(
        ("\\" + line if line.startswith(("#", ">", "-", "*", "+", "|")) else line)
        for line in text.splitlines()
    )
