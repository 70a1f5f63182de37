"""Room canvas export: Markdown and a valid PDF from the documented element shape."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime

import pytest

from workers.errors import BacklineError
from workers.export.canvas import CanvasElement, element_from_row, render_markdown, render_pdf
from workers.export.rooms import render

ELEMENTS = [
    {"id": "e2", "kind": "note", "x": 400, "y": 40, "w": 200, "h": 120, "data": {"text": "Second (b) idea"}},
    {
        "id": "e1",
        "kind": "note",
        "x": 40,
        "y": 40,
        "w": 200,
        "h": 120,
        "data": {"text": "First idea\n# not a heading"},
        "connections": ["e2", "e9"],
    },
    {"id": "e3", "kind": "shape", "x": 40, "y": 400, "w": 80, "h": 80},
    {"id": "e4", "kind": "text", "x": 300, "y": 300, "w": 150, "h": 40, "data": {"text": "Ünïcödé ✓ \\ end"}},
]
WHEN = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def elements() -> list[CanvasElement]:
    return [element_from_row(e) for e in ELEMENTS]


def test_rows_of_other_shapes_are_accepted():
    row = {
        "id": "x",
        "room_id": "r",
        "type": "sticky",
        "body": {"x": "5", "y": 7, "width": 30, "text": "t", "connections": [{"to": "y"}]},
    }
    e = element_from_row(row)
    assert (e.kind, e.x, e.y, e.w, e.h, e.text, e.connections) == ("sticky", 5, 7, 30, 80, "t", ("y",))


def test_markdown_lists_elements_in_reading_order_with_connections():
    md = render_markdown("Team *retro*", elements(), exported_at=WHEN)
    assert md.startswith("# Team \\*retro\\*\n\n_Exported 2026-11-25 04:00 UTC · 4 elements_")
    first, second = md.index("### Note: First idea"), md.index("### Note: Second (b) idea")
    assert first < second < md.index("### Text: Ünïcödé") < md.index("### Shape: shape e3")
    assert "\\# not a heading" in md
    assert "- First idea → Second (b) idea" in md
    assert "- First idea → (missing e9)" in md
    assert render_markdown("Empty", [], exported_at=WHEN).endswith("0 elements_\n")


def parse_pdf(data: bytes) -> tuple[dict[int, bytes], list[bytes]]:
    """Check the structure (header, xref offsets, trailer) and return objects and decoded streams."""
    assert data.startswith(b"%PDF-1.4\n") and data.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF", data).group(1))
    assert data[startxref:].startswith(b"xref\n0 ")
    count = int(re.match(rb"xref\n0 (\d+)\n", data[startxref:]).group(1))
    entries = re.findall(rb"(\d{10}) (\d{5}) ([nf]) \n", data[startxref:])
    assert len(entries) == count
    objects = {}
    for number, (offset, _gen, kind) in enumerate(entries):
        if kind == b"n":
            assert data[int(offset) :].startswith(f"{number} 0 obj\n".encode()), number
            end = data.index(b"endobj", int(offset))
            objects[number] = data[int(offset) : end]
    assert re.search(rb"/Size %d /Root 1 0 R" % count, data)
    streams = []
    for body in objects.values():
        m = re.search(rb"/Length (\d+) /Filter /FlateDecode >>\nstream\n", body)
        if m:
            raw = body[m.end() : m.end() + int(m.group(1))]
            streams.append(zlib.decompress(raw))
    return objects, streams


def test_pdf_is_well_formed_and_carries_the_texts():
    data = render_pdf("Team retro", elements(), exported_at=WHEN)
    objects, streams = parse_pdf(data)
    assert b"/Count 2" in b"".join(objects.values())  # canvas page + text page
    text = b"\n".join(streams).decode("latin-1")
    assert "(Team retro) Tj" in text
    assert "(Second \\(b\\) idea) Tj" in text
    assert "(\u00dcn\u00efc\u00f6d\u00e9 ? \\\\ end) Tj" in text  # outside Latin-1 -> '?'
    assert text.count(" re B") == 4 and text.count(" l S") == 1  # 4 boxes, 1 drawable connection


def test_pdf_of_an_empty_room_and_long_texts_paginate():
    parse_pdf(render_pdf("", []))
    many = [CanvasElement(str(i), "note", i * 10, i * 10, 100, 50, "word " * 300) for i in range(20)]
    _objects, streams = parse_pdf(render_pdf("Big", many))
    assert len(streams) > 3


def test_unknown_format_is_refused():
    with pytest.raises(BacklineError, match="pdf or markdown"):
        render("docx", "t", [])
    body, ext, mime = render("markdown", "t", elements())
    assert (ext, mime) == ("md", "text/markdown") and body.startswith(b"# t")
