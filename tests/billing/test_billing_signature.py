"""Stripe-Signature verification, independent of the web layer."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from workers.billing.signature import (
    SignatureError,
    compute_signature,
    parse_header,
    signature_header,
    verify,
)

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","object":"event"}'
NOW = 1_764_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_raw_body_keyed_with_whole_secret():
    # The documented recipe, computed independently: key = the whole whsec_ string.
    expected = hmac.new(b"whsec_test_secret", b"1764000000." + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, NOW, BODY) == expected
    assert verify(BODY, f"t={NOW},v1={expected}", [SECRET], now=NOW) == NOW


def test_header_with_several_v1_and_a_v0_is_parsed():
    ts, sigs = parse_header(f"t={NOW},v1=AA,v1=bb,v0=cc,foo=bar,junk")
    assert ts == NOW and sigs == ["aa", "bb"]


def test_any_v1_matching_any_secret_is_enough():
    header = f"t={NOW},v1={'0' * 64},v1={compute_signature('whsec_new', NOW, BODY)}"
    assert verify(BODY, header, ["whsec_old", "whsec_new"], now=NOW) == NOW
    with pytest.raises(SignatureError, match="no Stripe-Signature v1"):
        verify(BODY, header, ["whsec_old"], now=NOW)


def test_v0_alone_is_not_accepted():
    sig = compute_signature(SECRET, NOW, BODY)
    with pytest.raises(SignatureError, match="no v1"):
        verify(BODY, f"t={NOW},v0={sig}", [SECRET], now=NOW)


def test_body_must_be_byte_exact():
    header = signature_header(BODY, [SECRET], NOW)
    with pytest.raises(SignatureError):
        verify(BODY.replace(b":", b": "), header, [SECRET], now=NOW)


@pytest.mark.parametrize("offset,ok", [(0, True), (300, True), (-300, True), (301, False), (-301, False)])
def test_tolerance_is_a_window_of_300_seconds(offset, ok):
    header = signature_header(BODY, [SECRET], NOW)
    if ok:
        assert verify(BODY, header, [SECRET], now=NOW + offset) == NOW
    else:
        with pytest.raises(SignatureError, match="tolerance"):
            verify(BODY, header, [SECRET], now=NOW + offset)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=", "t=-5,v1=aa", "t=12x,v1=aa", f"t={NOW}"])
def test_malformed_headers_are_refused(header):
    with pytest.raises(SignatureError):
        verify(BODY, header, [SECRET], now=NOW)


def test_no_secrets_never_verifies():
    header = signature_header(BODY, [""], NOW)
    with pytest.raises(SignatureError):
        verify(BODY, header, [], now=NOW)
    with pytest.raises(SignatureError):
        verify(BODY, header, [""], now=NOW)
