"""Envelope encryption of the private signing keys (nothing a database dump can sign with).

Each private JWK is encrypted with its own random 256-bit data key (AES-256-GCM); the data
key is encrypted ("wrapped") with a key-encryption key (KEK) that lives only in the
service's configuration (``SIGNING_KEK``), never in the database. A row holds:

- ``sealed_private``: nonce (12 bytes) || AES-GCM(data key, private JWK as JSON)
- ``wrapped_data_key``: nonce (12 bytes) || AES-GCM(KEK, data key)
- ``kek_id``: which KEK wrapped it (a fingerprint of the KEK, not the KEK)

Both encryptions bind the key's ``kid`` as associated data (the wrap also binds the KEK id),
so a ciphertext moved to another row, or a data key swapped between rows, fails to open
instead of signing under the wrong ``kid``.

KEK rotation: ``SIGNING_KEK=new,old`` — the first KEK wraps, every listed KEK unwraps, and
at start rows wrapped with an older KEK are re-wrapped with the first (only the 32-byte data
key is re-encrypted). Once every instance has restarted, drop the old KEK from the list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_BYTES = 32
NONCE_BYTES = 12
_KEY_CONTEXT = b"quartet/signing-key/v1\x00"
_WRAP_CONTEXT = b"quartet/signing-key-wrap/v1\x00"


class SealError(Exception):
    """A sealed key cannot be opened (unknown KEK, wrong KEK, or tampered ciphertext)."""


def decode_kek(text: str) -> bytes:
    """A KEK from its base64 text (standard or URL-safe alphabet, padding optional): exactly 32 bytes."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a SIGNING_KEK entry is not base64") from None
    if len(raw) != KEK_BYTES:
        raise ValueError(f"a SIGNING_KEK entry must decode to {KEK_BYTES} bytes, not {len(raw)}")
    return raw


def kek_id(kek: bytes) -> str:
    """A public fingerprint naming a KEK (stored with each row; reveals nothing usable about it)."""
    return "kek-" + hashlib.sha256(b"quartet-kek-id\x00" + kek).hexdigest()[:16]


@dataclass(frozen=True)
class SealedKey:
    sealed_private: bytes
    wrapped_data_key: bytes
    kek_id: str


class KeyEncryptionKeys:
    """The configured KEKs: the first seals, any of them opens."""

    def __init__(self, keks: list[bytes]) -> None:
        if not keks:
            raise ValueError("at least one key-encryption key is needed")
        self._by_id = {kek_id(k): k for k in keks}
        self.current_id = kek_id(keks[0])

    @classmethod
    def from_setting(cls, value: str) -> KeyEncryptionKeys:
        return cls([decode_kek(part) for part in value.split(",") if part.strip()])

    def knows(self, kid_of_kek: str) -> bool:
        return kid_of_kek in self._by_id

    def seal(self, kid: str, private_jwk: dict[str, Any]) -> SealedKey:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(private_jwk, separators=(",", ":")).encode()
        sealed = nonce + AESGCM(data_key).encrypt(nonce, plaintext, _KEY_CONTEXT + kid.encode())
        return SealedKey(sealed, self._wrap(kid, data_key, self.current_id), self.current_id)

    def open(self, kid: str, sealed: SealedKey) -> dict[str, Any]:
        """The private JWK of row ``kid``; :class:`SealError` if it cannot be opened."""
        data_key = self._unwrap(kid, sealed)
        nonce, body = sealed.sealed_private[:NONCE_BYTES], sealed.sealed_private[NONCE_BYTES:]
        try:
            plaintext = AESGCM(data_key).decrypt(nonce, body, _KEY_CONTEXT + kid.encode())
        except InvalidTag:
            raise SealError(f"the private key of {kid} does not open (tampered, or moved from another row)") from None
        jwk = json.loads(plaintext)
        if not isinstance(jwk, dict) or jwk.get("kid") != kid:
            raise SealError(f"the private key sealed under {kid} names another kid")
        return jwk

    def rewrap(self, kid: str, sealed: SealedKey) -> SealedKey:
        """The same sealed key with its data key wrapped by the current KEK."""
        return SealedKey(
            sealed.sealed_private, self._wrap(kid, self._unwrap(kid, sealed), self.current_id), self.current_id
        )

    def _wrap(self, kid: str, data_key: bytes, with_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self._by_id[with_id]).encrypt(nonce, data_key, _wrap_aad(kid, with_id))

    def _unwrap(self, kid: str, sealed: SealedKey) -> bytes:
        kek = self._by_id.get(sealed.kek_id)
        if kek is None:
            raise SealError(
                f"signing key {kid} is sealed with {sealed.kek_id}, which SIGNING_KEK does not hold "
                f"(SIGNING_KEK holds {', '.join(sorted(self._by_id))})"
            )
        wrapped = sealed.wrapped_data_key
        try:
            return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(kid, sealed.kek_id))
        except InvalidTag:
            raise SealError(f"the data key of {kid} does not open (tampered, or moved from another row)") from None


def _wrap_aad(kid: str, with_id: str) -> bytes:
    return _WRAP_CONTEXT + kid.encode() + b"\x00" + with_id.encode()
