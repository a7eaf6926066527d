"""One set of configuration rules: every ``WIKIMEDIA_*`` key (and ``SECRET_KEY``, the callback
URL's host rule, Redis) parsed and checked in one place, every problem reported at once.

``init_app`` (through :func:`load`), ``flask wikimedia check`` and the sample tool all use these
functions and these thresholds. A problem names the setting, says whose setting it is
(Flask-Wikimedia's, Flask's, or the application's own) and how to fix it.

Two levels:

* :func:`startup_problems`: what makes ``init_app`` refuse to start (fail closed: a missing or
  weak setting stops startup; debug and testing relax only what is safe to relax locally);
* :func:`advice`: what ``flask wikimedia check`` adds for a production deploy (the consumer key's
  shape, the User-Agent policy, the callback URL, the development wiki left on, no Redis).

Unknown ``WIKIMEDIA_*`` keys and ``FLASK_WIKIMEDIA_*`` environment variables are reported with a
"did you mean" (:func:`unknown_settings`): ``check`` lists them; at startup they are logged, and
added to the startup error when there is one (a misspelt key is the usual reason a required
one is "not set").

Why one module of this size: one set of rules in one place is the point (the issue that asked for
it found three copies that disagreed); splitting it would bring the copies back.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import Flask
from redis.cluster import RedisCluster

from .devwiki.models import DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET
from .errors import ConfigurationError
from .oauth1 import OAUTH_VERSIONS, OAuth1Settings
from .outbound import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, UnsafeURL, check_wiki_url, is_b64token
from .sessions import bounded_client, connect_redis
from .store import REDIS_TROUBLE, Durability, RedisClient

log = logging.getLogger("flask_wikimedia")

__all__ = [
    "DEFAULTS",
    "FLASK",
    "LIBRARY",
    "MIN_KEY_PREFIX_LENGTH",
    "MIN_SECRET_KEY_BYTES",
    "ConfigurationProblems",
    "Problem",
    "Settings",
    "advice",
    "load",
    "secret_key_problem",
    "startup_problems",
    "unknown_settings",
]

#: ``SECRET_KEY`` derives the keys that encrypt login records: at least this many bytes.
MIN_SECRET_KEY_BYTES = 32
#: A Redis key prefix on a shared Redis is a secret: at least this many characters.
MIN_KEY_PREFIX_LENGTH = 16

DEFAULT_WIKI_URL = "https://meta.wikimedia.org/w"
DEV_USER_AGENT = "Flask-Wikimedia-development/0 (local development; no contact)"
CONSUMER_REGISTRATION = (
    "https://meta.wikimedia.org/wiki/Special:OAuthConsumerRegistration/propose/oauth2"
)
OAUTH1_CONSUMER_REGISTRATION = (
    "https://meta.wikimedia.org/wiki/Special:OAuthConsumerRegistration/propose/oauth1a"
)
SECRET_KEY_COMMAND = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"  # noqa: S105

#: Who owns a setting, as the problems say it.
LIBRARY = "Flask-Wikimedia"
FLASK = "Flask"

#: Every key the library reads, with its default (the docstring of ``extension`` explains each).
DEFAULTS: dict[str, Any] = {
    "WIKIMEDIA_CLIENT_ID": None,
    "WIKIMEDIA_CLIENT_SECRET": None,
    "WIKIMEDIA_WIKI_URL": DEFAULT_WIKI_URL,
    "WIKIMEDIA_REDIRECT_URI": None,
    "WIKIMEDIA_SCOPES": None,
    "WIKIMEDIA_USER_AGENT": None,
    "WIKIMEDIA_REDIS": None,
    "WIKIMEDIA_KEY_PREFIX": None,
    "WIKIMEDIA_PROFILE_MAX_AGE": 300,
    "WIKIMEDIA_LOGIN_TTL": None,
    "WIKIMEDIA_REDIS_WAIT_REPLICAS": 0,
    "WIKIMEDIA_REDIS_WAIT_TIMEOUT": 100,
    "WIKIMEDIA_TIMEOUT": DEFAULT_TIMEOUT,
    "WIKIMEDIA_MAX_RESPONSE_BYTES": DEFAULT_MAX_BYTES,
    "WIKIMEDIA_DENY_BLOCKED": False,
    "WIKIMEDIA_REQUIRE_CONFIRMED_EMAIL": False,
    "WIKIMEDIA_REQUIRED_RIGHTS": (),
    "WIKIMEDIA_REQUIRED_GROUPS": (),
    "WIKIMEDIA_API_HOSTS": (),
    "WIKIMEDIA_APP_TOKEN": None,
    "WIKIMEDIA_URL_PREFIX": "/auth",
    "WIKIMEDIA_DEV_WIKI": False,
    "WIKIMEDIA_OAUTH_VERSION": "2.0",
    "WIKIMEDIA_OAUTH1_CLIENT_ID": None,
    "WIKIMEDIA_OAUTH1_CLIENT_SECRET": None,
    "WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX": False,
}

_AGENT = re.compile(r"^[^\s/]+(/\S+)? \(.*(@|https?://).*\)")
_CONSUMER_KEY = re.compile(r"[0-9a-f]{32}")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: What parsing a value can raise (a Redis URL or client that cannot be used, too).
_PARSE_ERRORS: tuple[type[Exception], ...] = (TypeError, ValueError, *REDIS_TROUBLE)
REDIS_KINDS = (
    "must be a redis.Redis client (Sentinel's master_for() makes one too), a "
    "redis.cluster.RedisCluster client, or a redis:// URL"
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: the setting, whose it is, what to do."""

    setting: str
    message: str
    owner: str = LIBRARY

    def __str__(self) -> str:
        # "[Flask] SECRET_KEY is too short ...": whose setting, which one, what to do.
        sep = "" if self.message.startswith(":") else " "
        return f"[{self.owner}] {self.setting}{sep}{self.message}"

    def as_dict(self) -> dict[str, str]:
        """For ``flask wikimedia check --json``."""
        return {"setting": self.setting, "owner": self.owner, "message": self.message}


