"""The ``Wikimedia`` extension: configuration, validation and registration.

Config keys (set them before ``init_app``):

``WIKIMEDIA_CLIENT_ID``            the OAuth 2.0 consumer key (required outside debug/testing)
``WIKIMEDIA_CLIENT_SECRET``        its secret; absent for a non-confidential client
``WIKIMEDIA_WIKI_URL``             where ``rest.php`` and ``api.php`` live (``https://meta.wikimedia.org/w``)
``WIKIMEDIA_REDIRECT_URI``         the registered callback URL (default: external URL of ``wikimedia.callback``)
``WIKIMEDIA_SCOPES``               grants to ask for (list or space-separated); default: all the consumer's
``WIKIMEDIA_USER_AGENT``           ``ToolName/1.0 (https://tool.example; you@example.org)`` (required outside debug/testing)
``WIKIMEDIA_REDIS``                a ``redis.Redis`` or a URL; falls back to Flask-Session's ``SESSION_REDIS``
``WIKIMEDIA_KEY_PREFIX``           Redis key prefix for login records (default ``SESSION_KEY_PREFIX`` + ``wikimedia:``)
``WIKIMEDIA_PROFILE_MAX_AGE``      seconds before rights, groups and blocks are re-read (300)
``WIKIMEDIA_LOGIN_TTL``            seconds a login record lives without use (``PERMANENT_SESSION_LIFETIME``)
``WIKIMEDIA_TIMEOUT``              (connect, read) seconds for calls to the wiki ((3.05, 10))
``WIKIMEDIA_MAX_RESPONSE_BYTES``   cap on any answer from the wiki (2 MiB)
``WIKIMEDIA_DENY_BLOCKED``         refuse blocked users at login and end their logins (False)
``WIKIMEDIA_REQUIRE_CONFIRMED_EMAIL``  refuse users without a confirmed email (False)
``WIKIMEDIA_REQUIRED_RIGHTS`` / ``WIKIMEDIA_REQUIRED_GROUPS``  refuse users lacking these at login (())
``WIKIMEDIA_API_HOSTS``            extra https hosts API sessions may send tokens to (())
``WIKIMEDIA_APP_TOKEN``            owner-only or personal API token for ``api.app_session()``
``WIKIMEDIA_URL_PREFIX``           where the blueprint is mounted (``/auth``)
``WIKIMEDIA_DEV_WIKI``             True (debug/testing only): serve the development wiki at ``/_devwiki``
``WIKIMEDIA_OAUTH_VERSION``        ``"2.0"`` (default) or ``"1.0a"`` (then CLIENT_ID/SECRET are a 1.0a consumer's)
``WIKIMEDIA_OAUTH1_CLIENT_ID`` / ``_SECRET``  with 2.0: the old 1.0a consumer, kept for its logins
``WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX``  True if the 1.0a consumer is "callback is prefix" (False: ``oob``)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis
from flask import Flask, current_app, request, url_for
from markupsafe import Markup, escape

from .crypto import Sealer
from .errors import ConfigurationError
from .oauth import OAuthClient
from .oauth1 import OAuth1Client, read_settings
from .outbound import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, full_user_agent
from .store import LoginStore, MemoryLoginStore, RedisLoginStore
from .user import WikimediaUser

if TYPE_CHECKING:
    from .devwiki import DevWiki

log = logging.getLogger("flask_wikimedia")

DEFAULT_WIKI_URL = "https://meta.wikimedia.org/w"
DEV_MOUNT = "/_devwiki"
DEV_USER_AGENT = "Flask-Wikimedia-development/0 (local development; no contact)"

LoginCheck = Callable[[WikimediaUser], "str | None"]


@dataclass
class WikimediaState:
    """Per-app state at ``app.extensions["wikimedia"]``."""

    ext: Wikimedia
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
    config: dict[str, Any] = field(default_factory=dict)
    #: The OAuth version of new logins ("2.0" or "1.0a"); each login record keeps its own.
    oauth_version: str = "2.0"
    #: The OAuth 1.0a consumer: new logins when ``oauth_version`` is "1.0a", and the logins
    #: made with it during a move to 2.0 (``WIKIMEDIA_OAUTH1_CLIENT_ID``). None: no 1.0a.
    oauth1: OAuth1Client | None = None

    def wiki_base(self) -> str:
        """The wiki's script path URL, e.g. ``https://meta.wikimedia.org/w``."""
        if self.wiki_url is not None:
            return self.wiki_url
        return request.host_url.rstrip("/") + DEV_MOUNT + "/w"

    def redirect_uri(self) -> str:
        if self.configured_redirect_uri:
            return self.configured_redirect_uri
        return url_for("wikimedia.callback", _external=True)

    def default_next(self) -> str:
        return request.script_root + "/" if request.script_root else "/"

    def check_policies(self, user: WikimediaUser) -> str | None:
        """A message if a login policy refuses ``user``, else None."""
        if self.deny_blocked and user.blocked:
            return "Blocked accounts cannot log in to this tool."
        if self.require_confirmed_email and not user.confirmed_email:
            return "This tool needs an account with a confirmed email address."
        missing_rights = self.required_rights - user.rights
        if missing_rights:
            return "This tool needs the right(s): " + ", ".join(sorted(missing_rights)) + "."
        missing_groups = self.required_groups - user.groups
        if missing_groups:
            return "This tool is only for members of: " + ", ".join(sorted(missing_groups)) + "."
        for check in self.ext.login_checks:
            message = check(user)
            if message:
                return message
        return None


