"""Talks to the wiki's OAuth 1.0a server (Extension:OAuth's ``Special:OAuth``): initiate, the
authorize URL, token and identify, plus the signing of API requests.

Authlib signs every request (HMAC-SHA1, parameters in the ``Authorization: OAuth`` header);
joserfc (Authlib's own JOSE library) verifies the identify JWT. What the protocol and a real
MediaWiki 1.39 answer (shared/reference/wikimedia-oauth-protocol.md §7):

* every endpoint is ``index.php?title=Special:OAuth/<subpage>`` (the signature covers the URL);
* errors on initiate and token are HTTP 200 bodies starting ``Error: ``; on identify they are
  HTTP 200 JSON ``{"error": ..., "message": ...}``;
* identify answers a compact JWT, HS256 with the consumer secret, ``iss`` = the wiki's
  canonical server, ``aud`` = the consumer key, ``exp - iat`` = 100 s, ``nonce`` = the
  ``oauth_nonce`` of the identify request, and ``grants`` as a JSON object, not a list;
* access tokens never expire: there is no refresh, a revoked token is simply refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from authlib.integrations.requests_client import OAuth1Auth
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from .oauth import TokenRejected, WikiRefused
from .outbound import WikiGarbage, WikiSession

#: The values ``WIKIMEDIA_OAUTH_VERSION`` accepts; the first is the default.
OAUTH_VERSIONS = ("2.0", "1.0a")
#: Seconds of clock difference tolerated on ``iat``/``exp`` (mwoauth uses the same).
JWT_LEEWAY = 10
#: The identify JWT lives 100 s on MediaWiki; anything much longer was not minted by it.
JWT_MAX_LIFETIME = 600
#: The identify JWT's own claims, as opposed to the profile fields it carries.
_JWT_CLAIMS = frozenset({"iss", "aud", "iat", "exp", "nbf", "nonce", "jti"})
#: Refuse absurd token values before they reach a cookie or the store.
_MAX_TOKEN_CHARS = 256


class IdentityRejected(WikiGarbage):
    """The identify JWT did not verify (signature, algorithm, ``iss``, ``aud``, ``nonce``,
    ``iat``/``exp``): the answer is not a statement by this wiki about this request."""


@dataclass(frozen=True)
class TokenPair:
    """An OAuth 1.0a token (request or access): key and secret. Never log or render it."""

    key: str
    secret: str

    def __repr__(self) -> str:
        return "TokenPair(...)"


@dataclass(frozen=True)
class OAuth1Credentials:
    """What signs API requests as one user: the consumer and the user's access token."""

    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str

    def __repr__(self) -> str:
        return "OAuth1Credentials(...)"

    def auth(self) -> OAuth1Auth:
        """An Authlib ``requests`` auth that signs one request (HMAC-SHA1, header)."""
        return OAuth1Auth(
            self.consumer_key,
            self.consumer_secret,
            token=self.token,
            token_secret=self.token_secret,
        )


class _NonceAuth(OAuth1Auth):  # type: ignore[misc]
    """Authlib's signer, remembering the ``oauth_nonce`` it sent: identify's JWT must echo it."""

    nonce = ""

    def get_oauth_params(self, nonce: str, timestamp: str) -> list[tuple[str, str]]:
        self.nonce = nonce
        params: list[tuple[str, str]] = super().get_oauth_params(nonce, timestamp)
        return params


def special_url(wiki_url: str, subpage: str, **params: str) -> str:
    """``index.php?title=Special:OAuth/<subpage>``: the form the signature is computed over."""
    query = urlencode({"title": f"Special:OAuth/{subpage}", **params})
    return f"{wiki_url.rstrip('/')}/index.php?{query}"


