"""The ``Wikimedia`` extension: configuration, validation and registration.

Config keys (set them before ``init_app``):

``WIKIMEDIA_CLIENT_ID``            the OAuth 2.0 consumer key (required outside debug/testing)
``WIKIMEDIA_CLIENT_SECRET``        its secret; absent for a non-confidential client
``WIKIMEDIA_WIKI_URL``             where ``rest.php`` and ``api.php`` live (``https://meta.wikimedia.org/w``)
``WIKIMEDIA_REDIRECT_URI``         the registered callback URL (default: external URL of ``wikimedia.callback``)
``WIKIMEDIA_SCOPES``               grants to ask for (list or space-separated); default: all the consumer's
``WIKIMEDIA_USER_AGENT``           ``ToolName/1.0 (https://tool.example; you@example.org)`` (required outside debug/testing)
``WIKIMEDIA_REDIS``                a ``redis.Redis`` (Sentinel's ``master_for`` too), a ``RedisCluster`` or a URL;
                                   falls back to Flask-Session's ``SESSION_REDIS``
``WIKIMEDIA_KEY_PREFIX``           Redis key prefix for login records (default ``SESSION_KEY_PREFIX`` + ``wikimedia:``)
``WIKIMEDIA_REDIS_WAIT_REPLICAS``  replicas a login, refresh or logout waits for (``WAIT``; 0 = off)
``WIKIMEDIA_REDIS_WAIT_TIMEOUT``   how long it waits for them, milliseconds (100)
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
``WIKIMEDIA_OAUTH1_CLIENT_ID`` / ``WIKIMEDIA_OAUTH1_CLIENT_SECRET``  with 2.0: the old 1.0a consumer, kept for its logins
``WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX``  True if the 1.0a consumer is "callback is prefix" (False: ``oob``)

``SECRET_KEY`` is required, and at least 32 bytes outside debug/testing. The rules (defaults,
types, what refuses to start) live in ``flask_wikimedia.settings``, shared with
``flask wikimedia check`` and the sample tool; ``init_app`` raises one ``ConfigurationProblems``
listing every problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, url_for
from markupsafe import Markup, escape
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from . import settings
from .cli import cli
from .crypto import KeyNamer, Sealer
from .devwiki import DEV_CLIENT_ID, DevWiki
from .login import current_user
from .oauth import OAuthClient
from .outbound import full_user_agent
from .sessions import SESSION_NAMES, harden_sessions, read_logins_with_sessions, wait_for_replicas
from .state import DEV_MOUNT, EXTENSION_KEY, AppTokenCache, LoginCheck, WikimediaState
from .store import LoginStore, MemoryLoginStore, RedisLoginStore
from .views import bp, csrf_token

__all__ = ["Wikimedia", "logout_form"]

log = logging.getLogger("flask_wikimedia")


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
        """Check the configuration, then register the login views, template globals and the
        ``flask wikimedia`` commands. Reads every key listed in this module's docstring (their
        defaults: ``flask_wikimedia.settings.DEFAULTS``), plus ``SECRET_KEY``,
        ``SECRET_KEY_FALLBACKS`` and Flask-Session's ``SESSION_REDIS``/``SESSION_KEY_PREFIX``.

        :raises ConfigurationProblems: (a ``ConfigurationError``) listing each problem and its fix.
        :raises RuntimeError: if Flask-Wikimedia is already registered on ``app``.
        """
        if EXTENSION_KEY in app.extensions:
            # A second registration would mount the dev wiki twice and then fail on the
            # blueprint's name: say what happened instead.
            raise RuntimeError(
                "Flask-Wikimedia is already initialised on this app: call Wikimedia(app) or "
                "wikimedia.init_app(app) once per app."
            )
        conf = settings.load(app)
        state = self._build_state(app, conf)
        app.extensions[EXTENSION_KEY] = state
        # Flask-Session's Redis interface, installed before or after us, gets sealed values,
        # digested key names and a 503 for Redis trouble (invariants 7 and 11).
        harden_sessions(app)
        app.register_blueprint(bp, url_prefix=conf.url_prefix or None)
        app.jinja_env.globals["current_user"] = current_user
        app.jinja_env.globals["logout_form"] = logout_form
        app.cli.add_command(cli)

    def _build_state(self, app: Flask, conf: settings.Settings) -> WikimediaState:
        """The per-app state from parsed settings (mounts the development wiki if asked)."""
        client_id = conf.client_id
        dev_wiki = None
        if conf.dev_wiki:
            dev_wiki = DevWiki()
            app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
                app.wsgi_app, {DEV_MOUNT: dev_wiki.create_app()}
            )
            client_id = DEV_CLIENT_ID
            log.warning(
                "Flask-Wikimedia: the development wiki is mounted at %s: NOT a real login",
                DEV_MOUNT,
            )
        agent = full_user_agent(conf.user_agent)
        return WikimediaState(
            ext=self,
            oauth=OAuthClient(
                client_id=str(client_id),
                client_secret=conf.client_secret,
                scopes=conf.scopes,
                user_agent=agent,
                timeout=conf.timeout,
                max_bytes=conf.max_bytes,
            ),
            store=_login_store(app, conf),
            pending_sealer=Sealer(conf.secret_key, "pending-login", list(conf.fallbacks)),
            wiki_url=conf.wiki_url,
            configured_redirect_uri=conf.redirect_uri,
            profile_max_age=conf.profile_max_age,
            url_prefix=conf.url_prefix,
            deny_blocked=conf.deny_blocked,
            require_confirmed_email=conf.require_confirmed_email,
            required_rights=conf.required_rights,
            required_groups=conf.required_groups,
            dev_wiki=dev_wiki,
            oauth_version=conf.oauth1.version,
            oauth1=conf.oauth1.client(
                user_agent=agent, timeout=conf.timeout, max_bytes=conf.max_bytes
            ),
            api_hosts=conf.api_hosts,
            app_token=conf.app_token,
            app_token_cache=AppTokenCache(),
        )


def _login_store(app: Flask, conf: settings.Settings) -> LoginStore:
    """Login records in Redis; in this process only for debug/testing without Redis
    (``settings.load`` refuses that otherwise)."""
    if conf.redis is None:
        log.warning("Flask-Wikimedia: no Redis configured; keeping logins in this process")
        return MemoryLoginStore(conf.login_ttl)
    store = RedisLoginStore(
        conf.redis,
        conf.key_prefix,
        Sealer(conf.secret_key, "login-record", list(conf.fallbacks)),
        conf.login_ttl,
        KeyNamer(conf.secret_key, "login"),
        conf.durability,
        session_namer=KeyNamer(conf.secret_key, SESSION_NAMES),
    )
    # If sessions are on this Redis too, a login is read with its session (issue 12).
    read_logins_with_sessions(app, conf.redis, store.session_keys)
    # A login's or logout's session write waits for the same replicas.
    wait_for_replicas(app, conf.durability)
    return store


def logout_form(
    label: str = "Log out", class_: str = "wikimedia-logout", next: str | None = None
) -> Markup:
    """The complete logout form (POST with its CSRF field), for templates: ``{{ logout_form() }}``."""
    action = url_for("wikimedia.logout")
    extra = ""
    if next:
        extra = f'<input type="hidden" name="next" value="{escape(next)}">'
    return Markup(  # noqa: S704 - every interpolated value is escaped
        f'<form method="post" action="{escape(action)}" class="{escape(class_)}">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf_token())}">{extra}'
        f'<button type="submit">{escape(label)}</button></form>'
    )
