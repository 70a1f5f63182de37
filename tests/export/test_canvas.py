"""Room canvas export: Markdown and a valid PDF from canvas elements (real tables: test_room_export.py)."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime

import pytest

from workers.errors import BacklineError
from workers.export.canvas import CanvasElement, ChatLine, Link, render_markdown, render_pdf
from workers.export.rooms import render

WHEN = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def elements() -> list[CanvasElement]:
    return [
        CanvasElement("e2", "note", 400, 40, 200, 120, "Second (b) idea"),
        CanvasElement(
            "e1",
            "note",
            40,
            40,
            200,
            120,
            "First idea\n# not a heading",
            connections=(Link("e2", "leads to"), Link("e9")),
        ),
        CanvasElement("e3", "shape", 40, 400, 80, 80),
        CanvasElement("e4", "text", 300, 300, 150, 40, "Ünïcödé ✓ \\ end"),
    ]


def test_markdown_lists_elements_in_reading_order_with_connections():
    md = render_markdown("Team *retro*", elements(), exported_at=WHEN)
    assert md.startswith("# Team \\*retro\\*\n\n_Exported 2026-11-25 04:00 UTC · 4 elements_")
    first, second = md.index("### Note: First idea"), md.index("### Note: Second (b) idea")
    assert first < second < md.index("### Text: Ünïcödé") < md.index("### Shape: shape e3")
    assert "\\# not a heading" in md
    assert "- First idea → Second (b) idea (leads to)" in md
    assert "- First idea → (missing e9)" in md
    assert render_markdown("Empty", [], exported_at=WHEN).endswith("0 elements_\n")


def test_titles_name_elements_and_chats_carry_their_transcript():
    chat = CanvasElement(
        "c",
        "chat",
        0,
        0,
        300,
        400,
        title="Ask the AI",
        messages=(ChatLine("user", "# Why?"), ChatLine("assistant", "Because.")),
    )
    frame = CanvasElement(
        "f", "frame", 400, 0, 400, 300, "inside", title="Strengths", connections=(Link("c"),)
    )
    md = render_markdown("Room", [chat, frame], exported_at=WHEN)
    assert "### Chat: Ask the AI" in md and "### Frame: Strengths\n\n<sub>" in md
    assert "**Member:** \\# Why?" in md and md.index("**Member:**") < md.index("**AI:** Because.")
    assert "- Strengths → Ask the AI" in md
    assert chat.body == "Member: # Why?\nAI: Because."


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
    assert "(leads to) Tj" in text  # the connection's label beside its line


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
