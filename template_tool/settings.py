"""Where the tool's settings come from, and the rules that keep a deployment safe.

Sources, later ones win:

1. the defaults below;
2. a private YAML file of upper-case keys: the path in ``$TOOL_CONFIG``, or ``~/config.yaml`` on
   Toolforge when it exists. It is refused if its group or others may read it (``chmod 600``);
3. environment variables: ``FLASK_*`` through ``app.config.from_prefixed_env()``
   (``FLASK_SECRET_KEY``, ``FLASK_WIKIMEDIA_CLIENT_ID``, ...), plus ``REDIS_URL`` and
   ``REDIS_KEY_PREFIX``. Toolforge sets them with ``toolforge envvars create``;
4. ``test_config`` given to ``create_app``.

Three ways to run, decided once at startup:

* **Toolforge**, when ``TOOLFORGE`` is ``1``/``true``, or (``TOOLFORGE`` unset) when
  ``TOOL_DATA_DIR`` is set or ``/etc/wmcs-project`` exists. ``TOOLFORGE=0`` turns detection off.
  A missing or weak ``SECRET_KEY``, ``WIKIMEDIA_CLIENT_ID`` or ``REDIS_KEY_PREFIX`` is a startup
  error saying how to set it; sessions live in the shared Redis; cookies are always ``Secure``.
* **Local development**, only when the person running the tool asks for it: debug mode
  (``make run``, ``flask --app app run --debug``, ``FLASK_DEBUG=1``) or testing without a client
  id, or ``FLASK_WIKIMEDIA_DEV_WIKI=true``. The tool runs against the development wiki mounted
  at ``/_devwiki``, with a per-process secret key and Flask's cookie session, so ``make run``
  works on a fresh clone. It is never inferred from a missing setting: a production start
  without a client id is refused (the development wiki lets anyone log in as anyone).
* **Anywhere else** with a client id: like Toolforge without the Toolforge defaults (no
  ``REDIS_URL`` default; a generated secret key only in debug mode).

Every rule that the library also has (the secret key's length, the key prefix's length) comes
from ``flask_wikimedia.settings``, and every problem is reported at once, as a
``ConfigurationProblems`` error that ``flask wikimedia check`` prints as its own output.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path, PurePath
from typing import IO, Any

import yaml
from flask import Config, Flask

from flask_wikimedia.settings import (
    FLASK,
    LIBRARY,
    MIN_KEY_PREFIX_LENGTH,
    ConfigurationProblems,
    Problem,
    secret_key_problem,
    unknown_settings,
)

log = logging.getLogger("template_tool")

TOOLFORGE_REDIS_URL = "redis://redis.svc.tools.eqiad1.wikimedia.cloud:6379/0"
DEFAULT_TOOL_NAME = "template-tool"
#: Whose setting a problem is about, when it is the tool's own (not Flask's or the library's).
TOOL = "sample tool"

#: Settings that are always strings. ``from_prefixed_env`` JSON-parses values, so a hex consumer
#: key that happens to read as a number (``1234e5...``) would otherwise arrive as a float.
STRING_KEYS = (
    "SECRET_KEY",
    "WIKIMEDIA_CLIENT_ID",
    "WIKIMEDIA_CLIENT_SECRET",
    "WIKIMEDIA_REDIRECT_URI",
    "WIKIMEDIA_USER_AGENT",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "TOOL_NAME",
    "TOOL_TITLE",
    "TOOL_CONTACT",
    "TOOL_SOURCE_URL",
)

DEFAULTS: dict[str, Any] = {
    "TOOL_TITLE": "Flask-Wikimedia template tool",
    "TOOL_CONTACT": None,
    "TOOL_SOURCE_URL": None,
    "REDIS_URL": None,
    "REDIS_KEY_PREFIX": None,
    # Sessions: an idle week logs you out; every request that uses the session extends it.
    "PERMANENT_SESSION_LIFETIME": timedelta(days=7),
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",  # Strict would drop the cookie on the wiki's redirect back
    # Flask-WTF: tokens last as long as the session, so a tab left open still logs out.
    "WTF_CSRF_TIME_LIMIT": None,
}


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def on_toolforge(environ: Mapping[str, str] = os.environ) -> bool:
    """The Toolforge detection rule (see the module docstring)."""
    flag = environ.get("TOOLFORGE", "").strip()
    if flag:
        return _truthy(flag)
    return bool(environ.get("TOOL_DATA_DIR")) or Path("/etc/wmcs-project").exists()


def toolforge_tool_name(environ: Mapping[str, str] = os.environ) -> str | None:
    """The tool's name from the Toolforge account (``/data/project/<name>``, ``tools.<name>``)."""
    data_dir = environ.get("TOOL_DATA_DIR")
    if data_dir:
        return PurePath(data_dir).name or None
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = environ.get("USER", "")
    if user.startswith("tools."):
        return user.removeprefix("tools.") or None
    return None


