"""Talks to the wiki's OAuth 2.0 server: authorization URL with PKCE, code exchange, refresh,
client credentials and the profile.

Authlib builds the requests (PKCE S256, client authentication, token parsing); our
:class:`~flask_wikimedia.outbound.LimitedSession` puts the outbound limits on every call. MediaWiki's
quirks handled here (see shared/reference/wikimedia-oauth-protocol.md):

* no ``scope`` in token answers, and ``expires_in`` may be missing: we assume the shortest
  plausible lifetime rather than forever;
* error bodies may carry ``message`` instead of ``error_description``, and error codes are often
  non-standard (``invalid_request`` with HTTP 401 for a dead refresh token on 1.39);
* the profile may come as ``text/html``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from .outbound import (
    LimitedSession,
    WikiGarbage,
    WikiSession,
    WikiUnreachable,
    is_b64token,
    is_vschar_token,
    json_body,
)

# Used when the token answer has no expires_in: one hour is MediaWiki's default lifetime.
FALLBACK_EXPIRES_IN = 3600
# A lifetime of zero or less is nonsense (obeying it would refresh on every request); assume
# a short one instead. If the token really is dead, the wiki refusing it triggers a refresh.
NONSENSE_EXPIRES_IN = 180


class WikiRefused(Exception):
    """The wiki answered with an OAuth error (bad code, dead refresh token, bad client...)."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class TokenRejected(Exception):
    """The wiki did not accept our access token (expired, revoked or the app was removed)."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: float

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at})"


class _TokenSession(OAuth2Session, LimitedSession):  # type: ignore[misc]
    """Authlib's requests client with our outbound limits.

    A 429 from the token endpoint (Wikimedia's API gateway) means "later", not "no": it becomes
    :class:`WikiUnreachable` before Authlib reads it as an OAuth error.
    """

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        response: requests.Response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            raise WikiUnreachable(
                "the wiki is rate-limiting us",
                status=429,
                retry_after=response.headers.get("Retry-After"),
            )
        return response


def new_code_verifier() -> str:
    """A PKCE code verifier: 64 characters from the RFC 7636 alphabet (384 bits)."""
    return generate_token(64)  # type: ignore[no-any-return]


def endpoint(wiki_url: str, path: str) -> str:
    return f"{wiki_url.rstrip('/')}/rest.php/oauth2/{path}"


class OAuthClient:
    """One registered consumer, talking to whichever wiki URL it is given."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str | None,
        scopes: str | None,
        user_agent: str,
        timeout: tuple[float, float],
        max_bytes: int,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._local = threading.local()

    def _token_session(self) -> _TokenSession:
        session: _TokenSession | None = getattr(self._local, "token_session", None)
        if session is None:
            session = _TokenSession(  # type: ignore[call-arg]
                client_id=self.client_id,
                client_secret=self.client_secret,
                # Secret in the body works on every MediaWiki; without a secret, a public client.
                token_endpoint_auth_method="client_secret_post" if self.client_secret else "none",
                code_challenge_method="S256",
            )
            session.configure_limits(self.user_agent, self.timeout, self.max_bytes)
            self._local.token_session = session
        return session

    def _resource_session(self) -> WikiSession:
        session: WikiSession | None = getattr(self._local, "resource_session", None)
        if session is None:
            session = WikiSession(self.user_agent, self.timeout, self.max_bytes)
            self._local.resource_session = session
        return session

    def authorization_url(
        self, wiki_url: str, *, redirect_uri: str, state: str, code_verifier: str
    ) -> str:
        """Where to send the browser. Always sends ``redirect_uri`` (MediaWiki only redirects a
        Cancel back to us if it was given) and ``state``."""
        extra: dict[str, str] = {}
        if self.scopes:
            extra["scope"] = self.scopes
        url, _ = self._token_session().create_authorization_url(
            endpoint(wiki_url, "authorize"),
            state=state,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
            **extra,
        )
        return str(url)

    def _token_call(self, wiki_url: str, **params: Any) -> TokenSet:
        session = self._token_session()
        session.token = None
        try:
            token = session.fetch_token(endpoint(wiki_url, "access_token"), **params)
        except OAuthError as exc:
            raise WikiRefused(exc.error or "error", exc.description or "", 400) from exc
        except (ValueError, TypeError, OverflowError, requests.HTTPError) as exc:
            # Not JSON, or fields Authlib cannot use (it does int(expires_in)): garbage.
            raise WikiGarbage("the token answer was not a usable JSON object") from exc
        except requests.RequestException as exc:
            raise WikiUnreachable("the wiki could not be reached") from exc
        return _token_set(token)

    def exchange_code(
        self, wiki_url: str, *, code: str, redirect_uri: str, code_verifier: str
    ) -> TokenSet:
        return self._token_call(
            wiki_url,
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            withhold_token=True,
        )

    def refresh(self, wiki_url: str, refresh_token: str) -> TokenSet:
        # Never send the (possibly expired) access token to the token endpoint: an expired
        # Bearer header makes MediaWiki refuse the whole request (protocol §2.5).
        return self._token_call(
            wiki_url,
            grant_type="refresh_token",
            refresh_token=refresh_token,
            withhold_token=True,
        )

    def client_credentials(self, wiki_url: str) -> TokenSet:
        return self._token_call(wiki_url, grant_type="client_credentials", withhold_token=True)

    def profile(self, wiki_url: str, access_token: str) -> dict[str, Any]:
        response = self._resource_session().get(
            endpoint(wiki_url, "resource/profile"),
            headers={"Authorization": f"Bearer {access_token}"},
        )
        if response.status_code in (401, 403):
            raise TokenRejected(f"the wiki refused the access token ({response.status_code})")
        if response.status_code != 200:
            raise WikiGarbage(f"the profile answer was HTTP {response.status_code}")
        body = json_body(response)
        if not isinstance(body, dict):
            raise WikiGarbage("the profile answer was not a JSON object")
        return body


def _token_set(token: dict[str, Any]) -> TokenSet:
    token_type = token.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        # MediaWiki always issues Bearer tokens; anything else we would not know how to use.
        raise WikiGarbage("the token answer's token_type is not Bearer")
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise WikiGarbage("the token answer had no access_token")
    if not is_b64token(access):
        # It goes into an Authorization header: "\u0100" or a newline there would be a 500
        # (or a header injection) on every later request. RFC 6750 §2.1 b64token only.
        raise WikiGarbage("the token answer's access_token is not a valid Bearer token")
    refresh = token.get("refresh_token")
    if refresh is not None and not isinstance(refresh, str):
        raise WikiGarbage("the token answer's refresh_token is not a string")
    if refresh and not is_vschar_token(refresh):  # RFC 6749 appendix A.17: 1*VSCHAR
        raise WikiGarbage("the token answer's refresh_token has characters outside VSCHAR")
    expires_in = token.get("expires_in", FALLBACK_EXPIRES_IN)
    if isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        raise WikiGarbage("the token answer's expires_in is not a number")
    if not expires_in > 0:  # also catches NaN
        expires_in = NONSENSE_EXPIRES_IN
    if isinstance(expires_in, float) and not math.isfinite(expires_in):
        # JSON's Infinity (Python's json reads it) is not a lifetime the wiki can mean.
        raise WikiGarbage("the token answer's expires_in is not a finite number")
    # Owner-only tokens live ~1000 years: treat anything past a century as "never expires".
    expires_at = math.inf if expires_in > 100 * 365 * 86400 else time.time() + float(expires_in)
    return TokenSet(access, refresh or None, expires_at)
