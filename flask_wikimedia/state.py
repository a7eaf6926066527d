"""Per-app state: what ``init_app`` builds and every request reads, at ``app.extensions["wikimedia"]``.

A module with no imports back up into the package (types only, under ``TYPE_CHECKING``), so that
views, login, refresh, decorators, the API sessions and the CLI all reach the state the same way,
and imports go one way: ``extension`` builds it, everyone else reads it with :func:`get_state`.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, request, url_for

if TYPE_CHECKING:
    from .crypto import Sealer
    from .devwiki import DevWiki
    from .oauth import OAuthClient
    from .oauth1 import OAuth1Client
    from .store import LoginStore
    from .user import WikimediaUser

__all__ = [
    "DEV_MOUNT",
    "EXTENSION_KEY",
    "AppTokenCache",
    "LoginCheck",
    "Refusal",
    "WikimediaState",
    "current_state",
    "get_state",
]

#: Where ``WIKIMEDIA_DEV_WIKI=True`` mounts the development wiki inside the app.
DEV_MOUNT = "/_devwiki"
#: The key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "wikimedia"

#: A custom login policy: a message to refuse the user, None to allow.
LoginCheck = Callable[["WikimediaUser"], "str | None"]


@dataclass(frozen=True)
class Refusal:
    """Why a login policy refused an account: a message of the extension's catalog and its
    parameters (the built-in policies, shown in the user's language), or the text an app's own
    login check returned (shown as it is)."""

    message: str | None = None
    params: tuple[str, ...] = ()
    text: str | None = None


def _names_refusal(kind: str, names: AbstractSet[str]) -> Refusal:
    """``wikimedia-refused-<kind>`` for one missing name, ``...-<kind>s`` for several."""
    plural = "s" if len(names) > 1 else ""
    return Refusal(f"wikimedia-refused-{kind}{plural}", (", ".join(sorted(names)),))


class AppTokenCache:
    """The app's client-credentials token for ``api.app_session()``, cached per process. Not a
    login (invariant 10 is about users): each worker may hold its own, and a lost one is
    fetched again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: str | None = None
        self.expires_at = 0.0


@dataclass
class WikimediaState:
    """Per-app state at ``app.extensions["wikimedia"]``, built once by ``init_app``."""

    #: The ``Wikimedia`` object registered on the app (its login checks and unauthorized handler).
    ext: Any
    oauth: OAuthClient
    store: LoginStore
    pending_sealer: Sealer
    wiki_url: str | None  # None: the development wiki mounted in this app
    configured_redirect_uri: str | None
    profile_max_age: float
    url_prefix: str
    deny_blocked: bool
    require_confirmed_email: bool
    required_rights: frozenset[str]
    required_groups: frozenset[str]
    dev_wiki: DevWiki | None = None
    #: The OAuth version of new logins ("2.0" or "1.0a"); each login record keeps its own.
    oauth_version: str = "2.0"
    #: The OAuth 1.0a consumer: new logins when ``oauth_version`` is "1.0a", and the logins
    #: made with it during a move to 2.0 (``WIKIMEDIA_OAUTH1_CLIENT_ID``). None: no 1.0a.
    oauth1: OAuth1Client | None = None
    #: ``WIKIMEDIA_API_HOSTS``, parsed at startup: extra https hosts API sessions may send
    #: tokens to.
    api_hosts: frozenset[str] = frozenset()
    #: ``WIKIMEDIA_APP_TOKEN``: the owner-only consumer's token for ``api.app_session()``.
    app_token: str | None = None
    app_token_cache: AppTokenCache = field(default_factory=AppTokenCache)

    def wiki_base(self) -> str:
        """The wiki's script path URL for this server's own calls (tokens, profile, API), e.g.
        ``https://meta.wikimedia.org/w``.

        For the development wiki mounted in this app: this server's own address, never the
        request's ``Host`` header, which the client chooses (a forged one would point the
        server's token requests at any host; docs/security.md, HH-3).
        """
        if self.wiki_url is not None:
            return self.wiki_url
        return _own_origin() + request.script_root + DEV_MOUNT + "/w"

    def browser_wiki_base(self) -> str:
        """Where the browser is sent for the consent page: the wiki, or for the development
        wiki a path on this site (relative, so it works whatever name the browser used)."""
        if self.wiki_url is not None:
            return self.wiki_url
        return request.script_root + DEV_MOUNT + "/w"

    def redirect_uri(self) -> str:
        """The callback URL sent to the wiki: ``WIKIMEDIA_REDIRECT_URI``, else ours."""
        if self.configured_redirect_uri:
            return self.configured_redirect_uri
        return url_for("wikimedia.callback", _external=True)

    def default_next(self) -> str:
        """Where a login or logout without a ``next`` lands: the app's root."""
        return request.script_root + "/" if request.script_root else "/"

    def check_policies(self, user: WikimediaUser) -> Refusal | None:
        """Why a login policy refuses ``user``, or None if every policy lets them in."""
        if self.deny_blocked and user.blocked:
            return Refusal("wikimedia-refused-blocked")
        if self.require_confirmed_email and not user.confirmed_email:
            return Refusal("wikimedia-refused-email")
        missing_rights = self.required_rights - user.rights
        if missing_rights:
            return _names_refusal("right", missing_rights)
        missing_groups = self.required_groups - user.groups
        if missing_groups:
            return _names_refusal("group", missing_groups)
        check: LoginCheck
        for check in self.ext.login_checks:
            text = check(user)
            if text:
                return Refusal(text=text)
        return None


def _own_origin() -> str:
    """This server's own origin: the address of the socket that accepted the request (the
    development server and gunicorn put it in the environ), else the configured
    ``SERVER_NAME``, else ``localhost``. Never a request header."""
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if sock is not None:
        try:
            host, port = sock.getsockname()[:2]
        except (OSError, TypeError, ValueError):
            pass
        else:
            scheme = "https" if isinstance(sock, ssl.SSLSocket) else "http"
            return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    scheme = current_app.config.get("PREFERRED_URL_SCHEME") or "http"
    return f"{scheme}://{current_app.config.get('SERVER_NAME') or 'localhost'}"


def get_state(app: Flask) -> WikimediaState:
    """The extension's state on ``app``; a clear ``RuntimeError`` if it was never initialised."""
    try:
        state: WikimediaState = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "Flask-Wikimedia is not initialised on this app: call Wikimedia(app) or "
            "wikimedia.init_app(app)."
        ) from None
    return state


def current_state() -> WikimediaState:
    """The extension's state on the current app (inside a request or app context)."""
    return get_state(current_app)