def load_private_yaml(file: IO[str]) -> dict[str, Any]:
    """Read a YAML config file, refusing one that others on the host could read."""
    mode = os.fstat(file.fileno()).st_mode
    if mode & 0o077:
        _refuse(
            "TOOL_CONFIG",
            f": {file.name} can be read by other users (mode {mode & 0o777:o}): it holds "
            f"secrets. Run: chmod 600 {file.name}",
        )
    data = yaml.safe_load(file)
    if data is None:
        return {}
    if not isinstance(data, dict):
        _refuse("TOOL_CONFIG", f": {file.name} must be a mapping of settings (KEY: value)")
    return data


def _refuse(setting: str, message: str) -> None:
    raise ConfigurationProblems([Problem(setting, message, TOOL)], header=STARTUP_HEADER)


STARTUP_HEADER = "The tool cannot start"


def _config_file(environ: Mapping[str, str], toolforge: bool) -> tuple[str, bool] | None:
    """The config file to read and whether it must exist."""
    path = environ.get("TOOL_CONFIG")
    if path:
        return path, True
    if toolforge:
        return os.path.expanduser("~/config.yaml"), False
    return None


def load(app: Flask, test_config: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config`` from every source and apply the rules; RuntimeError if unsafe."""
    environ = os.environ
    cfg = app.config
    toolforge = on_toolforge(environ)
    cfg.update(DEFAULTS)
    explicit: set[str] = set()

    found = _config_file(environ, toolforge)
    if found is not None:
        path, required = found
        try:
            with open(path, encoding="utf-8") as file:
                data = load_private_yaml(file)
        except FileNotFoundError:
            if required:
                _refuse("TOOL_CONFIG", f"names {path}, which does not exist")
            data = {}
        cfg.from_mapping(data)
        explicit |= {key for key in data if isinstance(key, str) and key.isupper()}

    env_keys = {k.removeprefix("FLASK_") for k in environ if k.startswith("FLASK_")}
    cfg.from_prefixed_env()
    for key in STRING_KEYS:
        raw = environ.get(f"FLASK_{key}")
        if raw is not None:
            cfg[key] = raw
    for key in ("REDIS_URL", "REDIS_KEY_PREFIX"):
        if environ.get(key):
            cfg[key] = environ[key]
            env_keys.add(key)
    explicit |= env_keys

    if test_config is not None:
        cfg.from_mapping(test_config)
        explicit |= set(test_config)

    cfg["TOOLFORGE"] = toolforge
    if toolforge:
        _toolforge_rules(cfg, explicit, environ)
    else:
        _local_rules(cfg)
    _redis_keys(cfg, explicit)
    _user_agent(cfg, toolforge)


def _envvar_hint(name: str, value_command: str) -> str:
    return f"toolforge envvars create {name} \"$(python3 -c '{value_command}')\""


def _raise_if(problems: list[Problem], cfg: Config, header: str) -> None:
    """One error listing every problem, and any misspelt setting that may explain one."""
    if problems:
        raise ConfigurationProblems([*problems, *unknown_settings(cfg)], header=header)


def _toolforge_rules(cfg: Config, explicit: set[str], environ: Mapping[str, str]) -> None:
    problems: list[Problem] = []
    secret_problem = secret_key_problem(
        cfg.get("SECRET_KEY"),
        relaxed=False,
        setting="FLASK_SECRET_KEY",
        fix="set it with:\n    "
        + _envvar_hint("FLASK_SECRET_KEY", "import secrets; print(secrets.token_urlsafe(48))"),
    )
    if secret_problem is not None:
        problems.append(secret_problem)
    if not cfg.get("WIKIMEDIA_CLIENT_ID"):
        problems.append(
            Problem(
                "FLASK_WIKIMEDIA_CLIENT_ID",
                "is not set. Register an OAuth 2.0 consumer at "
                "https://meta.wikimedia.org/wiki/Special:OAuthConsumerRegistration/propose/oauth2 "
                "(see docs/deploy.md), then:\n"
                "    toolforge envvars create FLASK_WIKIMEDIA_CLIENT_ID\n"
                "    toolforge envvars create FLASK_WIKIMEDIA_CLIENT_SECRET\n"
                "(each prompts for the value, which keeps it out of your shell history)",
                LIBRARY,
            )
        )
    prefix = cfg.get("REDIS_KEY_PREFIX")
    if not prefix or len(str(prefix)) < MIN_KEY_PREFIX_LENGTH:
        problems.append(
            Problem(
                "REDIS_KEY_PREFIX",
                f"is {'too short' if prefix else 'not set'} (at least {MIN_KEY_PREFIX_LENGTH} "
                "characters). Toolforge's Redis is shared by every tool and has no access "
                "control: a secret random prefix is what keeps other tools from reading or "
                "planting your sessions. Set it with:\n    "
                + _envvar_hint("REDIS_KEY_PREFIX", "import secrets; print(secrets.token_hex(16))"),
                TOOL,
            )
        )
    if cfg.get("WIKIMEDIA_DEV_WIKI"):
        problems.append(
            Problem(
                "FLASK_WIKIMEDIA_DEV_WIKI",
                "is on: the development wiki lets anyone log in as anyone. Remove it.",
                LIBRARY,
            )
        )
    if cfg.get("DEBUG"):
        problems.append(
            Problem(
                "FLASK_DEBUG",
                "is on: tracebacks and the debugger must never be served from Toolforge. "
                "Remove it.",
                FLASK,
            )
        )
    name = cfg.get("TOOL_NAME") or toolforge_tool_name(environ)
    if not name and not (cfg.get("WIKIMEDIA_REDIRECT_URI") and cfg.get("WIKIMEDIA_USER_AGENT")):
        problems.append(
            Problem(
                "FLASK_TOOL_NAME",
                ": cannot tell the tool's name (for its callback URL and User-Agent). Set it "
                "with:\n    toolforge envvars create FLASK_TOOL_NAME <your tool's name>",
                TOOL,
            )
        )
    _raise_if(
        problems,
        cfg,
        "The tool cannot start on Toolforge (fix these, then restart the webservice; see "
        "docs/deploy.md)",
    )
    cfg["TOOL_NAME"] = str(name or DEFAULT_TOOL_NAME)
    cfg["PREFERRED_URL_SCHEME"] = "https"
    # The callback URL is a constant, never derived from the Host header (catalogue HH-1).
    cfg["WIKIMEDIA_REDIRECT_URI"] = (
        cfg.get("WIKIMEDIA_REDIRECT_URI")
        or f"https://{cfg['TOOL_NAME']}.toolforge.org/auth/callback"
    )
    cfg["REDIS_URL"] = cfg.get("REDIS_URL") or TOOLFORGE_REDIS_URL
    # Toolforge is only reachable over https (the front proxy terminates TLS): cookies are
    # Secure whatever scheme the request claims. FLASK_SESSION_COOKIE_SECURE=false turns this
    # off for a local imitation of Toolforge over plain http (the tests do this).
    if "SESSION_COOKIE_SECURE" not in explicit:
        cfg["SESSION_COOKIE_SECURE"] = True
    if "SESSION_COOKIE_NAME" not in explicit and cfg["SESSION_COOKIE_SECURE"]:
        # __Host-: only ever sent to this host, over https, for the whole site.
        cfg["SESSION_COOKIE_NAME"] = "__Host-session"
    cfg.setdefault("PROXY_HOPS", 1)  # Toolforge's front proxy
    cfg["DEV_MODE"] = False


def _local_rules(cfg: Config) -> None:
    """Off Toolforge. The development wiki only on request: debug or testing mode (set by
    whoever runs the tool: ``make run``, ``flask run --debug``, ``FLASK_DEBUG=1``) without a
    client id, or ``WIKIMEDIA_DEV_WIKI`` set true. Never because a setting is missing."""
    cfg["TOOL_NAME"] = str(cfg.get("TOOL_NAME") or DEFAULT_TOOL_NAME)
    relaxed = bool(cfg.get("DEBUG") or cfg.get("TESTING"))
    flag = cfg.get("WIKIMEDIA_DEV_WIKI")
    dev = bool(flag) or (relaxed and flag is None and not cfg.get("WIKIMEDIA_CLIENT_ID"))
    cfg["DEV_MODE"] = dev
    problems: list[Problem] = []
    if dev:
        cfg["WIKIMEDIA_DEV_WIKI"] = True
        if not relaxed:
            # WIKIMEDIA_DEV_WIKI set on purpose: the library serves it only in debug mode.
            cfg["DEBUG"] = relaxed = True
        log.warning(
            "Running against the development wiki at /_devwiki. "
            "Logins there are NOT real Wikimedia accounts."
        )
    elif not cfg.get("WIKIMEDIA_CLIENT_ID"):
        problems.append(
            Problem(
                "FLASK_WIKIMEDIA_CLIENT_ID",
                "is not set. Set it to your OAuth 2.0 consumer key (docs/deploy.md); or, to try "
                "the tool locally against the development wiki (where anyone can log in as "
                "anyone), run it in debug mode: make run, or flask --app app run --debug.",
                LIBRARY,
            )
        )
    if not cfg.get("SECRET_KEY") and relaxed:
        # Per process: restarting logs everyone out, and several workers would not agree.
        cfg["SECRET_KEY"] = secrets.token_urlsafe(48)
    secret_problem = secret_key_problem(
        cfg.get("SECRET_KEY"),
        relaxed=relaxed,
        setting="FLASK_SECRET_KEY",
        fix='set it to a long random value, e.g. export FLASK_SECRET_KEY="$(python3 -c '
        "'import secrets; print(secrets.token_urlsafe(48))')\"",
    )
    if secret_problem is not None:
        problems.append(secret_problem)
    if not cfg.get("REDIS_URL") and not relaxed:
        problems.append(
            Problem(
                "REDIS_URL",
                "is not set (e.g. redis://localhost:6379/0; with REDIS_KEY_PREFIX): outside "
                "debug mode, sessions and logins are kept in Redis so that every worker shares "
                "them.",
                TOOL,
            )
        )
    _raise_if(problems, cfg, STARTUP_HEADER)
    cfg.setdefault("PROXY_HOPS", 0)


def _redis_keys(cfg: Config, explicit: set[str]) -> None:
    """Every key this tool writes starts with REDIS_KEY_PREFIX (secret on Toolforge)."""
    if not cfg.get("REDIS_URL"):
        return
    prefix = str(cfg.get("REDIS_KEY_PREFIX") or f"{cfg['TOOL_NAME']}:")
    if not prefix.endswith(":"):
        prefix += ":"
    cfg["REDIS_KEY_PREFIX"] = prefix
    if "SESSION_KEY_PREFIX" not in explicit:
        cfg["SESSION_KEY_PREFIX"] = prefix + "session:"
    if "WIKIMEDIA_KEY_PREFIX" not in explicit:
        cfg["WIKIMEDIA_KEY_PREFIX"] = prefix + "wikimedia:"


def _user_agent(cfg: Config, toolforge: bool) -> None:
    """A User-Agent per Wikimedia's policy: the tool's name, where it lives, who to contact."""
    if cfg.get("WIKIMEDIA_USER_AGENT"):
        return
    name = cfg["TOOL_NAME"]
    contact = cfg.get("TOOL_CONTACT")
    if toolforge:
        contact = contact or f"tools.{name}@toolforge.org"
        cfg["WIKIMEDIA_USER_AGENT"] = f"{name} (https://{name}.toolforge.org/; {contact})"
    elif contact:
        cfg["WIKIMEDIA_USER_AGENT"] = f"{name} ({contact})"
    # else: in debug/testing the extension uses its development agent; elsewhere it refuses
    # to start and asks for WIKIMEDIA_USER_AGENT (or set TOOL_CONTACT here).
