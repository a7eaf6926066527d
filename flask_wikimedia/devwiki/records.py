"""The development wiki's records: authorization codes, tokens, approvals (data only), and the
error :meth:`DevWiki.approve` raises. Kept apart from ``wiki.py`` so the endpoint modules can
use them without importing the wiki object."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from dataclasses import dataclass

__all__ = [
    "KEEP_DEAD",
    "MAX_DEAD",
    "OWNER_ONLY_TTL",
    "AccessToken",
    "Approval",
    "AuthCode",
    "DevWikiError",
    "RefreshToken",
    "RequestToken",
    "b64url",
    "opaque",
]

#: Owner-only tokens "never" expire (MediaWiki stores ``infinity``; the JWT says now + 1000 years).
OWNER_ONLY_TTL = 1000 * 365.25 * 86400
#: Dead tokens/codes are kept this long after they expire, so reuse reads as "revoked"/"expired".
KEEP_DEAD = 86400.0
#: At most this many dead (revoked) refresh/access tokens are remembered; older ones are dropped.
MAX_DEAD = 10000


class DevWikiError(Exception):
    """The development wiki answered :meth:`DevWiki.approve` with an error page."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"development wiki answered HTTP {status}: {text[:500]}")
        self.status = status
        self.text = text


@dataclass
class AuthCode:
    code: str
    client_id: str
    user: str
    scopes: list[str]
    redirect_uri: str | None
    challenge: str | None
    method: str | None
    expires: float
    used: bool = False


@dataclass
class AccessToken:
    token: str
    jti: str
    client_id: str
    user: str | None  # None: anonymous (client_credentials of a normal client)
    scopes: list[str]
    expires: float
    grant_type: str | None
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    user: str | None
    scopes: list[str]
    access_token: str
    expires: float
    revoked: bool = False
    #: After rotation, the old refresh token may be used again until then (None: hard revoked).
    grace_expires: float | None = None


@dataclass
class Approval:
    user: str
    client_id: str
    scopes: list[str]
    expires: float


@dataclass
class RequestToken:
    """An OAuth 1.0a request token, from initiate until it is traded at Special:OAuth/token."""

    key: str
    secret: str
    client_id: str
    callback: str
    expires: float
    user: str | None = None
    scopes: list[str] = dataclasses.field(default_factory=list)
    verifier: str | None = None
    used: bool = False


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def opaque() -> str:
    """A long opaque value shaped like League's defuse-encrypted payloads."""
    return "def50200" + secrets.token_hex(348)
