"""API sessions that act as the logged-in user, or as the app, on any Wikimedia project.

``user_session()`` gives a :class:`ApiSession` (a ``requests.Session``) for the configured wiki,
``user_session("en.wikipedia.org")`` for another project. The Bearer token (for an OAuth 1.0a
login: the HMAC-SHA1 signature) is attached to every request to that wiki (and to no other host),
decided on the prepared URL, and refreshed when it is about to expire or when the
wiki says it is no longer valid; requests follow the outbound limits (timeouts, size cap, no
redirects, policy User-Agent); ``maxlag`` and ``Retry-After`` are honoured; Action API calls send
``assert=user`` so a silent fallback to anonymous is an error, not an anonymous edit. Errors come
out typed: :class:`ApiError` and subclasses, including ``mwoauth-invalid-authorization``, which
MediaWiki answers with HTTP 200 (protocol §4.4); a wiki that is down or answers garbage raises
:class:`~flask_wikimedia.errors.WikiUnavailable` (503) or
:class:`~flask_wikimedia.errors.WikiBadResponse` (502), which render as error pages in a view.

Because it is a ``requests.Session``, it plugs into the usual libraries::

    mwapi.Session("https://en.wikipedia.org", user_agent=..., session=user_session("en.wikipedia.org"))

Tokens are only ever sent to the configured wiki and, when that is a Wikimedia wiki, to the
other Wikimedia projects (single login), plus the hosts in ``WIKIMEDIA_API_HOSTS``: never to an
arbitrary host.

Config keys used (parsed once at startup by ``flask_wikimedia.settings``): ``WIKIMEDIA_API_HOSTS``,
``WIKIMEDIA_APP_TOKEN``, ``WIKIMEDIA_TIMEOUT``, ``WIKIMEDIA_MAX_RESPONSE_BYTES``,
``WIKIMEDIA_USER_AGENT``.

The session class and its errors live in ``apisession`` (re-exported here).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import has_request_context

from . import oauth1_login
from .apisession import (
    _INVALID_AUTH,
    MAX_RETRIES,
    MAX_RETRY_AFTER,
    ApiError,
    ApiSession,
    AssertUserFailed,
    Credential,
    InvalidAuthorization,
    RateLimited,
    TokenProvider,
)
from .errors import ConfigurationError, LoginRequired
from .failures import WikiHTTPError, http_error
from .login import current_login, usable_login
from .oauth import WikiRefused
from .oauth1 import OAuth1Credentials
from .outbound import UnsafeURL, WikiSession, canonical_origin, prepared_url
from .state import current_state

__all__ = [
    "MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "WIKIMEDIA_DOMAINS",
    "WIKI_ALIASES",
    "ApiError",
    "ApiSession",
    "AssertUserFailed",
    "Credential",
    "InvalidAuthorization",
    "RateLimited",
    "TokenProvider",
    "anonymous_session",
    "app_session",
    "resolve_wiki",
    "user_session",
]

WIKIMEDIA_DOMAINS = (
    "wikipedia.org",
    "wikimedia.org",
    "wikidata.org",
    "wiktionary.org",
    "wikibooks.org",
    "wikinews.org",
    "wikiquote.org",
    "wikisource.org",
    "wikiversity.org",
    "wikivoyage.org",
    "mediawiki.org",
    "wikifunctions.org",
)
#: Short names for the projects that have no language code.
WIKI_ALIASES = {
    "meta": "meta.wikimedia.org",
    "commons": "commons.wikimedia.org",
    "wikidata": "www.wikidata.org",
    "species": "species.wikimedia.org",
    "mediawiki": "www.mediawiki.org",
    "incubator": "incubator.wikimedia.org",
    "wikifunctions": "www.wikifunctions.org",
}
#: Host names only: no userinfo, no backslashes, nothing a URL parser could read two ways.
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")


def _is_wikimedia(host: str) -> bool:
    return any(host == d or host.endswith("." + d) for d in WIKIMEDIA_DOMAINS)


def resolve_wiki(wiki: str | None) -> str:
    """The script-path URL for ``wiki``: ``None`` for the configured wiki; a host name such as
    ``en.wikipedia.org`` (or ``meta``, ``commons``, ``wikidata``); or a full ``https://host/w``
    URL. Refuses hosts our tokens must not go to with a ValueError.

    Allowed: the configured wiki's own origin; when that is a Wikimedia wiki, any Wikimedia
    project over https on the default port (one login works on all of them); and the host
    names in ``WIKIMEDIA_API_HOSTS`` over https.
    """
    state = current_state()
    base = state.wiki_base()
    if wiki is None:
        return base
    wiki = WIKI_ALIASES.get(wiki, wiki)
    url = wiki if "://" in wiki else f"https://{wiki}/w"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"not a wiki URL: {wiki!r}") from None
    host = parts.hostname or ""
    netloc_ok = _HOST.fullmatch(host) is not None and parts.netloc.lower() in (
        host,
        f"{host}:{port}",
    )
    if not netloc_ok or parts.query or parts.fragment:
        raise ValueError(f"not a wiki URL: {wiki!r}")
    own_host = urlsplit(base).hostname or ""
    extra = state.api_hosts
    https_default = parts.scheme == "https" and port in (None, 443)
    try:
        same_wiki = canonical_origin(prepared_url(url)) == canonical_origin(prepared_url(base))
    except UnsafeURL:
        raise ValueError(f"not a wiki URL: {wiki!r}") from None
    allowed = same_wiki or (
        https_default and (host in extra or (_is_wikimedia(own_host) and _is_wikimedia(host)))
    )
    if not allowed:
        raise ValueError(
            f"refusing to send Wikimedia tokens to {wiki!r}: only the configured wiki and, for "
            "a Wikimedia wiki, the other Wikimedia projects over https are allowed (add hosts "
            "with WIKIMEDIA_API_HOSTS)"
        )
    return url.rstrip("/")


def user_session(wiki: str | None = None, **options: Any) -> ApiSession:
    """An API session acting as the current user (inside a request, with a login).

    ``wiki`` is as for :func:`resolve_wiki`; ``options`` go to :class:`ApiSession`
    (``assert_user``, ``maxlag``, ``max_retries``, ``max_retry_after``). The token is read from
    the login record at each request and refreshed through the same single-flight path as page
    views, so a session kept across a long operation stays valid. Raises
    :class:`~flask_wikimedia.errors.LoginRequired` (401) when nobody is logged in or the login
    ended (the refresh was refused).
    """
    if current_login() is None:
        raise LoginRequired()
    state = current_state()

    def token(stale: Credential | None) -> Credential:
        login = usable_login(stale.token if isinstance(stale, OAuth1Credentials) else stale)
        if login is None:
            raise LoginRequired("Your login has ended; please log in again.")
        if login.record.oauth_version == oauth1_login.VERSION:
            signer = oauth1_login.credentials(state, login.record)
            if signer is None:
                raise LoginRequired("Your login has ended; please log in again.")
            return signer
        return login.record.access_token

    return ApiSession(
        resolve_wiki(wiki),
        token,
        user_agent=state.oauth.user_agent,
        timeout=state.oauth.timeout,
        max_bytes=state.oauth.max_bytes,
        **options,
    )


def app_session(wiki: str | None = None, **options: Any) -> ApiSession:
    """An API session acting as the app, for background jobs with no user present.

    Uses ``WIKIMEDIA_APP_TOKEN`` (an owner-only consumer's access token, or a personal API
    token: protocol §8) if set, else the client-credentials grant of the configured consumer
    (an owner-only consumer's token acts as its owner; another confidential consumer's is
    anonymous, so pass ``assert_user=False`` to use one). Needs an app context. With an OAuth
    1.0a consumer (``WIKIMEDIA_OAUTH_VERSION = "1.0a"``) there is no client-credentials grant:
    without ``WIKIMEDIA_APP_TOKEN`` this raises :class:`~flask_wikimedia.errors.ConfigurationError`.
    """
    state = current_state()
    if state.wiki_url is None and not has_request_context():
        raise RuntimeError(
            "app_session() against the development wiki mounted in the app needs a request "
            "context (its URL comes from the request); set WIKIMEDIA_WIKI_URL for jobs."
        )
    configured = state.app_token
    if configured is None and state.oauth_version == oauth1_login.VERSION:
        # Checked before any call: the client-credentials grant is OAuth 2.0's, and the 1.0a
        # consumer's key would only earn an "invalid_client" from the token endpoint.
        raise ConfigurationError(
            'app_session() with WIKIMEDIA_OAUTH_VERSION = "1.0a" needs WIKIMEDIA_APP_TOKEN: an '
            "OAuth 1.0a consumer has no client-credentials grant. Register an OAuth 2.0 "
            "owner-only consumer (or create a personal API token) and set its access token."
        )
    cache = state.app_token_cache
    wiki_base = state.wiki_base()
    oauth = state.oauth

    def token(stale: Credential | None) -> Credential:
        if configured:
            if stale is not None:
                raise InvalidAuthorization(_INVALID_AUTH, "the wiki refused WIKIMEDIA_APP_TOKEN")
            return configured
        with cache.lock:
            if cache.token is None or stale == cache.token or cache.expires_at - time.time() < 60:
                try:
                    tokens = oauth.client_credentials(wiki_base)
                except WikiRefused as exc:
                    raise ApiError(
                        exc.error,
                        f"the wiki refused the app's client credentials: {exc.description}",
                    ) from exc
                except WikiHTTPError as exc:
                    raise http_error(exc, "the app's client-credentials grant") from exc
                cache.token = tokens.access_token
                cache.expires_at = tokens.expires_at
            return cache.token

    return ApiSession(
        resolve_wiki(wiki),
        token,
        user_agent=oauth.user_agent,
        timeout=oauth.timeout,
        max_bytes=oauth.max_bytes,
        **options,
    )


def anonymous_session(
    *, timeout: tuple[float, float] | None = None, max_bytes: int | None = None
) -> WikiSession:
    """A session for calls anyone may make (a health check's ``siteinfo``, say): the
    extension's outbound limits and User-Agent, and never a token. ``timeout`` and
    ``max_bytes`` default to ``WIKIMEDIA_TIMEOUT`` and ``WIKIMEDIA_MAX_RESPONSE_BYTES``.
    Needs an app context; close it when done (or use it in a ``with`` block).
    """
    oauth = current_state().oauth
    return WikiSession(
        oauth.user_agent,
        oauth.timeout if timeout is None else timeout,
        oauth.max_bytes if max_bytes is None else max_bytes,
    )
