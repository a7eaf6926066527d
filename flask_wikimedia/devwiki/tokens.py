"""Token issuing for the development wiki: authorization codes, access and refresh tokens,
consent approvals, owner-only tokens, revocation, lookup and pruning."""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

from .models import DevClient, DevUser
from .records import (
    KEEP_DEAD,
    MAX_DEAD,
    OWNER_ONLY_TTL,
    AccessToken,
    Approval,
    AuthCode,
    RefreshToken,
    b64url,
    opaque,
)

__all__ = ["TokenIssuing"]


class TokenIssuing:
    """The development wiki's codes and tokens (a part of :class:`DevWiki`, which holds the
    dictionaries and the clock)."""

    lock: threading.RLock
    flavor: str
    base_url: str | None
    users: dict[str, DevUser]
    clients: dict[str, DevClient]
    access_token_ttl: int
    refresh_token_ttl: int
    code_ttl: int
    codes: dict[str, AuthCode]
    access_tokens: dict[str, AccessToken]
    refresh_tokens: dict[str, RefreshToken]
    approvals: dict[str, Approval]
    owner_tokens: dict[str, str]
    _secret: bytes
    _last_prune: float

    def now(self) -> float:
        """The wiki's clock (defined by :class:`DevWiki`)."""
        raise NotImplementedError

    def revoke_tokens(self, username: str) -> None:
        """The user revoked the app(s): all their access and refresh tokens die at once."""
        with self.lock:
            for access in self.access_tokens.values():
                if access.user == username:
                    access.revoked = True
            for refresh in self.refresh_tokens.values():
                if refresh.user == username:
                    refresh.revoked = True
                    refresh.grace_expires = None
            for client_id, token in list(self.owner_tokens.items()):
                record = self.access_tokens.get(token)
                if record is not None and record.revoked:
                    del self.owner_tokens[client_id]

    def expire_access_tokens(self, username: str | None = None) -> None:
        """Make the current access tokens (of ``username``, or everyone's) expired now.

        Refresh tokens keep working, so clients can test their refresh path.
        """
        with self.lock:
            past = self.now() - 1
            for access in self.access_tokens.values():
                if (username is None or access.user == username) and access.expires > past:
                    access.expires = past

    def owner_only_token(self, client_id: str) -> str:
        """The ready access token an owner-only client's owner is shown (it never expires)."""
        with self.lock:
            client = self.clients[client_id]
            if not client.owner_only:
                raise ValueError(f"client {client_id!r} is not owner-only")
            token = self.owner_tokens.get(client_id)
            if token is not None and token in self.access_tokens:
                return token
            iss = self._origin(self.base_url) if self.base_url else "http://devwiki.invalid"
            record = self.issue_access_token(
                client,
                client.owner,
                list(client.grants),
                grant_type=None,
                iss=iss,
                ttl=OWNER_ONLY_TTL,
            )
            self.owner_tokens[client_id] = record.token
            return record.token

    @staticmethod
    def _origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def _sub(self, user: DevUser | None, *, prefixed: bool) -> str:
        if user is None:
            return "0"
        if prefixed and self.flavor == "wikimedia":
            return f"mw:local:devwiki:{user.id}"
        return str(user.id)

    def issue_access_token(
        self,
        client: DevClient,
        username: str | None,
        scopes: list[str],
        *,
        grant_type: str | None,
        iss: str,
        ttl: float | None = None,
    ) -> AccessToken:
        """Create an access token (a JWT-shaped string whose signature is random bytes)."""
        with self.lock:
            self.prune()
            now = self.now()
            expires = now + (self.access_token_ttl if ttl is None else ttl)
            jti = secrets.token_hex(40)
            user = self.users.get(username) if username is not None else None
            claims: dict[str, Any] = {"aud": client.client_id, "jti": jti}
            if self.flavor == "1.39":
                claims.update(iat=now, nbf=now, exp=expires)
            else:
                claims.update(iat=int(now), nbf=int(now), exp=int(expires))
            claims["sub"] = self._sub(user, prefixed=grant_type is not None)
            claims["iss"] = iss
            claims["scopes"] = list(scopes)
            if self.flavor == "wikimedia":
                if grant_type is not None:
                    claims["grant_type"] = grant_type
                claims["ratelimit"] = {"requests_per_unit": 5000, "unit": "HOUR"}
            header = b64url(
                json.dumps({"typ": "JWT", "alg": "RS256"}, separators=(",", ":")).encode()
            )
            payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
            token = f"{header}.{payload}.{b64url(secrets.token_bytes(256))}"
            record = AccessToken(
                token=token,
                jti=jti,
                client_id=client.client_id,
                user=username,
                scopes=list(scopes),
                expires=expires,
                grant_type=grant_type,
            )
            self.access_tokens[token] = record
            return record

    def issue_refresh_token(self, access: AccessToken) -> RefreshToken:
        with self.lock:
            record = RefreshToken(
                token=opaque(),
                client_id=access.client_id,
                user=access.user,
                scopes=list(access.scopes),
                access_token=access.token,
                expires=self.now() + self.refresh_token_ttl,
            )
            self.refresh_tokens[record.token] = record
            return record

    def issue_code(
        self,
        client: DevClient,
        username: str,
        scopes: list[str],
        redirect_uri: str | None,
        challenge: str | None,
        method: str | None,
    ) -> AuthCode:
        with self.lock:
            self.prune()
            record = AuthCode(
                code=opaque(),
                client_id=client.client_id,
                user=username,
                scopes=list(scopes),
                redirect_uri=redirect_uri,
                challenge=challenge,
                method=method,
                expires=self.now() + self.code_ttl,
            )
            self.codes[record.code] = record
            return record

    def new_approval(self, username: str, client_id: str, scopes: list[str]) -> str:
        with self.lock:
            approval_id = secrets.token_urlsafe(24)
            self.approvals[approval_id] = Approval(
                username, client_id, list(scopes), self.now() + 600
            )
            return approval_id

    def take_approval(self, approval_id: str) -> Approval | None:
        with self.lock:
            approval = self.approvals.pop(approval_id, None)
            if approval is None or approval.expires < self.now():
                return None
            return approval

    def lookup_access_token(self, token: str) -> tuple[AccessToken | None, str]:
        """Find a live access token: ``(record, "")`` or ``(None, reason)``.

        Reasons: ``"malformed"`` (not three dot-separated parts), ``"unknown"`` (bad signature
        or never issued), ``"expired"``, ``"revoked"``, ``"nouser"`` (its user was removed).
        """
        if token.count(".") != 2:
            return None, "malformed"
        with self.lock:
            record = self.access_tokens.get(token)
            if record is None:
                return None, "unknown"
            if record.revoked:
                return None, "revoked"
            if record.expires < self.now():
                return None, "expired"
            if record.user is not None and record.user not in self.users:
                return None, "nouser"
            return record, ""

    def csrf_for(self, access: AccessToken | None) -> str:
        """The api.php CSRF token of an access token's session (``+\\`` for anonymous)."""
        if access is None or access.user is None:
            return "+\\"
        digest = hmac.new(self._secret, access.token.encode(), "sha256").hexdigest()[:40]
        return digest + "+\\"

    def prune(self, force: bool = False) -> None:
        """Forget codes, tokens and approvals that are long dead (keeps memory bounded)."""
        with self.lock:
            now = self.now()
            if not force and now - self._last_prune < 1.0:
                return
            self._last_prune = now
            horizon = now - KEEP_DEAD
            for code in [c for c, r in self.codes.items() if r.expires < horizon]:
                del self.codes[code]
            for aid in [a for a, r in self.approvals.items() if r.expires < now]:
                del self.approvals[aid]
            owner = set(self.owner_tokens.values())
            for token in [t for t, r in self.access_tokens.items() if r.expires < horizon]:
                if token not in owner:
                    del self.access_tokens[token]
            dead_access = [t for t, r in self.access_tokens.items() if r.revoked or r.expires < now]
            for token in dead_access[: max(0, len(dead_access) - MAX_DEAD)]:
                del self.access_tokens[token]
            for token in [t for t, r in self.refresh_tokens.items() if r.expires < horizon]:
                del self.refresh_tokens[token]
            dead_refresh = [
                t
                for t, r in self.refresh_tokens.items()
                if r.revoked and (r.grace_expires is None or r.grace_expires < now)
            ]
            for token in dead_refresh[: max(0, len(dead_refresh) - MAX_DEAD)]:
                del self.refresh_tokens[token]