class ConfigurationProblems(ConfigurationError):
    """Startup refused: ``problems`` lists every reason, each with its fix."""

    def __init__(self, problems: Iterable[Problem], header: str | None = None) -> None:
        self.problems = list(problems)
        header = header or (
            f"Flask-Wikimedia cannot start: {len(self.problems)} configuration problem(s)"
        )
        super().__init__(header + ":\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True)
class Settings:
    """The library's settings, parsed and checked (what ``init_app`` builds the state from)."""

    secret_key: str | bytes
    fallbacks: tuple[str | bytes, ...]
    dev_wiki: bool
    wiki_url: str | None  # None: the development wiki mounted in this app
    client_id: str | None  # None with the development wiki (it has its own)
    client_secret: str | None
    user_agent: str
    redirect_uri: str | None
    scopes: str | None
    redis: RedisClient | None
    key_prefix: str
    #: ``WAIT`` after login, refresh and logout writes (off unless WIKIMEDIA_REDIS_WAIT_REPLICAS).
    durability: Durability
    profile_max_age: float
    login_ttl: int
    timeout: tuple[float, float]
    max_bytes: int
    deny_blocked: bool
    require_confirmed_email: bool
    required_rights: frozenset[str]
    required_groups: frozenset[str]
    url_prefix: str
    api_hosts: frozenset[str]
    app_token: str | None
    #: The OAuth version of new logins and the OAuth 1.0a consumer, if any.
    oauth1: OAuth1Settings


def relaxed(app: Flask) -> bool:
    """Debug or testing: the person running the app asked for a local, relaxed mode."""
    return bool(app.debug or app.testing)


def apply_defaults(app: Flask) -> None:
    """Fill in every library key the app did not set."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)


def secret_key_problem(
    secret: object, *, relaxed: bool, setting: str = "SECRET_KEY", fix: str | None = None
) -> Problem | None:
    """The one rule for ``SECRET_KEY``: set, and outside debug/testing at least
    :data:`MIN_SECRET_KEY_BYTES` bytes. ``setting``/``fix`` let an app name its own source
    (``FLASK_SECRET_KEY`` and how to set it on its platform)."""
    fix = fix or f"set it to a long random value, e.g. the output of {SECRET_KEY_COMMAND}"
    if not secret:
        return Problem(
            setting,
            "is not set. Flask-Wikimedia derives the keys that encrypt login records from it: "
            + fix
            + ".",
            FLASK,
        )
    raw = secret.encode() if isinstance(secret, str) else secret
    size = len(raw) if isinstance(raw, bytes | bytearray) else len(str(secret))
    if not relaxed and size < MIN_SECRET_KEY_BYTES:
        return Problem(
            setting,
            f"is too short ({size} bytes; at least {MIN_SECRET_KEY_BYTES} outside debug and "
            "testing): it signs sessions and derives the keys that encrypt login records, so a "
            "short one can be guessed. " + fix[:1].upper() + fix[1:] + ".",
            FLASK,
        )
    return None


def _scopes(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, Iterable):
        return " ".join(str(v) for v in value)
    raise TypeError


def _names(value: object) -> frozenset[str]:
    if not value:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.replace(",", " ").split())
    if isinstance(value, Iterable):
        return frozenset(str(v) for v in value)
    raise TypeError


def _timeout(value: object) -> tuple[float, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise TypeError
    connect, read = float(value[0]), float(value[1])
    if not (0 < connect < 3600 and 0 < read < 3600):
        raise ValueError
    return connect, read


def _redis(value: object) -> RedisClient | None:
    if value is None or value == "":
        return None
    if isinstance(value, redis.Redis | RedisCluster):
        # A client built as Flask-Session's docs show retries for many seconds on a hung
        # Redis, and one without socket_timeout waits forever: use a fast-failing copy.
        # (A Sentinel-managed client, from Sentinel.master_for, is a redis.Redis too.)
        return bounded_client(value)
    if isinstance(value, str):
        # Short timeouts, no retry storms: Redis trouble must be a fast 503 (invariant 7).
        return connect_redis(value)
    raise TypeError


class _Collector:
    """Parses values, turning each failure into a problem instead of stopping at the first."""

    def __init__(self, app: Flask) -> None:
        self.cfg = app.config
        self.found: list[Problem] = []

    def add(self, setting: str, message: str, owner: str = LIBRARY) -> None:
        self.found.append(Problem(setting, message, owner))

    def parse(self, key: str, parser: Any, message: str) -> Any:
        try:
            return parser(self.cfg[key])
        except _PARSE_ERRORS:
            self.add(key, f"{message} (it is {self.cfg[key]!r}).")
            return parser(DEFAULTS[key])


def _parse(app: Flask) -> tuple[Settings | None, list[Problem]]:
    """Parse every key; return the settings (None if unusable) and every startup problem."""
    apply_defaults(app)
    cfg = app.config
    easy = relaxed(app)
    c = _Collector(app)

    secret = app.secret_key
    problem = secret_key_problem(secret, relaxed=easy)
    if problem is not None:
        c.found.append(problem)

    dev_wiki = bool(cfg["WIKIMEDIA_DEV_WIKI"])
    oauth1 = _oauth1(c, dev_wiki=dev_wiki)
    wiki_url: str | None = str(cfg["WIKIMEDIA_WIKI_URL"] or "").rstrip("/") or None
    client_id = cfg["WIKIMEDIA_CLIENT_ID"]
    client_secret = cfg["WIKIMEDIA_CLIENT_SECRET"] or None
    if dev_wiki:
        if not easy:
            c.add(
                "WIKIMEDIA_DEV_WIKI",
                "is on outside debug and testing: the development wiki lets anyone log in as "
                "anyone. Turn it off, or run with debug on (flask run --debug, FLASK_DEBUG=1) "
                "or testing.",
            )
        wiki_url, client_id, client_secret = None, None, None
    else:
        if not client_id and oauth1.version != "1.0a":  # 1.0a: _oauth1 says what to set
            c.add(
                "WIKIMEDIA_CLIENT_ID",
                "is not set. Set it to your OAuth 2.0 consumer key (register one at "
                f"{CONSUMER_REGISTRATION}), or set WIKIMEDIA_DEV_WIKI = True with debug or "
                "testing on to try things locally against the development wiki.",
            )
        if wiki_url is None:
            c.add("WIKIMEDIA_WIKI_URL", f"is empty: set it to the wiki, e.g. {DEFAULT_WIKI_URL}.")
        else:
            try:  # read by the parser requests uses, so the check sees where tokens will go
                check_wiki_url(wiki_url, allow_http=easy)
            except UnsafeURL as exc:
                c.add("WIKIMEDIA_WIKI_URL", str(exc).removeprefix("WIKIMEDIA_WIKI_URL "))

    app_token = cfg.get("WIKIMEDIA_APP_TOKEN")
    if app_token and not is_b64token(app_token):
        c.add(
            "WIKIMEDIA_APP_TOKEN",
            "is not a Bearer token (RFC 6750: letters, digits and -._~+/ then any '='): paste "
            "the access token exactly, without 'Bearer '.",
        )

    agent = cfg["WIKIMEDIA_USER_AGENT"]
    if not agent:
        if not easy:
            c.add(
                "WIKIMEDIA_USER_AGENT",
                "is not set. Set it to e.g. 'MyTool/1.0 (https://mytool.toolforge.org; "
                "you@example.org)': Wikimedia's User-Agent policy requires a descriptive agent "
                "with contact details, and blocks generic ones.",
            )
        agent = DEV_USER_AGENT
    if (
        not easy
        and not cfg["WIKIMEDIA_REDIRECT_URI"]
        and not cfg.get("SERVER_NAME")
        and not cfg.get("TRUSTED_HOSTS")
    ):
        c.add(
            "WIKIMEDIA_REDIRECT_URI",
            "is not set, nor Flask's SERVER_NAME or TRUSTED_HOSTS: the callback URL would be "
            "derived from the request's Host header. Set WIKIMEDIA_REDIRECT_URI to the callback "
            "URL you registered (e.g. 'https://mytool.toolforge.org/auth/callback').",
        )

    scopes = c.parse(
        "WIKIMEDIA_SCOPES", _scopes, "must be a list of grants or a space-separated string"
    )
    rights = c.parse("WIKIMEDIA_REQUIRED_RIGHTS", _names, "must be a list of rights")
    groups = c.parse("WIKIMEDIA_REQUIRED_GROUPS", _names, "must be a list of groups")
    timeout = c.parse(
        "WIKIMEDIA_TIMEOUT", _timeout, "must be seconds, or a (connect, read) pair of seconds"
    )
    max_bytes = c.parse("WIKIMEDIA_MAX_RESPONSE_BYTES", int, "must be a number of bytes")
    max_age = c.parse("WIKIMEDIA_PROFILE_MAX_AGE", float, "must be a number of seconds")
    login_ttl = cfg["WIKIMEDIA_LOGIN_TTL"] or int(app.permanent_session_lifetime.total_seconds())
    try:
        login_ttl = int(login_ttl)
    except (TypeError, ValueError):
        c.add("WIKIMEDIA_LOGIN_TTL", f"must be a number of seconds (it is {login_ttl!r}).")
        login_ttl = 3600
    if isinstance(cfg["WIKIMEDIA_API_HOSTS"], str):
        c.add(
            "WIKIMEDIA_API_HOSTS",
            f"must be a list of host names, not a string ({cfg['WIKIMEDIA_API_HOSTS']!r}): "
            "write ['example.org'].",
        )

    client = c.parse("WIKIMEDIA_REDIS", _redis, REDIS_KINDS) or _redis_or_none(c, "SESSION_REDIS")
    if client is None and not easy:
        c.add(
            "WIKIMEDIA_REDIS",
            "is not set (nor Flask-Session's SESSION_REDIS): logins are kept server-side in "
            "Redis so every worker shares them. Set it to a redis:// URL or a client.",
        )
    prefix = cfg["WIKIMEDIA_KEY_PREFIX"]
    if prefix is None:
        prefix = str(cfg.get("SESSION_KEY_PREFIX") or "") + "wikimedia:"
    durability = _durability(c, client)

    if c.found:
        return None, c.found
    return (
        Settings(
            secret_key=secret or b"",
            fallbacks=tuple(cfg.get("SECRET_KEY_FALLBACKS") or ()),
            dev_wiki=dev_wiki,
            wiki_url=wiki_url,
            client_id=str(client_id) if client_id else None,
            client_secret=client_secret,
            user_agent=str(agent),
            redirect_uri=cfg["WIKIMEDIA_REDIRECT_URI"] or None,
            scopes=scopes,
            redis=client,
            key_prefix=str(prefix),
            durability=durability,
            profile_max_age=max_age,
            login_ttl=login_ttl,
            timeout=timeout,
            max_bytes=max_bytes,
            deny_blocked=bool(cfg["WIKIMEDIA_DENY_BLOCKED"]),
            require_confirmed_email=bool(cfg["WIKIMEDIA_REQUIRE_CONFIRMED_EMAIL"]),
            required_rights=rights,
            required_groups=groups,
            url_prefix=str(cfg["WIKIMEDIA_URL_PREFIX"]).rstrip("/"),
            api_hosts=frozenset(str(h).lower() for h in cfg["WIKIMEDIA_API_HOSTS"] or ()),
            app_token=str(app_token) if app_token else None,
            oauth1=oauth1,
        ),
        [],
    )


def _oauth1(c: _Collector, *, dev_wiki: bool) -> OAuth1Settings:
    """The OAuth version settings: each inconsistency is a problem saying what to set.

    ``WIKIMEDIA_OAUTH_VERSION = "1.0a"``: ``WIKIMEDIA_CLIENT_ID``/``_SECRET`` are the 1.0a
    consumer's key and secret. ``"2.0"`` (default) with ``WIKIMEDIA_OAUTH1_CLIENT_ID``/``_SECRET``:
    the 2.0 consumer takes new logins and the 1.0a consumer keeps serving the logins made with
    it (a migration). The development wiki has a built-in 1.0a consumer.
    """
    cfg = c.cfg
    # str(): Flask's from_prefixed_env reads "2.0" as the float 2.0.
    version = str(cfg.get("WIKIMEDIA_OAUTH_VERSION") or "2.0")
    if version not in OAUTH_VERSIONS:
        c.add(
            "WIKIMEDIA_OAUTH_VERSION", f"is {version!r}: set it to '2.0' (the default) or '1.0a'."
        )
        return OAuth1Settings("2.0")
    prefix = bool(cfg.get("WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX", False))
    if version == "1.0a":
        if cfg.get("WIKIMEDIA_SCOPES"):
            c.add(
                "WIKIMEDIA_SCOPES",
                "does not apply to OAuth 1.0a: a 1.0a consumer's grants are fixed when it is "
                "registered. Remove WIKIMEDIA_SCOPES.",
            )
        if cfg.get("WIKIMEDIA_OAUTH1_CLIENT_ID") or cfg.get("WIKIMEDIA_OAUTH1_CLIENT_SECRET"):
            c.add(
                "WIKIMEDIA_OAUTH1_CLIENT_ID",
                "and _SECRET are for keeping a 1.0a consumer's logins while "
                "WIKIMEDIA_OAUTH_VERSION is '2.0'. With '1.0a', put the consumer key and secret "
                "in WIKIMEDIA_CLIENT_ID and WIKIMEDIA_CLIENT_SECRET.",
            )
        key_name, secret_name = "WIKIMEDIA_CLIENT_ID", "WIKIMEDIA_CLIENT_SECRET"
    else:
        key_name, secret_name = "WIKIMEDIA_OAUTH1_CLIENT_ID", "WIKIMEDIA_OAUTH1_CLIENT_SECRET"
    key, secret = cfg.get(key_name), cfg.get(secret_name)
    if dev_wiki:
        # The development wiki's built-in consumer (public secret: it is not a real login).
        return OAuth1Settings(version, DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET, True)
    if version == "2.0" and not key and not secret:
        return OAuth1Settings(version)
    if not key:
        c.add(
            key_name,
            f"is not set. Set {key_name} and {secret_name} to your OAuth 1.0a consumer's key "
            f"and secret (register one at {OAUTH1_CONSUMER_REGISTRATION}).",
        )
    if not secret:
        c.add(
            secret_name,
            f"is not set. Set {key_name} and {secret_name}: an OAuth 1.0a consumer always has a "
            "secret (1.0a consumers are confidential), and every request is signed with it.",
        )
    if not key or not secret:
        return OAuth1Settings(version)
    return OAuth1Settings(version, str(key), str(secret), prefix)


def _redis_or_none(c: _Collector, key: str) -> RedisClient | None:
    try:
        return _redis(c.cfg.get(key))
    except _PARSE_ERRORS:
        c.add(key, REDIS_KINDS + ".", "Flask-Session")
        return None


def _durability(c: _Collector, client: RedisClient | None) -> Durability:
    """``WIKIMEDIA_REDIS_WAIT_REPLICAS`` and ``_TIMEOUT`` (see :class:`~.store.Durability`)."""
    numbers = []
    for key in ("WIKIMEDIA_REDIS_WAIT_REPLICAS", "WIKIMEDIA_REDIS_WAIT_TIMEOUT"):
        value = c.cfg[key]
        try:
            number = int(value if value not in (None, "") else DEFAULTS[key])
            if number < 0 or isinstance(value, bool | float):
                raise ValueError
        except (TypeError, ValueError):
            what = "replicas" if key.endswith("REPLICAS") else "milliseconds"
            c.add(key, f"must be a whole number of {what}, 0 or more (it is {value!r}).")
            number = DEFAULTS[key]
        numbers.append(number)
    durability = Durability(numbers[0], numbers[1] or DEFAULTS["WIKIMEDIA_REDIS_WAIT_TIMEOUT"])
    if durability.replicas > 0 and isinstance(client, RedisCluster):
        c.add(
            "WIKIMEDIA_REDIS_WAIT_REPLICAS",
            "is not available on a Redis Cluster (WAIT only covers one node's writes): remove "
            "it, or use one Redis or a Sentinel group.",
        )
    return durability


def startup_problems(app: Flask) -> list[Problem]:
    """Every problem that makes ``init_app`` refuse to start (empty: it starts)."""
    return _parse(app)[1]


def load(app: Flask) -> Settings:
    """Apply defaults, parse and check; raise :class:`ConfigurationProblems` listing every
    problem (with misspelt keys, the usual cause of a "not set") if the app must not start."""
    settings, found = _parse(app)
    unknown = unknown_settings(app.config)
    if settings is None:
        raise ConfigurationProblems([*found, *unknown])
    for problem in unknown:
        log.warning("Flask-Wikimedia: %s", problem)
    return settings


def advice(app: Flask) -> list[Problem]:
    """What ``flask wikimedia check`` reports besides the startup problems: the rules a
    production deploy should follow, whether or not debug/testing relaxed them."""
    cfg = app.config
    found: list[Problem] = []
    problem = secret_key_problem(app.secret_key, relaxed=False)
    if problem is not None:
        found.append(problem)
    if cfg.get("WIKIMEDIA_DEV_WIKI"):
        found.append(
            Problem(
                "WIKIMEDIA_DEV_WIKI",
                "is on: this is the development wiki, a fake wiki where anyone can log in as "
                "anyone, not a real login. Turn it off and set WIKIMEDIA_CLIENT_ID.",
            )
        )
    else:
        client_id = str(cfg.get("WIKIMEDIA_CLIENT_ID") or "")
        # 1.0a consumer keys have the same shape as 2.0 ones.
        version = "1.0a" if str(cfg.get("WIKIMEDIA_OAUTH_VERSION")) == "1.0a" else "2.0"
        if not _CONSUMER_KEY.fullmatch(client_id):
            found.append(
                Problem(
                    "WIKIMEDIA_CLIENT_ID",
                    f"{client_id!r} does not look like an OAuth {version} consumer key (32 "
                    "hexadecimal characters, shown when the consumer was registered).",
                )
            )
    agent = cfg.get("WIKIMEDIA_USER_AGENT") or ""
    if not _AGENT.match(agent):
        found.append(
            Problem(
                "WIKIMEDIA_USER_AGENT",
                "should look like 'ToolName/1.0 (https://tool.url; you@example.org)' "
                "(Wikimedia's User-Agent policy: a name, then contact details in brackets); it "
                "is " + (repr(agent) if agent else "not set") + ".",
            )
        )
    found.extend(_redirect_advice(app))
    return found


def _redirect_advice(app: Flask) -> list[Problem]:
    redirect = app.config.get("WIKIMEDIA_REDIRECT_URI")
    if not redirect:
        if relaxed(app) or app.config.get("SERVER_NAME"):
            return []
        return [
            Problem(
                "WIKIMEDIA_REDIRECT_URI",
                "is not set: set it to your registered callback URL.",
            )
        ]
    found = []
    parts = urlsplit(str(redirect))
    if parts.scheme != "https" and parts.hostname not in _LOCAL_HOSTS:
        found.append(
            Problem("WIKIMEDIA_REDIRECT_URI", f"{redirect!r} is not https: use the https URL.")
        )
    callback = str(app.config.get("WIKIMEDIA_URL_PREFIX") or "").rstrip("/") + "/callback"
    if not parts.path.endswith(callback):
        found.append(
            Problem(
                "WIKIMEDIA_REDIRECT_URI",
                f"{redirect!r} does not end with the callback route ({callback}): register "
                f"and set the URL that ends in {callback}.",
            )
        )
    return found


def unknown_settings(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> list[Problem]:
    """``WIKIMEDIA_*`` config keys and ``FLASK_WIKIMEDIA_*`` environment variables that no
    version of Flask-Wikimedia reads, each with the closest known name."""
    environ = os.environ if environ is None else environ
    found = []
    for key in sorted(k for k in config if isinstance(k, str) and k.startswith("WIKIMEDIA_")):
        # A key that came from FLASK_<key> (from_prefixed_env) is reported once, by the name
        # that was actually set.
        if key not in DEFAULTS and "FLASK_" + key not in environ:
            found.append(Problem(key, _did_you_mean(key, "config key")))
    for var in sorted(k for k in environ if k.startswith("FLASK_WIKIMEDIA_")):
        if var.removeprefix("FLASK_") not in DEFAULTS:
            found.append(Problem(var, _did_you_mean(var, "environment variable", "FLASK_")))
    return found


def _did_you_mean(name: str, kind: str, prefix: str = "") -> str:
    known = [prefix + key for key in DEFAULTS]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]}?" if close else ""
    return f"is not a Flask-Wikimedia {kind}, so it is ignored.{hint}"
