"""``flask wikimedia check``: report configuration problems in plain words.

Checks the secret key, the consumer key and secret (by asking the wiki's token endpoint), the user
agent, the redirect URI, the login store (Redis reachable, keys prefixed), and the wiki (its
OAuth endpoint and api.php answer as MediaWiki would). Exits with status 1 on any problem, so it
can guard a deployment script. A configuration so broken that the app does not start is
reported too, as long as the command itself can be found (see the ``flask.commands`` entry
point in pyproject.toml).
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo

from .errors import ConfigurationError, StoreUnavailable
from .oauth import WikiRefused, endpoint
from .oauth1 import OAuth1Client
from .outbound import WikiHTTPError, WikiSession
from .store import MemoryLoginStore, RedisLoginStore

cli = AppGroup("wikimedia", help="Flask-Wikimedia: log in with Wikimedia.")

_AGENT = re.compile(r"^\S+/\S+ \(.*(@|https?://).*\)")
_CONSUMER_KEY = re.compile(r"[0-9a-f]{32}")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: A refresh token no wiki ever issued: the answer tells whether the consumer is known.
_PROBE_TOKEN = "flask-wikimedia-configuration-check"  # noqa: S105 - not a secret
MIN_PREFIX = 16


def problems(app: Flask) -> list[str]:
    """Everything wrong with ``app``'s Flask-Wikimedia configuration, in plain words."""
    from .extension import get_state

    state = get_state(app)
    cfg = app.config
    found: list[str] = []
    key = app.secret_key
    if not key or len(str(key)) < 24:
        found.append("SECRET_KEY is short: use at least 32 random characters.")
    if state.dev_wiki is not None:
        found.append("WIKIMEDIA_DEV_WIKI is on: this is a fake wiki, not a real login.")
    else:
        client_id = str(cfg.get("WIKIMEDIA_CLIENT_ID") or "")
        if not _CONSUMER_KEY.fullmatch(client_id):
            found.append(
                f"WIKIMEDIA_CLIENT_ID {client_id!r} does not look like an OAuth 2.0 consumer key "
                "(32 hexadecimal characters, shown when the consumer was registered)."
            )
    agent = cfg.get("WIKIMEDIA_USER_AGENT") or ""
    if not _AGENT.match(agent):
        found.append(
            "WIKIMEDIA_USER_AGENT should look like 'ToolName/1.0 (https://tool.url; "
            "you@example.org)' (Wikimedia's User-Agent policy); it is "
            + (repr(agent) if agent else "not set")
            + "."
        )
    found.extend(_redirect_problems(app))
    found.extend(_store_problems(app))
    if state.wiki_url is not None:
        found.extend(_wiki_problems(app, state.wiki_url))
    return found


def _redirect_problems(app: Flask) -> list[str]:
    from .extension import get_state

    state = get_state(app)
    redirect = app.config.get("WIKIMEDIA_REDIRECT_URI")
    if not redirect:
        if app.debug or app.testing or app.config.get("SERVER_NAME"):
            return []
        return ["WIKIMEDIA_REDIRECT_URI is not set: set it to your registered callback URL."]
    found = []
    parts = urlsplit(str(redirect))
    if parts.scheme != "https" and parts.hostname not in _LOCAL_HOSTS:
        found.append(f"WIKIMEDIA_REDIRECT_URI {redirect!r} is not https.")
    callback = f"{state.url_prefix}/callback"
    if not parts.path.endswith(callback):
        found.append(
            f"WIKIMEDIA_REDIRECT_URI {redirect!r} does not end with the callback route "
            f"({callback})."
        )
    return found


def _store_problems(app: Flask) -> list[str]:
    from .extension import get_state

    store = get_state(app).store
    if isinstance(store, MemoryLoginStore):
        return [
            "No Redis is configured (WIKIMEDIA_REDIS or SESSION_REDIS): logins are kept in this "
            "process, which only works for one worker and is lost at every restart."
        ]
    try:
        store.ping()
    except StoreUnavailable:
        return ["Redis (the login store) cannot be reached: check WIKIMEDIA_REDIS / REDIS_URL."]
    if isinstance(store, RedisLoginStore):
        host = store.client.connection_pool.connection_kwargs.get("host", "")
        if host not in _LOCAL_HOSTS and len(store.prefix) < MIN_PREFIX:
            return [
                f"Redis keys are prefixed with only {store.prefix!r}: on a shared Redis (Toolforge) "
                "anyone who guesses a key can read or delete it. Start WIKIMEDIA_KEY_PREFIX (or "
                "SESSION_KEY_PREFIX) with a secret random value."
            ]
    return []


