"""A minimal PDF 1.4 writer: pages of lines, rectangles and Helvetica text. No dependency.

Enough for canvas exports: standard Type1 fonts (no embedding), WinAnsi text
(characters outside Latin-1 become '?'), Flate-compressed content streams,
and a correct cross-reference table.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field


def escape_text(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    safe = "".join(ch if ch >= " " or ch == "\t" else " " for ch in safe)
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


@dataclass
class Page:
    width: float
    height: float
    ops: list[str] = field(default_factory=list)

    def rect(self, x: float, y: float, w: float, h: float, *, fill_gray: float | None = None) -> None:
        """A rectangle in top-left coordinates (y grows downwards, like a canvas)."""
        py = self.height - y - h
        if fill_gray is not None:
            self.ops.append(f"{fill_gray:.2f} g {x:.2f} {py:.2f} {w:.2f} {h:.2f} re B 0 g")
        else:
            self.ops.append(f"{x:.2f} {py:.2f} {w:.2f} {h:.2f} re S")

    def line(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.ops.append(f"{x1:.2f} {self.height - y1:.2f} m {x2:.2f} {self.height - y2:.2f} l S")

    def text(self, x: float, y: float, text: str, size: float = 10, *, bold: bool = False) -> None:
        """Text whose baseline is at (x, y) in top-left coordinates."""
        font = "F2" if bold else "F1"
        self.ops.append(
            f"BT /{font} {size:.1f} Tf {x:.2f} {self.height - y:.2f} Td ({escape_text(text)}) Tj ET"
        )


@dataclass
class Document:
    title: str = ""
    pages: list[Page] = field(default_factory=list)

    def add_page(self, width: float = 842, height: float = 595) -> Page:
        page = Page(width, height)
        self.pages.append(page)
        return page

    def render(self) -> bytes:
        if not self.pages:
            self.add_page()
        objects: list[bytes] = []

        def add(body: bytes) -> int:
            objects.append(body)
            return len(objects)

        catalog = add(b"")  # filled below
        pages_id = add(b"")
        font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
        kids = []
        for page in self.pages:
            data = zlib.compress("\n".join(["0.5 w", *page.ops]).encode("latin-1"))
            content = add(
                b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
            )
            kids.append(
                add(
                    (
                        f"<< /Type /Page /Parent {pages_id} 0 R"
                        f" /MediaBox [0 0 {page.width:.0f} {page.height:.0f}]"
                        f" /Resources << /Font << /F1 {font} 0 R /F2 {bold} 0 R >> >>"
                        f" /Contents {content} 0 R >>"
                    ).encode()
                )
            )
        objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode()
        objects[pages_id - 1] = (
            f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()
        )
        info = add(f"<< /Title ({escape_text(self.title)}) /Producer (Backline) >>".encode("latin-1"))

        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objects) + 1}\n".encode()
        out += b"0000000000 65535 f \n"
        for offset in offsets:
            out += f"{offset:010d} 00000 n \n".encode()
        out += (
            f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R /Info {info} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n"
        ).encode()
        return bytes(out)


def text_width(text: str, size: float) -> float:
    """Approximate Helvetica width (average glyph 0.5 em): enough for wrapping."""
    return len(text) * size * 0.5


def wrap(text: str, width: float, size: float) -> list[str]:
    lines: list[str] = []
    max_chars = max(1, int(width / (size * 0.5)))
    for paragraph in text.splitlines() or [""]:
        words = paragraph.split(" ")
        current = ""
        for word in words:
            while len(word) > max_chars:
                if current:
                    lines.append(current)
                    current = ""
                lines.append(word[:max_chars])
                word = word[max_chars:]
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= max_chars:
                current = candidate
            else:
                lines.append(current)
                current = word
        lines.append(current)
    return lines