def get_state(app: Flask) -> WikimediaState:
    try:
        state: WikimediaState = app.extensions["wikimedia"]
    except KeyError:
        raise RuntimeError(
            "Flask-Wikimedia is not initialised on this app: call Wikimedia(app) or "
            "wikimedia.init_app(app)."
        ) from None
    return state


def _scopes(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, Iterable):
        return " ".join(str(v) for v in value)
    raise ConfigurationError(
        "WIKIMEDIA_SCOPES must be a list of grants or a space-separated string"
    )


def _names(value: object, key: str) -> frozenset[str]:
    if not value:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.replace(",", " ").split())
    if isinstance(value, Iterable):
        return frozenset(str(v) for v in value)
    raise ConfigurationError(f"{key} must be a list of names")


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")


def _redis_client(value: object) -> redis.Redis | None:
    if value is None or value == "":
        return None
    if isinstance(value, redis.Redis):
        return value
    if isinstance(value, str):
        from .sessions import connect_redis

        # Short timeouts, no retry storms: Redis trouble must be a fast 503 (invariant 7).
        return connect_redis(value)
    raise ConfigurationError("WIKIMEDIA_REDIS must be a redis.Redis client or a redis:// URL")


class Wikimedia:
    """Log in with Wikimedia. ``Wikimedia(app)`` or ``wikimedia = Wikimedia(); wikimedia.init_app(app)``.

    Holds only what the app author registers on it (login checks, the unauthorized handler);
    per-app state lives in ``app.extensions["wikimedia"]``.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self.login_checks: list[LoginCheck] = []
        self.unauthorized_callback: Callable[[], Any] | None = None
        if app is not None:
            self.init_app(app)

    def login_check(self, func: LoginCheck) -> LoginCheck:
        """Register a custom login policy: return a message to refuse the user, None to allow.

        Checked at login and whenever the profile is re-read; a refusal ends the login.
        """
        self.login_checks.append(func)
        return func

    def unauthorized_handler(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """Register what a logged-out request to a protected view gets instead of the default
        (redirect to login for a browser GET, 401 otherwise)."""
        self.unauthorized_callback = func
        return func

    def init_app(self, app: Flask) -> None:
        cfg = app.config
        cfg.setdefault("WIKIMEDIA_CLIENT_ID", None)
        cfg.setdefault("WIKIMEDIA_CLIENT_SECRET", None)
        cfg.setdefault("WIKIMEDIA_WIKI_URL", DEFAULT_WIKI_URL)
        cfg.setdefault("WIKIMEDIA_REDIRECT_URI", None)
        cfg.setdefault("WIKIMEDIA_SCOPES", None)
        cfg.setdefault("WIKIMEDIA_USER_AGENT", None)
        cfg.setdefault("WIKIMEDIA_REDIS", None)
        cfg.setdefault("WIKIMEDIA_KEY_PREFIX", None)
        cfg.setdefault("WIKIMEDIA_PROFILE_MAX_AGE", 300)
        cfg.setdefault("WIKIMEDIA_LOGIN_TTL", None)
        cfg.setdefault("WIKIMEDIA_TIMEOUT", DEFAULT_TIMEOUT)
        cfg.setdefault("WIKIMEDIA_MAX_RESPONSE_BYTES", DEFAULT_MAX_BYTES)
        cfg.setdefault("WIKIMEDIA_DENY_BLOCKED", False)
        cfg.setdefault("WIKIMEDIA_REQUIRE_CONFIRMED_EMAIL", False)
        cfg.setdefault("WIKIMEDIA_REQUIRED_RIGHTS", ())
        cfg.setdefault("WIKIMEDIA_REQUIRED_GROUPS", ())
        cfg.setdefault("WIKIMEDIA_URL_PREFIX", "/auth")
        cfg.setdefault("WIKIMEDIA_DEV_WIKI", False)
        cfg.setdefault("WIKIMEDIA_OAUTH_VERSION", "2.0")
        cfg.setdefault("WIKIMEDIA_OAUTH1_CLIENT_ID", None)
        cfg.setdefault("WIKIMEDIA_OAUTH1_CLIENT_SECRET", None)
        cfg.setdefault("WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX", False)

        relaxed = bool(app.debug or app.testing)
        secret_key = app.secret_key
        if not secret_key:
            raise ConfigurationError(
                "Flask-Wikimedia needs SECRET_KEY: it derives the keys that encrypt login "
                "records from it. Set a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')."
            )
        fallbacks = cfg.get("SECRET_KEY_FALLBACKS") or []

        dev_wiki = None
        wiki_url: str | None = str(cfg["WIKIMEDIA_WIKI_URL"]).rstrip("/")
        client_id = cfg["WIKIMEDIA_CLIENT_ID"]
        client_secret = cfg["WIKIMEDIA_CLIENT_SECRET"] or None
        if cfg["WIKIMEDIA_DEV_WIKI"]:
            if not relaxed:
                raise ConfigurationError(
                    "WIKIMEDIA_DEV_WIKI is for local development and tests only: it serves a "
                    "fake wiki where anyone can log in as anyone. Turn it off, or run with "
                    "debug or testing on."
                )
            from werkzeug.middleware.dispatcher import DispatcherMiddleware

            from .devwiki import DEV_CLIENT_ID, DevWiki

            dev_wiki = DevWiki()
            app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
                app.wsgi_app, {DEV_MOUNT: dev_wiki.create_app()}
            )
            wiki_url = None
            client_id = DEV_CLIENT_ID
            client_secret = None
            log.warning(
                "Flask-Wikimedia: the development wiki is mounted at %s: NOT a real login",
                DEV_MOUNT,
            )
        oauth1 = read_settings(cfg, dev_wiki=dev_wiki is not None)
        if not client_id:
            raise ConfigurationError(
                "Set WIKIMEDIA_CLIENT_ID to your OAuth 2.0 consumer key (register one at "
                "https://meta.wikimedia.org/wiki/Special:OAuthConsumerRegistration/propose/oauth2), "
                "or WIKIMEDIA_DEV_WIKI = True to try things locally against the development wiki."
            )
        if wiki_url is not None and not relaxed and not _https_or_loopback(wiki_url):
            raise ConfigurationError(
                f"WIKIMEDIA_WIKI_URL {wiki_url!r} is not https: tokens and the client secret "
                "would cross the network in clear. Use the wiki's https URL."
            )
        agent = cfg["WIKIMEDIA_USER_AGENT"]
        if not agent:
            if not relaxed:
                raise ConfigurationError(
                    "Set WIKIMEDIA_USER_AGENT, e.g. 'MyTool/1.0 (https://mytool.toolforge.org; "
                    "you@example.org)': Wikimedia's User-Agent policy requires a descriptive "
                    "agent with contact details, and blocks generic ones."
                )
            agent = DEV_USER_AGENT
        if (
            not relaxed
            and not cfg["WIKIMEDIA_REDIRECT_URI"]
            and not cfg.get("SERVER_NAME")
            and not cfg.get("TRUSTED_HOSTS")
        ):
            raise ConfigurationError(
                "Set WIKIMEDIA_REDIRECT_URI to the callback URL you registered (e.g. "
                "'https://mytool.toolforge.org/auth/callback'), or SERVER_NAME/TRUSTED_HOSTS: "
                "otherwise the callback URL would be derived from the request's Host header."
            )
        timeout = cfg["WIKIMEDIA_TIMEOUT"]
        if isinstance(timeout, int | float):
            timeout = (float(timeout), float(timeout))
        timeout = (float(timeout[0]), float(timeout[1]))

        login_ttl = cfg["WIKIMEDIA_LOGIN_TTL"] or int(
            app.permanent_session_lifetime.total_seconds()
        )
        client = _redis_client(cfg["WIKIMEDIA_REDIS"]) or _redis_client(cfg.get("SESSION_REDIS"))
        store: LoginStore
        if client is not None:
            prefix = cfg["WIKIMEDIA_KEY_PREFIX"]
            if prefix is None:
                prefix = str(cfg.get("SESSION_KEY_PREFIX") or "") + "wikimedia:"
            store = RedisLoginStore(
                client, str(prefix), Sealer(secret_key, "login-record", fallbacks), int(login_ttl)
            )
        elif relaxed:
            log.warning("Flask-Wikimedia: no Redis configured; keeping logins in this process")
            store = MemoryLoginStore(int(login_ttl))
        else:
            raise ConfigurationError(
                "Set WIKIMEDIA_REDIS (a redis:// URL or client) or Flask-Session's SESSION_REDIS: "
                "logins are kept server-side in Redis so every worker shares them."
            )

        prefix_url = str(cfg["WIKIMEDIA_URL_PREFIX"]).rstrip("/")
        state = WikimediaState(
            ext=self,
            oauth=OAuthClient(
                client_id=str(client_id),
                client_secret=client_secret,
                scopes=_scopes(cfg["WIKIMEDIA_SCOPES"]),
                user_agent=full_user_agent(str(agent)),
                timeout=timeout,
                max_bytes=int(cfg["WIKIMEDIA_MAX_RESPONSE_BYTES"]),
            ),
            store=store,
            pending_sealer=Sealer(secret_key, "pending-login", fallbacks),
            wiki_url=wiki_url,
            configured_redirect_uri=cfg["WIKIMEDIA_REDIRECT_URI"] or None,
            profile_max_age=float(cfg["WIKIMEDIA_PROFILE_MAX_AGE"]),
            url_prefix=prefix_url,
            deny_blocked=bool(cfg["WIKIMEDIA_DENY_BLOCKED"]),
            require_confirmed_email=bool(cfg["WIKIMEDIA_REQUIRE_CONFIRMED_EMAIL"]),
            required_rights=_names(cfg["WIKIMEDIA_REQUIRED_RIGHTS"], "WIKIMEDIA_REQUIRED_RIGHTS"),
            required_groups=_names(cfg["WIKIMEDIA_REQUIRED_GROUPS"], "WIKIMEDIA_REQUIRED_GROUPS"),
            dev_wiki=dev_wiki,
            oauth_version=oauth1.version,
            oauth1=oauth1.client(
                user_agent=full_user_agent(str(agent)),
                timeout=timeout,
                max_bytes=int(cfg["WIKIMEDIA_MAX_RESPONSE_BYTES"]),
            ),
        )
        app.extensions["wikimedia"] = state

        from .views import bp

        app.register_blueprint(bp, url_prefix=prefix_url or None)

        from . import current_user

        app.jinja_env.globals["current_user"] = current_user
        app.jinja_env.globals["logout_form"] = logout_form

        from .cli import cli

        app.cli.add_command(cli)


def logout_form(
    label: str = "Log out", class_: str = "wikimedia-logout", next: str | None = None
) -> Markup:
    """The complete logout form (POST with its CSRF field), for templates: ``{{ logout_form() }}``."""
    from .views import csrf_token

    action = url_for("wikimedia.logout")
    extra = ""
    if next:
        extra = f'<input type="hidden" name="next" value="{escape(next)}">'
    return Markup(  # noqa: S704 - every interpolated value is escaped
        f'<form method="post" action="{escape(action)}" class="{escape(class_)}">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf_token())}">{extra}'
        f'<button type="submit">{escape(label)}</button></form>'
    )


def current_state() -> WikimediaState:
    return get_state(current_app)
