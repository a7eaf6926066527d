"""Pending logins: state, PKCE verifier, ``next`` and redirect URI between /login and /callback.

They live in a short-lived cookie of their own, sealed with AES-GCM (so the browser can neither
read the verifier nor change ``next``), scoped to the blueprint's path, ``HttpOnly`` and
``SameSite=Lax`` (the callback is a top-level GET from the wiki, which Lax allows). Keeping them
in the browser rather than in Redis means ``/auth/login`` writes nothing server-side: ten
thousand hits cannot grow Redis (security catalogue 3.16). The cookie binds each state to this
browser (catalogue 3.1, Authlib CVE-2025-68158), holds several at once so tabs can log in side
by side, and drops entries after ten minutes. Single use is enforced server-side at the callback
(``LoginStore.claim_once``), so a replayed cookie cannot be used twice.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import asdict, dataclass

from .crypto import Sealer

COOKIE_NAME = "wikimedia_login"
MAX_PENDING = 5
PENDING_TTL = 600
_AD = b"pending-logins"
# RFC 7636 §4.1: 43-128 unreserved characters. An entry without such a verifier is never
# redeemed: continuing without PKCE would be a downgrade (catalogue CI-3).
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_STATE = re.compile(r"[A-Za-z0-9_-]{32,128}")


@dataclass(frozen=True)
class PendingLogin:
    """One login between /login and /callback. For OAuth 1.0a, ``state`` is the request token
    (the callback's ``oauth_token``), ``token_secret`` its secret and ``code_verifier`` empty."""

    state: str
    code_verifier: str
    next: str
    redirect_uri: str
    created_at: float
    oauth_version: str = "2.0"
    token_secret: str = ""

    def __repr__(self) -> str:
        return f"PendingLogin(next={self.next!r}, created_at={self.created_at})"

    def expired(self, now: float) -> bool:
        return not (self.created_at <= now < self.created_at + PENDING_TTL)


def read(sealer: Sealer, cookie: str | None) -> list[PendingLogin]:
    """The unexpired pending logins in the cookie; anything tampered with reads as none."""
    if not cookie or len(cookie) > 8192:
        return []
    try:
        sealed = base64.urlsafe_b64decode(cookie.encode() + b"==")
    except (binascii.Error, ValueError):
        return []
    plain = sealer.open(sealed, _AD)
    if plain is None:
        return []
    try:
        items = [PendingLogin(**item) for item in json.loads(plain)]
    except (ValueError, TypeError):
        return []
    now = time.time()
    return [p for p in items if _usable(p) and not p.expired(now)]


def _usable(p: PendingLogin) -> bool:
    """Well-formed: a record from an older version or a corrupted one is dropped, not trusted."""
    return (
        isinstance(p.state, str)
        and _STATE.fullmatch(p.state) is not None
        and isinstance(p.code_verifier, str)
        and isinstance(p.token_secret, str)
        and (
            (_VERIFIER.fullmatch(p.code_verifier) is not None and p.oauth_version == "2.0")
            # OAuth 1.0a: no PKCE, but the request token's secret (never empty).
            or (p.oauth_version == "1.0a" and not p.code_verifier and bool(p.token_secret))
        )
        and isinstance(p.next, str)
        and isinstance(p.redirect_uri, str)
        and isinstance(p.created_at, int | float)
        and not isinstance(p.created_at, bool)
    )


def write(sealer: Sealer, pending: list[PendingLogin]) -> str:
    """Seal the newest ``MAX_PENDING`` entries into a cookie value."""
    newest = sorted(pending, key=lambda p: p.created_at)[-MAX_PENDING:]
    plain = json.dumps([asdict(p) for p in newest], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(sealer.seal(plain, _AD)).decode().rstrip("=")