def canonical_server(wiki_url: str) -> str:
    """``https://meta.wikimedia.org`` for ``https://meta.wikimedia.org/w``: the JWT's ``iss``."""
    parts = urlsplit(wiki_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _token_pair(response: requests.Response, *, initiate: bool) -> TokenPair:
    """Parse ``oauth_token=…&oauth_token_secret=…`` (HTTP 200 ``Error: …`` is a refusal)."""
    text = response.content.decode("utf-8", "replace")
    if response.status_code != 200:
        raise WikiGarbage(f"the OAuth 1.0a answer was HTTP {response.status_code}")
    if text.startswith("Error: "):
        raise WikiRefused("mwoauth-error", text[len("Error: ") :][:300], 200)
    try:
        fields = parse_qs(text.strip(), keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise WikiGarbage("the OAuth 1.0a answer was not a token") from exc
    key = fields.get("oauth_token", [""])
    secret = fields.get("oauth_token_secret", [""])
    if len(key) != 1 or len(secret) != 1 or not key[0] or not secret[0]:
        raise WikiGarbage("the OAuth 1.0a answer had no single oauth_token and secret")
    if len(key[0]) > _MAX_TOKEN_CHARS or len(secret[0]) > _MAX_TOKEN_CHARS:
        raise WikiGarbage("the OAuth 1.0a token was implausibly long")
    if initiate and fields.get("oauth_callback_confirmed") != ["true"]:
        raise WikiGarbage("the wiki did not confirm the callback (oauth_callback_confirmed)")
    return TokenPair(key[0], secret[0])


def grants_list(value: Any) -> list[str]:
    """``grants`` as a list: MediaWiki serialises a PHP array with holes as a JSON object."""
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0)
        return [v for _, v in items]
    if isinstance(value, list):
        return value
    return []


class OAuth1Client:
    """One registered OAuth 1.0a consumer (always confidential), talking to a given wiki URL."""

    def __init__(
        self,
        *,
        consumer_key: str,
        consumer_secret: str,
        callback_is_prefix: bool,
        user_agent: str,
        timeout: tuple[float, float],
        max_bytes: int,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.callback_is_prefix = callback_is_prefix
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<OAuth1Client {self.consumer_key}>"

    def _session(self) -> WikiSession:
        session: WikiSession | None = getattr(self._local, "session", None)
        if session is None:
            session = WikiSession(self.user_agent, self.timeout, self.max_bytes)
            self._local.session = session
        return session

    def credentials(self, token: TokenPair) -> OAuth1Credentials:
        return OAuth1Credentials(self.consumer_key, self.consumer_secret, token.key, token.secret)

    def initiate(self, wiki_url: str, callback_url: str) -> TokenPair:
        """A request token. ``oauth_callback`` is ``oob`` unless the consumer was registered
        with "callback is prefix", in which case it is our callback URL (MediaWiki refuses
        anything but ``oob`` otherwise: ``mwoauth-callback-not-oob``)."""
        auth = OAuth1Auth(
            self.consumer_key,
            self.consumer_secret,
            redirect_uri=callback_url if self.callback_is_prefix else "oob",
        )
        response = self._session().post(special_url(wiki_url, "initiate"), auth=auth)
        return _token_pair(response, initiate=True)

    def authorize_url(self, wiki_url: str, request_token: str) -> str:
        """Where to send the browser: ``Special:OAuth/authenticate``, as mwoauth does. It is the
        same dialog as ``authorize`` and skips it only for an identity-only consumer the user
        already approved."""
        return special_url(
            wiki_url,
            "authenticate",
            oauth_token=request_token,
            oauth_consumer_key=self.consumer_key,
        )

    def token(self, wiki_url: str, request_token: TokenPair, verifier: str) -> TokenPair:
        """Trade the authorized request token and the verifier for the access token."""
        auth = OAuth1Auth(
            self.consumer_key,
            self.consumer_secret,
            token=request_token.key,
            token_secret=request_token.secret,
            verifier=verifier,
        )
        response = self._session().post(special_url(wiki_url, "token"), auth=auth)
        return _token_pair(response, initiate=False)

    def identify(self, wiki_url: str, access: TokenPair) -> dict[str, Any]:
        """The user's profile from ``Special:OAuth/identify``, as a verified JWT's claims.

        Raises :class:`~flask_wikimedia.oauth.TokenRejected` when the wiki refuses the token
        (revoked), :class:`IdentityRejected` when the JWT does not verify, ``WikiGarbage`` or
        ``WikiUnreachable`` as for any call.
        """
        auth = _NonceAuth(
            self.consumer_key,
            self.consumer_secret,
            token=access.key,
            token_secret=access.secret,
        )
        response = self._session().post(special_url(wiki_url, "identify"), auth=auth)
        if response.status_code in (401, 403):
            raise TokenRejected(f"the wiki refused the access token ({response.status_code})")
        if response.status_code != 200:
            raise WikiGarbage(f"the identify answer was HTTP {response.status_code}")
        body = response.content.strip()
        if body.startswith(b"{"):
            # HTTP 200 {"error": "mwoauth-invalid-authorization...", "message": ...}: the
            # token (or our signature) was refused.
            raise TokenRejected("the wiki refused the access token at identify")
        return self.verify_identity(body, wiki_url=wiki_url, nonce=auth.nonce)

    def verify_identity(self, token: bytes | str, *, wiki_url: str, nonce: str) -> dict[str, Any]:
        """Verify the identify JWT exactly: HS256 with the consumer secret and nothing else,
        ``iss``, ``aud``, ``nonce``, ``iat`` and ``exp`` (with :data:`JWT_LEEWAY`); returns the
        profile it carries, with ``grants`` turned into a list."""
        try:
            decoded = jwt.decode(
                token, OctKey.import_key(self.consumer_secret), algorithms=["HS256"]
            )
        except (JoseError, ValueError, TypeError) as exc:
            raise IdentityRejected(
                f"the identify JWT did not verify ({type(exc).__name__})"
            ) from exc
        claims = dict(decoded.claims)
        if str(claims.get("iss", "")).lower() != canonical_server(wiki_url):
            raise IdentityRejected("the identify JWT's iss is not this wiki")
        if claims.get("aud") != self.consumer_key:
            raise IdentityRejected("the identify JWT's aud is not this consumer")
        if not nonce or claims.get("nonce") != nonce:
            raise IdentityRejected("the identify JWT's nonce is not the one sent (replay?)")
        iat, exp = claims.get("iat"), claims.get("exp")
        if isinstance(iat, bool) or isinstance(exp, bool):
            raise IdentityRejected("the identify JWT's iat/exp are not numbers")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise IdentityRejected("the identify JWT has no numeric iat and exp")
        now = time.time()
        if iat > now + JWT_LEEWAY:
            raise IdentityRejected("the identify JWT was issued in the future")
        if exp < now - JWT_LEEWAY:
            raise IdentityRejected("the identify JWT has expired")
        if not 0 < exp - iat <= JWT_MAX_LIFETIME:
            raise IdentityRejected("the identify JWT's lifetime is implausible")
        # The profile is what is left once the JWT's own claims are taken out (a hidden
        # account then reads as ``sub`` and ``blocked`` only, as on the OAuth 2.0 profile).
        profile = {k: v for k, v in claims.items() if k not in _JWT_CLAIMS}
        if "grants" in profile:
            profile["grants"] = grants_list(profile["grants"])
        return profile


@dataclass(frozen=True)
class OAuth1Settings:
    """The OAuth version settings, checked (see ``flask_wikimedia.settings``)."""

    version: str
    #: The OAuth 1.0a consumer (new 1.0a logins, and signing for every 1.0a login), if any.
    consumer_key: str | None = None
    consumer_secret: str | None = None
    callback_is_prefix: bool = False

    def __repr__(self) -> str:
        return f"OAuth1Settings(version={self.version!r}, consumer_key={self.consumer_key!r})"

    def client(
        self, *, user_agent: str, timeout: tuple[float, float], max_bytes: int
    ) -> OAuth1Client | None:
        if self.consumer_key is None or self.consumer_secret is None:
            return None
        return OAuth1Client(
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            callback_is_prefix=self.callback_is_prefix,
            user_agent=user_agent,
            timeout=timeout,
            max_bytes=max_bytes,
        )
