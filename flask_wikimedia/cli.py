"""``flask wikimedia check``: every configuration problem at once, each with its fix.

The rules are ``flask_wikimedia.settings``' (the ones ``init_app`` applies, plus what a
production deploy should follow even in debug mode, and misspelt ``WIKIMEDIA_*`` keys or
``FLASK_WIKIMEDIA_*`` variables with a "did you mean"), then live checks: the login store (Redis
reachable, keys prefixed), the consumer key and secret (by asking the wiki's token endpoint) and
the wiki (its OAuth endpoint and api.php answer as MediaWiki would). Each problem says whose
setting it is (Flask's, Flask-Wikimedia's, or the application's own). Exits with status 1 on
any problem, so it can guard a deployment script; ``--json`` for scripts. An app that does not
start is reported the same way, every reason listed, as long as the command itself can be found
(see the ``flask.commands`` entry point in pyproject.toml).
"""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo

from . import settings
from .errors import ConfigurationError, StoreUnavailable
from .oauth import WikiRefused, endpoint
from .oauth1 import OAuth1Client
from .outbound import WikiHTTPError, WikiSession
from .settings import ConfigurationProblems, Problem
from .state import get_state
from .store import MemoryLoginStore, RedisLoginStore

URL = "WIKIMEDIA_WIKI_URL"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

cli = AppGroup("wikimedia", help="Flask-Wikimedia: log in with Wikimedia.")

#: A refresh token no wiki ever issued: the answer tells whether the consumer is known.
_PROBE_TOKEN = "flask-wikimedia-configuration-check"  # noqa: S105 - not a secret


def problems(app: Flask) -> list[Problem]:
    """Everything wrong with ``app``'s Flask-Wikimedia configuration, each with its fix: the
    rules of ``flask_wikimedia.settings`` (the same ones ``init_app`` applies), misspelt keys,
    then what only a live check can tell (Redis, the wiki, the consumer)."""
    state = get_state(app)
    found = [*settings.startup_problems(app), *settings.advice(app)]
    found.extend(settings.unknown_settings(app.config))
    found.extend(_store_problems(app))
    if state.wiki_url is not None:
        found.extend(_wiki_problems(app, state.wiki_url))
    return _unique(found)


