"""The development wiki's OAuth 2.0 server, the parts its endpoints share: the error shapes of
both flavours, scopes, redirect-URI rules and redirects. The endpoints: ``authorize.py``
(authorize and the consent page), ``token.py`` (the token endpoint), ``resource.py`` (profile and
scopes).

Behaviour follows Extension:OAuth on top of League OAuth2 Server 9 (flavor ``"wikimedia"``)
or the older fork as MediaWiki 1.39 answered (flavor ``"1.39"``); see
``reference/wikimedia-oauth-protocol.md`` and ``reference/real-mediawiki-1.39-observed.md``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from flask import Response

from .common import html_page
from .models import (
    IRREVOCABLE_GRANTS,
    KNOWN_SCOPES,
    DevClient,
    normalize_grant,
)

if TYPE_CHECKING:
    from .wiki import DevWiki

PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
INTERNAL_PARAMS = frozenset({"approval_pass", "approval_cancel", "devwiki_approval"})

DESC_INVALID_REQUEST = (
    "The request is missing a required parameter, includes an invalid parameter value, "
    "includes a parameter more than once, or is otherwise malformed."
)
DESC_INVALID_CLIENT = "Client authentication failed"
DESC_INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed"
DESC_INVALID_GRANT = (
    "The provided authorization grant (e.g., authorization code, resource owner credentials) "
    "or refresh token is invalid, expired, revoked, does not match the redirection URI used in "
    "the authorization request, or was issued to another client."
)
DESC_ACCESS_DENIED = "The resource owner or authorization server denied the request."
DESC_REJECTED = "User has rejected the request from client application"
DESC_REFRESH = "The refresh token is invalid."


class OAuthError(Exception):
    """An OAuth error: JSON on the token endpoint, a page or redirect on authorize."""

    def __init__(self, error: str, description: str, status: int, hint: str | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.hint = hint

    def payload(self, flavor: str) -> dict[str, str]:
        body = {"error": self.error, "error_description": self.description}
        if self.hint is not None:
            body["hint"] = self.hint
        if flavor == "1.39":
            body["message"] = self.description
        return body


def invalid_request(param: str | None = None, hint: str | None = None) -> OAuthError:
    if hint is None and param is not None:
        hint = f"Check the `{param}` parameter"
    return OAuthError("invalid_request", DESC_INVALID_REQUEST, 400, hint)


def invalid_client() -> OAuthError:
    return OAuthError("invalid_client", DESC_INVALID_CLIENT, 401)


def invalid_scope(scope: str) -> OAuthError:
    return OAuthError("invalid_scope", DESC_INVALID_SCOPE, 400, f"Check the `{scope}` scope")


def invalid_grant(hint: str) -> OAuthError:
    return OAuthError("invalid_grant", DESC_INVALID_GRANT, 400, hint)


def code_error(wiki: DevWiki, hint: str) -> OAuthError:
    """Expired/reused codes: ``invalid_grant`` (League 9) or ``invalid_request`` (1.39)."""
    if wiki.flavor == "1.39":
        return invalid_request(hint=hint)
    return invalid_grant(hint)


def refresh_error(wiki: DevWiki, hint: str) -> OAuthError:
    """Bad refresh tokens: ``invalid_grant``/400 (League 9) or ``invalid_request``/401 (1.39)."""
    if wiki.flavor == "1.39":
        return OAuthError("invalid_request", DESC_REFRESH, 401, hint)
    return OAuthError("invalid_grant", DESC_REFRESH, 400, hint)


# ---------------------------------------------------------------------------- helpers


def parse_scopes(raw: str | None) -> list[str]:
    """Split a space-separated scope string (old grant names mapped to current ones)."""
    scopes: list[str] = []
    for part in (raw or "").split(" "):
        if part:
            scope = normalize_grant(part)
            if scope not in scopes:
                scopes.append(scope)
    return scopes


def first_unknown_scope(scopes: list[str]) -> str | None:
    for scope in scopes:
        if scope not in KNOWN_SCOPES:
            return scope
    return None


def narrow_scopes(client: DevClient, requested: list[str]) -> list[str]:
    """Requested ∩ registered, plus the registered irrevocable grants; all if none requested."""
    wanted = [s for s in requested if s != "#default"]
    if not wanted:
        return list(client.grants)
    return [g for g in client.grants if g in wanted or g in IRREVOCABLE_GRANTS]


def is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and hostname in LOOPBACK_HOSTS
        and "@" not in parts.netloc
        and not parts.fragment
    )


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return parts._replace(netloc=netloc).geturl()


def redirect_uri_matches(wiki: DevWiki, client: DevClient, uri: str) -> bool:
    """Exact match with the registered callback; loopback IPs match on any port (League 9)."""
    registered = client.redirect_uri
    if registered is None:
        return is_loopback_url(uri)
    if uri == registered:
        return True
    if wiki.flavor == "1.39":
        return False
    try:
        reg, given = urlsplit(registered), urlsplit(uri)
        reg_host, given_host = reg.hostname, given.hostname
    except ValueError:
        return False
    if reg.scheme == "http" and reg_host in ("127.0.0.1", "::1") and given_host == reg_host:
        return _without_port(registered) == _without_port(uri)
    return False


def add_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def redirect(location: str, status: int = 302) -> Response:
    response = Response("", status)
    response.headers["Location"] = location
    return response


def authorize_error_page(wiki: DevWiki, error: OAuthError) -> Response:
    """Authorize errors without a redirect: HTML with the error's status (1.39: always 200)."""
    status = 200 if wiki.flavor == "1.39" else error.status
    return html_page(
        "error.html",
        status,
        heading="Application Connection Error",
        error=error.error,
        description=error.description,
        hint=error.hint,
    )


def internal_query(raw: str) -> str:
    """The original authorize query without our own hop parameters."""
    parts = [p for p in raw.split("&") if p and p.split("=", 1)[0] not in INTERNAL_PARAMS]
    return "&".join(parts)
