"""Pending logins: state, PKCE verifier, ``next`` and redirect URI between /login and /callback.

They live in a short-lived cookie of their own, sealed with AES-GCM (so the browser can neither
read the verifier nor change ``next``), ``HttpOnly`` and ``SameSite=Lax`` (the callback is a
top-level GET from the wiki, which Lax allows).

Bound to this browser (issue 9 item 5a): on https the cookie is ``__Host-wikimedia_login``
(``Secure``, ``Path=/``, no ``Domain``), a name the browser refuses from any other origin, so a
tool on a sibling domain (``evil.toolforge.org``) cannot plant its own pending login for our
callback and log the victim in to the attacker's account (login CSRF by cookie tossing). A cookie
under the plain name is ignored on https. Since ``Path`` must be ``/``, a mount other than the
default gets its own name (a digest of its path), and the sealed value is bound to the name. On
plain http (local development) there is no such protection; the cookie is scoped to the
blueprint's path as before.

A byte budget (item 5b): browsers drop a cookie over 4 KB, which would make every login of that
browser fail until the entries expire. A ``next`` whose JSON form is over :data:`MAX_NEXT` bytes
is replaced by the app's default (see :func:`bounded_next`), and :func:`write` drops the oldest
entries until the value fits :data:`MAX_VALUE`; the newest entry always stays. Keeping them
in the browser rather than in Redis means ``/auth/login`` writes nothing server-side: ten
thousand hits cannot grow Redis (security catalogue 3.16). The cookie binds each state to this
browser (catalogue 3.1, Authlib CVE-2025-68158), holds several at once so tabs can log in side
by side, and drops entries after ten minutes. Single use is enforced server-side at the callback
(``LoginStore.claim_once``), so a replayed cookie cannot be used twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass

from .crypto import Sealer

COOKIE_NAME = "wikimedia_login"
#: The name on https: only this origin, over https, with ``Path=/``, can set it.
HOST_COOKIE_NAME = "__Host-" + COOKIE_NAME
#: Where the blueprint lives by default; another mount gets a name of its own on https.
DEFAULT_SCOPE = "/auth"
MAX_PENDING = 5
PENDING_TTL = 600
#: Bytes of the cookie's value at most: with its name and attributes the Set-Cookie line stays
#: well under the 4096 bytes browsers keep (RFC 6265 §6.1).
MAX_VALUE = 3400
#: Bytes of ``next`` (as JSON) stored at most; longer ones are replaced by the default, so that
#: the newest entry alone always fits :data:`MAX_VALUE` (with a redirect URI up to ~1.2 KB).
MAX_NEXT = 1024
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


def place(scope: str, secure: bool) -> tuple[str, str]:
    """The cookie's ``(name, path)`` for a blueprint at ``scope`` (script root + prefix).

    On https a ``__Host-`` name with ``Path=/``; the default mount keeps the plain
    ``__Host-wikimedia_login``, any other gets a suffix of its own so two tools on one host
    never share (or overwrite) their pending logins.
    """
    scope = scope or "/"
    if not secure:
        return COOKIE_NAME, scope
    if scope == DEFAULT_SCOPE:
        return HOST_COOKIE_NAME, "/"
    return f"{HOST_COOKIE_NAME}-{hashlib.sha256(scope.encode()).hexdigest()[:12]}", "/"


def bounded_next(value: str, default: str) -> str:
    """``value``, or ``default`` when it would not fit the cookie's budget (:data:`MAX_NEXT`)."""
    return value if len(json.dumps(value)) <= MAX_NEXT else default


def _associated(name: str) -> bytes:
    # Bound to the cookie's name: a value set under the plain name (which a sibling domain can
    # plant) does not open under the __Host- name, nor one mount's under another's.
    return _AD + b"|" + name.encode()


def read(sealer: Sealer, cookie: str | None, name: str = COOKIE_NAME) -> list[PendingLogin]:
    """The unexpired pending logins in the cookie ``name``; anything tampered with reads as none."""
    if not cookie or len(cookie) > 8192:
        return []
    try:
        sealed = base64.urlsafe_b64decode(cookie.encode() + b"==")
    except (binascii.Error, ValueError):
        return []
    plain = sealer.open(sealed, _associated(name))
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


def write(sealer: Sealer, pending: list[PendingLogin], name: str = COOKIE_NAME) -> str:
    """Seal the newest entries into a value for cookie ``name``: at most ``MAX_PENDING`` of
    them, and the oldest dropped until the value fits ``MAX_VALUE`` bytes (never the newest)."""
    newest = sorted(pending, key=lambda p: p.created_at)[-MAX_PENDING:]
    while True:
        plain = json.dumps([asdict(p) for p in newest], separators=(",", ":")).encode()
        value = base64.urlsafe_b64encode(sealer.seal(plain, _associated(name)))
        if len(value) <= MAX_VALUE or len(newest) <= 1:
            return value.decode().rstrip("=")
        newest = newest[1:]
