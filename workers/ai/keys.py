"""Envelope encryption of provider keys (AES-256-GCM).

Each secret gets its own random 256-bit data key (DEK). The secret is sealed
with the DEK; the DEK is sealed ("wrapped") with a master key from
configuration, whose id is stored next to the blobs. Rotation re-wraps only
the DEKs, so it is quick and never needs the plaintext secrets to leave memory.
Blob layout: 12-byte nonce || ciphertext+tag. The key row id is bound in as
associated data, so a blob copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from workers.errors import BacklineError

NONCE_BYTES = 12


class KeyDecryptError(BacklineError):
    """A stored key cannot be decrypted (unknown master key id or tampered blob)."""


@dataclass(frozen=True)
class Sealed:
    master_key_id: str
    wrapped_dek: bytes
    ciphertext: bytes


class MasterKeys:
    """The configured master keys by id; `current` wraps new data keys."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if not keys:
            raise BacklineError(
                "no AI master key configured: set BACKLINE_AI_MASTER_KEYS='id:base64-32-bytes'"
            )
        if current not in keys:
            raise BacklineError(
                f"BACKLINE_AI_MASTER_KEY_ID {current!r} is not among the configured master keys"
            )
        for kid, key in keys.items():
            if len(key) != 32:
                raise BacklineError(f"AI master key {kid!r} must be 32 bytes (base64), got {len(key)}")
        self.keys = keys
        self.current = current

    @classmethod
    def parse(cls, spec: str, current: str = "") -> MasterKeys:
        """Parse 'id1:base64,id2:base64'; current defaults to the last id listed."""
        keys: dict[str, bytes] = {}
        last = ""
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, sep, b64 = part.partition(":")
            if not sep or not kid:
                raise BacklineError(
                    "BACKLINE_AI_MASTER_KEYS entries look like 'id:base64' separated by commas"
                )
            try:
                keys[kid] = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise BacklineError(f"AI master key {kid!r} is not valid base64") from None
            last = kid
        return cls(keys, current or last)

    @staticmethod
    def generate_spec(key_id: str) -> str:
        return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"

    def seal(self, secret: str, aad: bytes) -> Sealed:
        dek = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = nonce + AESGCM(dek).encrypt(nonce, secret.encode(), aad)
        return Sealed(self.current, self._wrap(dek, self.current, aad), ciphertext)

    def open(self, sealed: Sealed, aad: bytes) -> str:
        dek = self._unwrap(sealed.master_key_id, sealed.wrapped_dek, aad)
        try:
            plain = AESGCM(dek).decrypt(sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:], aad)
        except InvalidTag:
            raise KeyDecryptError("stored AI key failed authentication (tampered or moved)") from None
        return plain.decode()

    def rewrap(self, sealed: Sealed, aad: bytes) -> Sealed:
        """The same secret with its data key wrapped under the current master key."""
        dek = self._unwrap(sealed.master_key_id, sealed.wrapped_dek, aad)
        return Sealed(self.current, self._wrap(dek, self.current, aad), sealed.ciphertext)

    def _wrap(self, dek: bytes, kid: str, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.keys[kid]).encrypt(nonce, dek, b"dek:" + kid.encode() + b":" + aad)

    def _unwrap(self, kid: str, wrapped: bytes, aad: bytes) -> bytes:
        key = self.keys.get(kid)
        if key is None:
            raise KeyDecryptError(f"stored AI key is wrapped by master key {kid!r}, which is not configured")
        try:
            return AESGCM(key).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], b"dek:" + kid.encode() + b":" + aad
            )
        except InvalidTag:
            raise KeyDecryptError("stored AI data key failed authentication") from None


def last4(secret: str) -> str:
    return secret[-4:] if len(secret) >= 8 else ""
