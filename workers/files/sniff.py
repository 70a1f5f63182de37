"""The real type of a file from its first bytes (magic numbers), for the types the buckets allow.

Only the head of a file is needed (HEAD_BYTES). `detect` names the type the
bytes are, or a few common other things (so a rejection can say "text/plain",
"application/pdf"), or None. `matches` decides whether a declared MIME type
is what the bytes are; declared types the sniffer knows no signature for
cannot be verified and are accepted (`verifiable` says which).
"""

from __future__ import annotations

HEAD_BYTES = 4096

# Declared spellings of one type (the buckets allow audio/mp3 as well as audio/mpeg).
ALIASES = {
    "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
}

VERIFIABLE = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "audio/wav", "audio/mpeg"}
)


def canonical(mimetype: str | None) -> str:
    """Lower-case type without parameters, aliases folded (audio/mp3 -> audio/mpeg)."""
    base = (mimetype or "").split(";")[0].strip().lower()
    return ALIASES.get(base, base)


def verifiable(mimetype: str | None) -> bool:
    return canonical(mimetype) in VERIFIABLE


def _is_mp3_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a real version, layer, bitrate and sample rate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0x3
    layer = (head[1] >> 1) & 0x3
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0x3
    return version != 1 and layer != 0 and bitrate != 0xF and sample_rate != 0x3


def _is_avif(head: bytes) -> bool:
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    box_end = min(int.from_bytes(head[0:4], "big"), len(head))
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
    return any(brand in (b"avif", b"avis") for brand in brands)


def _is_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The head may end inside a multi-byte character.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def detect(head: bytes) -> str | None:
    """The MIME type the bytes start like, or None when no known signature matches."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[0:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[0:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "audio/wav"
    if _is_avif(head):
        return "image/avif"
    if head.startswith(b"ID3") or _is_mp3_frame(head):
        return "audio/mpeg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\x7fELF"):
        return "application/x-executable"
    if head.startswith(b"MZ"):
        return "application/x-msdownload"
    if _is_text(head):
        return "text/plain"
    return None


def mismatch(declared: str | None, head: bytes) -> tuple[str | None, str | None]:
    """(detected type, reason to reject or None). Unverifiable declared types are never a mismatch."""
    detected = detect(head)
    want = canonical(declared)
    if not verifiable(want) or detected == want:
        return detected, None
    if not head:
        return detected, f"type mismatch: declared {want} but the file is empty"
    found = detected or "no known file signature"
    return detected, f"type mismatch: declared {want} but the bytes are {found}"
