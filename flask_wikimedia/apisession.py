"""The API session class behind ``api.user_session()`` and ``api.app_session()``: a
``requests.Session`` for one wiki that attaches the user's (or the app's) credential only to that
wiki's origin, retries ``maxlag``/429/503 within limits, reads MediaWiki's three shapes of a
refused token, and turns API errors into typed exceptions. Its public names are re-exported by
``flask_wikimedia.api``, which is where tools import them from.

Why one module of this size: the token-refusal rules must sit next to the retry loop that acts
on them, and the typed errors are what that loop raises.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from .errors import WikiBadResponse
from .failures import http_error
from .oauth1 import OAuth1Credentials
from .outbound import (
    LimitedSession,
    UnsafeURL,
    WikiGarbage,
    WikiUnreachable,
    canonical_origin,
    is_b64token,
    json_body,
    parse_retry_after,
    request_origin,
)

__all__ = [
    "MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "ApiError",
    "ApiSession",
    "AssertUserFailed",
    "Credential",
    "InvalidAuthorization",
    "RateLimited",
    "TokenProvider",
]

MAX_RETRIES = 3
MAX_RETRY_AFTER = 10.0
DEFAULT_RETRY_AFTER = 5.0
_INVALID_AUTH = "mwoauth-invalid-authorization"
#: requests.Session.request's parameters after method and url, in order.
_REQUEST_ARGS = (
    "params",
    "data",
    "headers",
    "cookies",
    "files",
    "auth",
    "timeout",
    "allow_redirects",
    "proxies",
    "hooks",
    "stream",
    "verify",
    "cert",
    "json",
)


class ApiError(Exception):
    """The wiki answered an API request with an error (``code`` and ``info`` as MediaWiki says).

    ``status`` is the HTTP status of the answer, if there was one. The response itself is not
    kept: its request carries the Bearer token, which pickling the error or logging it with
    ``repr`` would otherwise write out.
    """

    def __init__(
        self,
        code: str,
        info: str,
        response: requests.Response | None = None,
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {info}")
        self.code = code
        self.info = info
        self.status = response.status_code if response is not None else status

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from code, info and status only (Exception's default would pass the message
        # as ``code``), so an error pickled by a job queue comes back the same.
        return (_rebuild_api_error, (type(self), self.code, self.info, self.status))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, info={self.info!r}, status={self.status})"
        )


def _rebuild_api_error(cls: type[ApiError], code: str, info: str, status: int | None) -> ApiError:
    return cls(code, info, status=status)


class InvalidAuthorization(ApiError):
    """``mwoauth-invalid-authorization`` (or the edge's 401): the token was refused even after
    a refresh. The user has to log in again."""


class AssertUserFailed(ApiError):
    """``assertuserfailed``: the wiki treated the request as anonymous."""


class RateLimited(ApiError):
    """``maxlag``, ``ratelimited`` or HTTP 429 that did not clear after the retries."""


#: A Bearer token (OAuth 2.0, app tokens) or the credentials that sign OAuth 1.0a requests.
Credential = str | OAuth1Credentials
TokenProvider = Callable[[Credential | None], Credential]


class ApiSession(LimitedSession):
    """A ``requests.Session`` for one wiki that acts as a user or the app.

    ``token_provider(stale)`` returns the access token to use; called with the token the wiki
    just refused, it must return a fresh one (or raise). The token goes only to requests whose
    prepared URL (what ``requests`` really sends) has this wiki's origin, checked again when
    the request is sent; another clean URL is fetched without it, and a URL that could be read
    two ways (userinfo, backslashes, control characters, odd host spellings) raises
    :class:`~flask_wikimedia.outbound.UnsafeURL` before anything is sent.
    ``max_retries`` and ``max_retry_after`` bound the waiting for ``maxlag``, rate limits and
    ``503`` answers that carry ``Retry-After``.
    """

    def __init__(
        self,
        wiki_url: str,
        token_provider: TokenProvider,
        *,
        user_agent: str,
        timeout: tuple[float, float],
        max_bytes: int,
        assert_user: bool = True,
        maxlag: int | None = 5,
        max_retries: int = MAX_RETRIES,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        super().__init__()
        self.configure_limits(user_agent, timeout, max_bytes)
        self.user_agent = user_agent
        self.wiki_url = wiki_url.rstrip("/")
        self.api_url = self.wiki_url + "/api.php"
        self.rest_url = self.wiki_url + "/rest.php"
        self.origin = request_origin(self.wiki_url)
        self._token_provider = token_provider
        self.assert_user = assert_user
        self.maxlag = maxlag
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after

    def __repr__(self) -> str:
        return f"<ApiSession {self.wiki_url}>"

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        # Name any positional arguments (requests' own order) so headers can be merged.
        kwargs.update(zip(_REQUEST_ARGS, args, strict=False))
        target = url.decode() if isinstance(url, bytes) else url
        request_origin(target)  # a URL that could be read two ways is refused up front
        headers = dict(kwargs.pop("headers", None) or {})
        agent = headers.get("User-Agent")
        if agent and not str(agent).startswith(self.user_agent):
            # Libraries set their own generic agents (mwapi's default would replace ours):
            # keep the policy-compliant one first (User-Agent policy, protocol §9).
            headers["User-Agent"] = f"{self.user_agent} {agent}"
        if kwargs.get("timeout") is None:  # mwapi passes timeout=None: never wait forever
            kwargs["timeout"] = self.timeout
        their_auth = kwargs.pop("auth", None)
        stale: Credential | None = None
        attempt = 0
        while True:
            bearer = _CredentialAuth(self, stale, their_auth)
            try:
                response = super().request(method, url, headers=headers, auth=bearer, **kwargs)
            except WikiUnreachable as exc:
                wait = self._wait(exc.status, exc.retry_after)
                if wait is not None and attempt < self.max_retries:
                    attempt += 1
                    time.sleep(wait)
                    continue
                raise http_error(
                    exc,
                    "an API request",
                    description=f"The wiki did not answer an API request ({exc}). "
                    "Please try again in a moment.",
                ) from exc
            except WikiGarbage as exc:
                raise http_error(
                    exc,
                    "an API request",
                    description=f"The wiki's API answer was unusable ({exc}).",
                ) from exc
            token = bearer.token
            if token is not None and _token_refused(response):
                if stale is not None:  # refused again, even after a refresh: no loop
                    raise InvalidAuthorization(
                        _INVALID_AUTH, "the wiki refused the token even after a refresh", response
                    )
                stale = token  # the provider refreshes (once, single-flight) and we retry once
                continue
            wait = self._wait(response.status_code, response.headers.get("Retry-After"), response)
            if wait is not None and attempt < self.max_retries:
                attempt += 1
                time.sleep(wait)
                continue
            return response

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """The last look before the adapter connects: the token may only leave for our origin,
        judged from the URL being sent, by the parsers ``requests`` itself uses."""
        origin = canonical_origin(str(request.url))
        if "Authorization" in request.headers and origin != self.origin:
            raise UnsafeURL(f"refusing to send the credentials to {origin[1]!r}")
        return super().send(request, **kwargs)

    def _wait(
        self,
        status: int | None,
        retry_after: str | None,
        response: requests.Response | None = None,
    ) -> float | None:
        """Seconds to wait before retrying, or None if this answer is not worth a retry."""
        error = response.headers.get("MediaWiki-API-Error") if response is not None else None
        limited = error in ("maxlag", "ratelimited") or status == 429
        # Retry-After is the wiki's to send and ours to distrust: nan, inf, -1, 1e309 or a
        # garbage date read as absent (time.sleep(nan) raises), and the wait is capped.
        seconds = parse_retry_after(retry_after, self.max_retry_after)
        if not limited and not (status == 503 and seconds is not None):
            return None
        if seconds is None:
            seconds = min(DEFAULT_RETRY_AFTER, max(self.max_retry_after, 0.0))
        return seconds

    # -- Action API -------------------------------------------------------------------------

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        full: dict[str, Any] = {"format": "json", "formatversion": "2"}
        if self.assert_user:
            full["assert"] = "user"
        if self.maxlag is not None:
            full["maxlag"] = self.maxlag
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, list | tuple | set | frozenset):
                items = [str(v) for v in value]
                if any("|" in item for item in items):
                    # MediaWiki's alternative multi-value separator, for values containing "|".
                    value = "\x1f" + "\x1f".join(items)
                else:
                    value = "|".join(items)
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
        """A CSRF token for writes (OAuth does not exempt api.php writes from it, protocol §9)."""
        result = self.get_json(action="query", meta="tokens", type="csrf")
        try:
            return str(result["query"]["tokens"]["csrftoken"])
        except (KeyError, TypeError) as exc:
            raise ApiError("badresponse", "no CSRF token in the answer") from exc

    def post_with_token(self, **params: Any) -> dict[str, Any]:
        """``POST api.php`` with a fresh CSRF token (fetched again once if it went stale)."""
        params["token"] = self.csrf_token()
        try:
            return self.post_json(**params)
        except ApiError as error:
            if error.code != "badtoken":
                raise
            params["token"] = self.csrf_token()
            return self.post_json(**params)

    def edit(
        self,
        title: str,
        *,
        text: str | None = None,
        appendtext: str | None = None,
        summary: str = "",
        **params: Any,
    ) -> dict[str, Any]:
        """Edit ``title`` as the user (fetches a CSRF token first). Returns the API's answer;
        an edit the wiki did not save (``result`` other than ``Success``) raises ApiError."""
        if (text is None) == (appendtext is None):
            raise TypeError("edit() needs exactly one of text= or appendtext=")
        fields: dict[str, Any] = {"action": "edit", "title": title, "summary": summary}
        if text is not None:
            fields["text"] = text
        else:
            fields["appendtext"] = appendtext
        fields.update(params)
        answer = self.post_with_token(**fields)
        edit = answer.get("edit")
        if not isinstance(edit, dict) or edit.get("result") != "Success":
            result = edit.get("result") if isinstance(edit, dict) else None
            raise ApiError("editfailed", f"the wiki did not save the edit (result {result!r})")
        return answer

    # -- REST API ---------------------------------------------------------------------------

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``rest.php`` (e.g. ``rest("GET", "/v1/page/Earth")``); parsed JSON, or ApiError
        with the REST error key. Writes need no CSRF token with OAuth (protocol §9)."""
        response = self.request(method, self.rest_url + path, **kwargs)
        body = _json(response) if response.content else None
        if response.status_code >= 400:
            code = "http-" + str(response.status_code)
            info = ""
            if isinstance(body, dict):
                code = str(body.get("errorKey") or body.get("error") or code)
                info = _rest_message(body)
            raise ApiError(code, info, response)
        return body


class _CredentialAuth(requests.auth.AuthBase):
    """Attaches the credential to a prepared request whose URL has the session's origin: the
    Bearer header, or the OAuth 1.0a signature.

    Run by ``requests`` after it prepared the URL, so the decision is taken on the URL that
    will be sent, not on a separate parse of what the caller passed (invariant 6); an OAuth
    1.0a request is signed over that same final URL and body, with a fresh nonce and timestamp
    on every retry (each retry prepares the request again).
    """

    def __init__(self, session: ApiSession, stale: Credential | None, inner: Any) -> None:
        self.session = session
        self.stale = stale
        self.inner = inner
        self.token: Credential | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.inner is not None:  # the caller's own auth, if any, runs first
            request = self.inner(request)
        if canonical_origin(str(request.url)) != self.session.origin:
            return request
        token = self.session._token_provider(self.stale)
        if isinstance(token, OAuth1Credentials):
            self.token = token
            signed: requests.PreparedRequest = token.auth()(request)
            return signed
        if not is_b64token(token):  # never a header the wiki (or a config) could break
            raise WikiBadResponse("The access token is not usable as a Bearer token.")
        self.token = token
        request.headers["Authorization"] = f"Bearer {token}"
        return request


def _rest_message(body: dict[str, Any]) -> str:
    message = body.get("message") or body.get("error_description")
    if isinstance(message, str):
        return message
    translations = body.get("messageTranslations")
    if isinstance(translations, dict) and translations:
        text = translations.get("en") or next(iter(translations.values()))
        return str(text)
    return ""


def _token_refused(response: requests.Response) -> bool:
    """Did the wiki refuse the Bearer token? Three shapes (protocol §4.3, §4.4)."""
    if response.headers.get("MediaWiki-API-Error") == _INVALID_AUTH:
        return True  # Action API: HTTP 200 with the error header
    if response.status_code == 401 and "invalid_token" in response.headers.get(
        "WWW-Authenticate", ""
    ):
        return True  # Wikimedia's edge answers expired tokens before MediaWiki does
    content = response.content or b""
    if _INVALID_AUTH.encode() not in content:
        return False
    if response.status_code in (401, 403):
        return True  # rest.php: 403 with errorKey mwoauth-invalid-authorization
    try:  # HTTP 200 without the header (a proxy dropped it): read the error code itself
        body = json.loads(content)
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == _INVALID_AUTH


def _json(response: requests.Response) -> Any:
    try:
        return json_body(response)
    except WikiGarbage as exc:
        raise http_error(
            exc, "an API request", description="The wiki's API answer was not JSON."
        ) from exc


def _api_result(response: requests.Response) -> dict[str, Any]:
    body = _json(response)
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
        if code == _INVALID_AUTH:
            raise InvalidAuthorization(code, info, response)
        raise ApiError(code, info, response)
    if response.status_code == 429:
        raise RateLimited("ratelimited", "too many requests", response)
    if response.status_code >= 400:
        raise ApiError(f"http-{response.status_code}", "the API answered with an error", response)
    return body
