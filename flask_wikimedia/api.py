"""API sessions that act as the logged-in user, or as the app, on any Wikimedia project.

``user_session()`` gives a :class:`ApiSession` (a ``requests.Session``) for the configured wiki,
``user_session("en.wikipedia.org")`` for another project. The Bearer token is attached to every
request and refreshed when it expires (or when the wiki says it is no longer valid); requests
follow the outbound limits (timeouts, size cap, no redirects, policy User-Agent); ``maxlag`` and
``Retry-After`` are honoured; Action API calls send ``assert=user`` so a silent fallback to
anonymous is an error, not an anonymous edit. Errors come out typed: :class:`ApiError` and
subclasses, including ``mwoauth-invalid-authorization``, which MediaWiki answers with HTTP 200.

Because it is a ``requests.Session``, it plugs into the usual libraries::

    mwapi.Session("https://en.wikipedia.org", user_agent=..., session=user_session("en.wikipedia.org"))
    mwclient.Site("en.wikipedia.org", pool=user_session("en.wikipedia.org"))

Tokens are only ever sent to the configured wiki and, when that is a Wikimedia wiki, to the
other Wikimedia projects (single login): never to an arbitrary host.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import current_app

from .errors import LoginRequired, WikiBadResponse, WikiUnavailable
from .extension import get_state
from .outbound import LimitsMixin, WikiGarbage, WikiUnreachable, json_body

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
MAX_RETRIES = 3
MAX_RETRY_AFTER = 10.0


class ApiError(Exception):
    """The wiki answered an API request with an error (``code`` and ``info`` as MediaWiki says)."""

    def __init__(self, code: str, info: str, response: requests.Response | None = None) -> None:
        super().__init__(f"{code}: {info}")
        self.code = code
        self.info = info
        self.response = response


class InvalidAuthorization(ApiError):
    """``mwoauth-invalid-authorization`` (or the edge's 401): the token was refused even after
    a refresh. The user has to log in again."""


class AssertUserFailed(ApiError):
    """``assertuserfailed``: the wiki treated the request as anonymous."""


class RateLimited(ApiError):
    """``maxlag``, ``ratelimited`` or HTTP 429 that did not clear after the retries."""


class ApiSession(LimitsMixin):
    """A ``requests.Session`` for one wiki that acts as a user or the app.

    ``token_provider(stale)`` returns the access token to use; called with the token the wiki
    just refused, it must return a fresh one (or raise).
    """

    def __init__(
        self,
        wiki_url: str,
        token_provider: Callable[[str | None], str],
        *,
        user_agent: str,
        timeout: tuple[float, float],
        max_bytes: int,
        assert_user: bool = True,
        maxlag: int | None = 5,
    ) -> None:
        super().__init__()
        self.configure_limits(user_agent, timeout, max_bytes)
        self.wiki_url = wiki_url.rstrip("/")
        self.api_url = self.wiki_url + "/api.php"
        self.rest_url = self.wiki_url + "/rest.php"
        self._token_provider = token_provider
        self.assert_user = assert_user
        self.maxlag = maxlag

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        stale: str | None = None
        for attempt in range(MAX_RETRIES + 1):
            token = self._token_provider(stale)
            headers = dict(kwargs.pop("headers", None) or {})
            headers["Authorization"] = f"Bearer {token}"
            kwargs["headers"] = headers
            response = super().request(method, url, *args, **kwargs)
            if _token_refused(response):
                if stale is not None:  # refused twice, even after a refresh
                    raise InvalidAuthorization(
                        "mwoauth-invalid-authorization", "the wiki refused the token", response
                    )
                stale = token
                continue
            wait = _retry_after(response)
            if wait is not None and attempt < MAX_RETRIES:
                time.sleep(wait)
                continue
            return response
        return response

    # -- Action API -------------------------------------------------------------------------

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        full: dict[str, Any] = {"format": "json", "formatversion": "2"}
        if self.assert_user:
            full["assert"] = "user"
        if self.maxlag is not None:
            full["maxlag"] = self.maxlag
        for key, value in params.items():
            if isinstance(value, list | tuple | set | frozenset):
                value = "|".join(str(v) for v in value)
            elif isinstance(value, bool):
                if not value:
                    continue
                value = "1"
            full[key] = value
        return full

    def get_json(self, **params: Any) -> dict[str, Any]:
        """``GET api.php`` with these parameters; the parsed answer, or a typed ApiError."""
        return _api_result(self.get(self.api_url, params=self._params(params)))

    def post_json(self, **params: Any) -> dict[str, Any]:
        """``POST api.php`` with these parameters (form-encoded)."""
        return _api_result(self.post(self.api_url, data=self._params(params)))

    def csrf_token(self) -> str:
        result = self.get_json(action="query", meta="tokens", type="csrf")
        try:
            return str(result["query"]["tokens"]["csrftoken"])
        except (KeyError, TypeError) as exc:
            raise ApiError("badresponse", "no CSRF token in the answer") from exc

    def edit(
        self,
        title: str,
        *,
        text: str | None = None,
        appendtext: str | None = None,
        summary: str = "",
        **params: Any,
    ) -> dict[str, Any]:
        """Edit ``title`` as the user (fetches a CSRF token first)."""
        if (text is None) == (appendtext is None):
            raise TypeError("edit() needs exactly one of text= or appendtext=")
        fields: dict[str, Any] = {"action": "edit", "title": title, "summary": summary}
        if text is not None:
            fields["text"] = text
        else:
            fields["appendtext"] = appendtext
        fields.update(params)
        fields["token"] = self.csrf_token()
        return self.post_json(**fields)

    # -- REST API ---------------------------------------------------------------------------

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``rest.php`` (e.g. ``rest("GET", "/v1/page/Earth")``); parsed JSON."""
        response = self.request(method, self.rest_url + path, **kwargs)
        body = json_body(response) if response.content else None
        if response.status_code >= 400:
            code = "http-" + str(response.status_code)
            info = ""
            if isinstance(body, dict):
                code = str(body.get("errorKey") or body.get("error") or code)
                info = str(body.get("message") or body.get("messageTranslations") or "")
            raise ApiError(code, info, response)
        return body


def _token_refused(response: requests.Response) -> bool:
    if response.headers.get("MediaWiki-API-Error") == "mwoauth-invalid-authorization":
        return True
    if response.status_code == 401 and "invalid_token" in response.headers.get(
        "WWW-Authenticate", ""
    ):
        return True  # Wikimedia's edge answers expired tokens before MediaWiki does
    return response.status_code in (401, 403) and b"mwoauth-invalid-authorization" in (
        response.content or b""
    )


def _retry_after(response: requests.Response) -> float | None:
    error = response.headers.get("MediaWiki-API-Error")
    if response.status_code != 429 and error not in ("maxlag", "ratelimited"):
        return None
    value = response.headers.get("Retry-After", "5")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 5.0


def _api_result(response: requests.Response) -> dict[str, Any]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise ApiError("badresponse", "the API answer was not a JSON object", response)
    error = body.get("error")
    if isinstance(error, dict):
        code = str(error.get("code", "unknown"))
        info = str(error.get("info", ""))
        if code == "assertuserfailed":
            raise AssertUserFailed(code, info, response)
        if code in ("maxlag", "ratelimited"):
            raise RateLimited(code, info, response)
        if code == "mwoauth-invalid-authorization":
            raise InvalidAuthorization(code, info, response)
        raise ApiError(code, info, response)
    if response.status_code == 429:
        raise RateLimited("ratelimited", "too many requests", response)
    return body


def resolve_wiki(wiki: str | None) -> str:
    """The script-path URL for ``wiki`` (``None`` = the configured wiki; a host name such as
    ``en.wikipedia.org``; or a full ``https://host/w`` URL). Refuses hosts our tokens must not go to."""
    state = get_state(current_app)
    base = state.wiki_base()
    if wiki is None:
        return base
    url = wiki if "://" in wiki else f"https://{wiki}/w"
    host = urlsplit(url).hostname or ""
    own = urlsplit(base).hostname or ""
    allowed = host == own or (
        own.endswith(WIKIMEDIA_DOMAINS)
        and any(host == d or host.endswith("." + d) for d in WIKIMEDIA_DOMAINS)
        and urlsplit(url).scheme == "https"
    )
    extra = current_app.config.get("WIKIMEDIA_API_HOSTS") or ()
    if not allowed and host not in extra:
        raise ValueError(
            f"refusing to send Wikimedia tokens to {host!r}: only the configured wiki and "
            "Wikimedia projects are allowed (add more with WIKIMEDIA_API_HOSTS)"
        )
    return url.rstrip("/")


def user_session(wiki: str | None = None, **options: Any) -> ApiSession:
    """An API session acting as the current user (inside a request, with a login).

    The token is read from the login record at each request and refreshed through the same
    single-flight path as page views, so a session kept across a long operation stays valid.
    """
    from .login import current_login, force_refresh

    if current_login() is None:
        raise LoginRequired()
    state = get_state(current_app)

    def token(stale: str | None) -> str:
        login = current_login()
        if login is None:
            raise LoginRequired()
        if stale is not None and login.record.access_token == stale:
            login = force_refresh(login)
            if login is None:
                raise LoginRequired("Your login has ended; please log in again.")
        return login.record.access_token

    return ApiSession(
        resolve_wiki(wiki),
        token,
        user_agent=state.oauth.user_agent,
        timeout=state.oauth.timeout,
        max_bytes=state.oauth.max_bytes,
        **options,
    )


class _AppToken:
    """The app's own token: a configured owner-only token, or client credentials (cached)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: str | None = None
        self.expires_at = 0.0


def app_session(wiki: str | None = None, **options: Any) -> ApiSession:
    """An API session acting as the app, for background jobs with no user present.

    Uses ``WIKIMEDIA_APP_TOKEN`` (an owner-only consumer's access token, or a personal API
    token) if set, else the client-credentials grant (owner-only consumers act as their owner;
    other confidential consumers get an anonymous token). Needs an app context.
    """
    state = get_state(current_app)
    configured = current_app.config.get("WIKIMEDIA_APP_TOKEN")
    cache: _AppToken = current_app.extensions.setdefault("wikimedia_app_token", _AppToken())
    wiki_base = state.wiki_base() if state.wiki_url is None else state.wiki_url
    oauth = state.oauth

    def token(stale: str | None) -> str:
        if configured:
            if stale is not None:
                raise InvalidAuthorization(
                    "mwoauth-invalid-authorization", "WIKIMEDIA_APP_TOKEN was refused"
                )
            return str(configured)
        with cache.lock:
            if cache.token is None or stale == cache.token or cache.expires_at - time.time() < 60:
                try:
                    tokens = oauth.client_credentials(wiki_base)
                except WikiUnreachable as exc:
                    raise WikiUnavailable() from exc
                except WikiGarbage as exc:
                    raise WikiBadResponse() from exc
                cache.token = tokens.access_token
                cache.expires_at = tokens.expires_at
            return cache.token

    options.setdefault("assert_user", bool(configured) or bool(state.oauth.client_secret))
    return ApiSession(
        resolve_wiki(wiki),
        token,
        user_agent=oauth.user_agent,
        timeout=oauth.timeout,
        max_bytes=oauth.max_bytes,
        **options,
    )
