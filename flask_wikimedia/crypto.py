"""Authenticated encryption (AES-256-GCM) with keys derived from the app's secret key.

Used for login records in Redis and for the pending-login cookie: a neighbour on a shared Redis
can neither read nor forge them, and a record cannot be moved to another key (the key name is
authenticated as associated data). Keys are derived with HKDF, one per purpose, so the same
secret never encrypts two kinds of data under one key. ``SECRET_KEY_FALLBACKS`` are tried when
opening, so the secret can be rotated without logging everyone out at once.

:class:`KeyNamer` turns a value the browser holds (session id, login reference, state) into the
Redis key name it is stored under: an HMAC with its own derived key, one per purpose, so a
neighbour who reads every key name on a shared Redis learns nothing a browser could present
(DESIGN invariant 11).
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


def _derive_key(secret: str | bytes, info: bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"flask-wikimedia", info=info).derive(
        raw
    )


def _derive(secret: str | bytes, purpose: str) -> AESGCM:
    return AESGCM(_derive_key(secret, purpose.encode()))


class KeyNamer:
    """Keyed digests for Redis key names, for one purpose ("session-id", "login-ref", ...).

    The HMAC key is derived from the app's secret with an info string of its own (never the
    one an AES key is derived with), so names of different purposes never collide and a name
    says nothing about the value it was made from. Only the current secret names keys:
    rotating ``SECRET_KEY`` ends the sessions and logins stored under the old names.
    """

    def __init__(self, secret: str | bytes, purpose: str) -> None:
        self._key = _derive_key(secret, b"key-name:" + purpose.encode())

    def name(self, value: str) -> str:
        """43 URL-safe characters that identify ``value`` only to someone holding the secret."""
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), "sha256").digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


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