def _oauth1_problems(client: OAuth1Client, wiki_url: str) -> list[str]:
    """Ask ``Special:OAuth/initiate`` for a request token (``oob`` suits every consumer)."""
    try:
        client.initiate(wiki_url, "oob")
    except WikiRefused as exc:
        return [
            f"The wiki at {wiki_url} refused this OAuth 1.0a consumer ({exc.description[:200]}): "
            "check WIKIMEDIA_CLIENT_ID and WIKIMEDIA_CLIENT_SECRET."
        ]
    except WikiHTTPError as exc:
        return [f"The wiki at {wiki_url} cannot be reached: {exc}. Check WIKIMEDIA_WIKI_URL."]
    return []


def _wiki_problems(app: Flask, wiki_url: str) -> list[str]:
    from .extension import get_state

    state = get_state(app)
    if state.oauth_version == "1.0a" and state.oauth1 is not None:
        return _oauth1_problems(state.oauth1, wiki_url)
    oauth = state.oauth
    session = WikiSession(oauth.user_agent, oauth.timeout, oauth.max_bytes)
    found: list[str] = []
    form = {
        "grant_type": "refresh_token",
        "refresh_token": _PROBE_TOKEN,
        "client_id": oauth.client_id,
    }
    if oauth.client_secret:
        form["client_secret"] = oauth.client_secret
    try:
        answer = session.post(endpoint(wiki_url, "access_token"), data=form)
    except WikiHTTPError as exc:
        return [f"The wiki at {wiki_url} cannot be reached: {exc}. Check WIKIMEDIA_WIKI_URL."]
    error = _oauth_error(answer.content)
    if answer.status_code == 401 and error == "invalid_client":
        hint = (
            ""
            if oauth.client_secret
            else " This wiki may need the secret even for a public client (MediaWiki before "
            "1.46, T323855): set WIKIMEDIA_CLIENT_SECRET."
        )
        found.append(
            f"The wiki at {wiki_url} does not accept this consumer (invalid_client): check "
            f"WIKIMEDIA_CLIENT_ID and WIKIMEDIA_CLIENT_SECRET.{hint}"
        )
    elif answer.status_code not in (400, 401) or error is None:
        found.append(
            f"{wiki_url} does not look like a wiki with OAuth 2.0 (its token endpoint answered "
            f"HTTP {answer.status_code}); check WIKIMEDIA_WIKI_URL (it ends in /w)."
        )
        return found
    try:
        api = session.get(
            wiki_url.rstrip("/") + "/api.php",
            params={"action": "query", "meta": "siteinfo", "format": "json"},
        )
    except WikiHTTPError as exc:
        found.append(f"The wiki's api.php at {wiki_url} cannot be reached: {exc}.")
        return found
    if api.status_code == 403:
        found.append(
            f"The wiki at {wiki_url} refused our requests (HTTP 403): Wikimedia blocks "
            "User-Agents that do not follow its policy; check WIKIMEDIA_USER_AGENT."
        )
    elif api.status_code != 200:
        found.append(f"The wiki's api.php at {wiki_url} answered HTTP {api.status_code}.")
    return found


def _oauth_error(content: bytes) -> str | None:
    """The OAuth ``error`` code of a token endpoint answer, if it is one."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


@cli.command("check", with_appcontext=False)
@click.pass_context
def check(ctx: click.Context) -> None:
    """Report configuration problems; exit status 1 if there are any."""
    info = ctx.ensure_object(ScriptInfo)
    try:
        app = info.load_app()
    except ConfigurationError as exc:
        found = [str(exc)]
    else:
        with app.app_context():
            found = problems(app)
    if not found:
        click.echo("Flask-Wikimedia: configuration looks good.")
        return
    click.echo(f"Flask-Wikimedia found {len(found)} problem(s):")
    for problem in found:
        click.echo(f"  - {problem}")
    ctx.exit(1)