def _unique(found: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    return [p for p in found if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def _store_problems(app: Flask) -> list[Problem]:
    store = get_state(app).store
    if isinstance(store, MemoryLoginStore):
        return [
            Problem(
                "WIKIMEDIA_REDIS",
                "is not set (nor Flask-Session's SESSION_REDIS): logins are kept in this "
                "process, which only works for one worker and is lost at every restart. Set it "
                "to a redis:// URL.",
            )
        ]
    try:
        store.ping()
    except StoreUnavailable:
        return [
            Problem(
                "WIKIMEDIA_REDIS",
                ": Redis (the login store) cannot be reached: check the URL (or "
                "SESSION_REDIS) and that the server is running.",
            )
        ]
    if isinstance(store, RedisLoginStore):
        # A cluster or Sentinel client names no single host: judged as remote (the safe side).
        pool = getattr(store.client, "connection_pool", None)
        host = pool.connection_kwargs.get("host", "") if pool is not None else ""
        if host not in _LOCAL_HOSTS and len(store.prefix) < settings.MIN_KEY_PREFIX_LENGTH:
            return [
                Problem(
                    "WIKIMEDIA_KEY_PREFIX",
                    f": Redis keys are prefixed with only {store.prefix!r}: on a shared Redis "
                    "(Toolforge) anyone who guesses a key can read or delete it. Start "
                    "WIKIMEDIA_KEY_PREFIX (or SESSION_KEY_PREFIX) with a secret random value of "
                    f"at least {settings.MIN_KEY_PREFIX_LENGTH} characters.",
                )
            ]
    return []


def _oauth1_problems(client: OAuth1Client, wiki_url: str) -> list[Problem]:
    """Ask ``Special:OAuth/initiate`` for a request token (``oob`` suits every consumer)."""
    try:
        client.initiate(wiki_url, "oob")
    except WikiRefused as exc:
        return [
            Problem(
                "WIKIMEDIA_CLIENT_ID",
                f": the wiki at {wiki_url} refused this OAuth 1.0a consumer "
                f"({exc.description[:200]}): check WIKIMEDIA_CLIENT_ID and "
                "WIKIMEDIA_CLIENT_SECRET.",
            )
        ]
    except WikiHTTPError as exc:
        return [Problem(URL, f": {wiki_url} did not answer ({_why(exc)}): check the URL.")]
    return []


def _wiki_problems(app: Flask, wiki_url: str) -> list[Problem]:
    state = get_state(app)
    if state.oauth_version == "1.0a" and state.oauth1 is not None:
        return _oauth1_problems(state.oauth1, wiki_url)
    oauth = state.oauth
    session = WikiSession(oauth.user_agent, oauth.timeout, oauth.max_bytes)
    found: list[Problem] = []
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
        return [Problem(URL, f": {wiki_url} did not answer ({_why(exc)}): check the URL.")]
    error = _oauth_error(answer.content)
    if answer.status_code == 401 and error == "invalid_client":
        hint = (
            ""
            if oauth.client_secret
            else " This wiki may need the secret even for a public client (MediaWiki before "
            "1.46, T323855): set WIKIMEDIA_CLIENT_SECRET."
        )
        found.append(
            Problem(
                "WIKIMEDIA_CLIENT_ID",
                f": the wiki at {wiki_url} does not accept this consumer (invalid_client): check "
                f"WIKIMEDIA_CLIENT_ID and WIKIMEDIA_CLIENT_SECRET.{hint}",
            )
        )
    elif answer.status_code not in (400, 401) or error is None:
        found.append(
            Problem(
                URL,
                f": {wiki_url} does not look like a wiki with OAuth 2.0 (its token endpoint "
                f"answered HTTP {answer.status_code}): check the URL (it ends in /w).",
            )
        )
        return found
    try:
        api = session.get(
            wiki_url.rstrip("/") + "/api.php",
            params={"action": "query", "meta": "siteinfo", "format": "json"},
        )
    except WikiHTTPError as exc:
        found.append(Problem(URL, f": api.php at {wiki_url} did not answer ({_why(exc)})."))
        return found
    if api.status_code == 403:
        found.append(
            Problem(
                "WIKIMEDIA_USER_AGENT",
                f": the wiki at {wiki_url} refused our requests (HTTP 403): Wikimedia blocks "
                "User-Agents that do not follow its policy.",
            )
        )
    elif api.status_code != 200:
        found.append(Problem(URL, f": api.php at {wiki_url} answered HTTP {api.status_code}."))
    return found


def _why(exc: WikiHTTPError) -> str:
    """The underlying reason (connection refused, timeout...), not our own wrapper's words,
    so the message does not say "could not be reached" twice."""
    cause = exc.__cause__
    if cause is None:
        return str(exc)
    name = type(cause).__name__
    return {"ConnectionError": "connection failed", "ConnectTimeout": "connection timed out"}.get(
        name, "timed out" if "Timeout" in name else name
    )


def _oauth_error(content: bytes) -> str | None:
    """The OAuth ``error`` code of a token endpoint answer, if it is one."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


@cli.command("check", with_appcontext=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON, for scripts.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Report every configuration problem at once, each with its fix; exit status 1 if any."""
    info = ctx.ensure_object(ScriptInfo)
    started = True
    try:
        app = info.load_app()
    except ConfigurationProblems as exc:
        found, started = exc.problems, False
    except ConfigurationError as exc:
        found, started = [Problem("configuration", ": " + str(exc), "application")], False
    else:
        with app.app_context():
            found = problems(app)
    if as_json:
        click.echo(
            json.dumps(
                {"ok": not found, "started": started, "problems": [p.as_dict() for p in found]},
                indent=2,
            )
        )
    elif not found:
        click.echo("Flask-Wikimedia: configuration looks good.")
    else:
        if not started:
            click.echo("The app does not start with this configuration.")
        click.echo(f"Flask-Wikimedia found {len(found)} problem(s):")
        for problem in found:
            click.echo(f"  - {problem}")
    if found:
        ctx.exit(1)
