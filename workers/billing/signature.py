"""Verify Stripe's `Stripe-Signature` header the way Stripe's own libraries do.

The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`. Each `v1`
is HMAC-SHA256, keyed with the endpoint secret (the whole `whsec_...` string),
over `"<t>.<raw body>"`. Stripe sends one `v1` per active secret while a
secret is being rolled, so a request is genuine if any `v1` matches any
configured secret. `v0` (a test-mode scheme) is ignored. Unlike Stripe's
libraries, which only reject old timestamps, a timestamp too far in the future
is refused as well: the tolerance is a window around now.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

DEFAULT_TOLERANCE_SECONDS = 300
SCHEME = "v1"


class SignatureError(Exception):
    """The request is not a genuine, fresh Stripe delivery. The message says why (no secrets)."""


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    """Hex HMAC-SHA256 of `"{timestamp}.{payload}"` keyed with the endpoint secret."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secrets: Sequence[str], timestamp: int | None = None) -> str:
    """A `Stripe-Signature` value for payload, one `v1` per secret (what Stripe sends; for tests)."""
    ts = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={ts}", *(f"{SCHEME}={compute_signature(s, ts, payload)}" for s in secrets)]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the `v1` signatures of a header; SignatureError if malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isdigit() or len(value) > 12:
                raise SignatureError("Stripe-Signature timestamp is not a number")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value.strip().lower())
    if timestamp is None:
        raise SignatureError("Stripe-Signature has no timestamp (t=)")
    if not signatures:
        raise SignatureError("Stripe-Signature has no v1 signature")
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check the header against the raw body; return its timestamp or raise SignatureError."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"Stripe-Signature timestamp is outside the {tolerance} s tolerance")
    expected = [compute_signature(secret, timestamp, payload) for secret in secrets if secret]
    # Compare every pair (constant time each) so timing does not reveal which one matched.
    matched = False
    for candidate in signatures:
        for good in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), good.encode("ascii"))
    if not matched:
        raise SignatureError("no Stripe-Signature v1 signature matches the payload")
    return timestamp
