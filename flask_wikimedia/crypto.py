"""Authenticated encryption (AES-256-GCM) with keys derived from the app's secret key.

Used for login records in Redis and for the pending-login cookie: a neighbour on a shared Redis
can neither read nor forge them, and a record cannot be moved to another key (the key name is
authenticated as associated data). Keys are derived with HKDF, one per purpose, so the same
secret never encrypts two kinds of data under one key. ``SECRET_KEY_FALLBACKS`` are tried when
opening, so the secret can be rotated without logging everyone out at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


def _derive(secret: str | bytes, purpose: str) -> AESGCM:
    raw = secret.encode() if isinstance(secret, str) else secret
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"flask-wikimedia",
        info=purpose.encode(),
    ).derive(raw)
    return AESGCM(key)


class Sealer:
    """Seal and open byte strings for one purpose ("login-record", "pending-login", ...)."""

    def __init__(self, secret: str | bytes, purpose: str, fallbacks: Sequence[str | bytes] = ()):
        self._current = _derive(secret, purpose)
        self._all = [self._current, *(_derive(s, purpose) for s in fallbacks)]

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._current.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes | None:
        """The plaintext, or None if the value was not sealed by us for this place."""
        if len(sealed) <= _NONCE:
            return None
        nonce, body = sealed[:_NONCE], sealed[_NONCE:]
        for aead in self._all:
            try:
                return aead.decrypt(nonce, body, associated)
            except InvalidTag:
                continue
        return None
