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
``WIKIMEDIA_OAUTH1_CLIENT_ID`` / ``_SECRET``  with 2.0: the old 1.0a consumer, kept for its logins
``WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX``  True if the 1.0a consumer is "callback is prefix" (False: ``oob``)

``SECRET_KEY`` is required, and at least 32 bytes outside debug/testing. The rules (defaults,
types, what refuses to start) live in ``flask_wikimedia.settings``, shared with
``flask wikimedia check`` and the sample tool; ``init_app`` raises one ``ConfigurationProblems``
listing every problem.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, request, url_for
from markupsafe import Markup, escape

from . import settings
from .crypto import KeyNamer, Sealer
from .oauth import OAuthClient
from .oauth1 import OAuth1Client
from .outbound import full_user_agent
from .sessions import SESSION_NAMES, harden_sessions, read_logins_with_sessions, wait_for_replicas
from .store import LoginStore, MemoryLoginStore, RedisLoginStore
from .user import WikimediaUser

if TYPE_CHECKING:
    from .devwiki import DevWiki

log = logging.getLogger("flask_wikimedia")

DEV_MOUNT = "/_devwiki"

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
    try:
        state: WikimediaState = app.extensions["wikimedia"]
    except KeyError:
        raise RuntimeError(
            "Flask-Wikimedia is not initialised on this app: call Wikimedia(app) or "
            "wikimedia.init_app(app)."
        ) from None
    return state


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
        """Check the configuration (every problem at once, see ``flask_wikimedia.settings``),
        then register the login views, template globals and the ``flask wikimedia`` commands.

        :raises ConfigurationProblems: (a ``ConfigurationError``) listing each problem and its fix.
        """
        conf = settings.load(app)
        secret_key = conf.secret_key
        fallbacks = list(conf.fallbacks)

        dev_wiki = None
        wiki_url = conf.wiki_url
        client_id = conf.client_id
        client_secret = conf.client_secret
        if conf.dev_wiki:
            from werkzeug.middleware.dispatcher import DispatcherMiddleware

            from .devwiki import DEV_CLIENT_ID, DevWiki

            dev_wiki = DevWiki()
            app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
                app.wsgi_app, {DEV_MOUNT: dev_wiki.create_app()}
            )
            client_id = DEV_CLIENT_ID
            log.warning(
                "Flask-Wikimedia: the development wiki is mounted at %s: NOT a real login",
                DEV_MOUNT,
            )
        agent = conf.user_agent
        timeout = conf.timeout
        login_ttl = conf.login_ttl
        client = conf.redis
        store: LoginStore
        if client is not None:
            store = RedisLoginStore(
                client,
                conf.key_prefix,
                Sealer(secret_key, "login-record", fallbacks),
                login_ttl,
                KeyNamer(secret_key, "login"),
                conf.durability,
                session_namer=KeyNamer(secret_key, SESSION_NAMES),
            )
            # If sessions are on this Redis too, a login is read with its session (issue 12).
            read_logins_with_sessions(app, client, store.session_keys)
            # A login's or logout's session write waits for the same replicas.
            wait_for_replicas(app, conf.durability)
        else:  # debug/testing only: settings.load refuses this otherwise
            log.warning("Flask-Wikimedia: no Redis configured; keeping logins in this process")
            store = MemoryLoginStore(login_ttl)

        prefix_url = conf.url_prefix
        state = WikimediaState(
            ext=self,
            oauth=OAuthClient(
                client_id=str(client_id),
                client_secret=client_secret,
                scopes=conf.scopes,
                user_agent=full_user_agent(agent),
                timeout=timeout,
                max_bytes=conf.max_bytes,
            ),
            store=store,
            pending_sealer=Sealer(secret_key, "pending-login", fallbacks),
            wiki_url=wiki_url,
            configured_redirect_uri=conf.redirect_uri,
            profile_max_age=conf.profile_max_age,
            url_prefix=prefix_url,
            deny_blocked=conf.deny_blocked,
            require_confirmed_email=conf.require_confirmed_email,
            required_rights=conf.required_rights,
            required_groups=conf.required_groups,
            dev_wiki=dev_wiki,
            oauth_version=conf.oauth1.version,
            oauth1=conf.oauth1.client(
                user_agent=full_user_agent(agent), timeout=timeout, max_bytes=conf.max_bytes
            ),
        )
        app.extensions["wikimedia"] = state
        # Flask-Session's Redis interface, installed before or after us, gets sealed values,
        # digested key names and a 503 for Redis trouble (invariants 7 and 11).
        harden_sessions(app)

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
