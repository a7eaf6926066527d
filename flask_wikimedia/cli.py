"""``flask wikimedia check``: report configuration problems in plain words.

Checks the client id, user agent, redirect URI, secret key, Redis reachability (the login store)
and the wiki (the OAuth endpoints answer as MediaWiki would). Exits non-zero on any problem.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from .errors import StoreUnavailable
from .oauth import endpoint
from .outbound import WikiHTTPError, WikiSession

cli = AppGroup("wikimedia", help="Flask-Wikimedia: log in with Wikimedia.")

_AGENT = re.compile(r"^\S+/\S+ \(.*(@|https?://).*\)")


def _problems() -> list[str]:
    from .extension import get_state

    app = current_app
    state = get_state(app)
    cfg = app.config
    problems: list[str] = []
    key = app.secret_key
    if not key or len(str(key)) < 24:
        problems.append("SECRET_KEY is short: use at least 32 random characters.")
    if state.dev_wiki is not None:
        problems.append("WIKIMEDIA_DEV_WIKI is on: this is a fake wiki, not a real login.")
    agent = cfg.get("WIKIMEDIA_USER_AGENT") or ""
    if not _AGENT.match(agent):
        problems.append(
            "WIKIMEDIA_USER_AGENT should look like 'ToolName/1.0 (https://tool.url; "
            "you@example.org)' (Wikimedia's User-Agent policy); it is "
            + (repr(agent) if agent else "not set")
            + "."
        )
    redirect = cfg.get("WIKIMEDIA_REDIRECT_URI")
    if redirect:
        parts = urlsplit(redirect)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not local:
            problems.append(f"WIKIMEDIA_REDIRECT_URI {redirect!r} is not https.")
        if not parts.path.endswith("/callback"):
            problems.append(
                f"WIKIMEDIA_REDIRECT_URI {redirect!r} does not end with the callback route "
                f"({state.url_prefix}/callback)."
            )
    elif not app.debug and not app.testing:
        problems.append("WIKIMEDIA_REDIRECT_URI is not set: set it to your registered callback.")
    try:
        state.store.ping()
    except StoreUnavailable:
        problems.append(
            "Redis (the login store) cannot be reached: check WIKIMEDIA_REDIS / REDIS_URL."
        )
    if state.wiki_url is not None:
        session = WikiSession(state.oauth.user_agent, state.oauth.timeout, state.oauth.max_bytes)
        try:
            answer = session.post(endpoint(state.wiki_url, "access_token"), data={})
            if answer.status_code not in (400, 401):
                problems.append(
                    f"{state.wiki_url} does not look like a wiki with OAuth 2.0 (token endpoint "
                    f"answered HTTP {answer.status_code}); check WIKIMEDIA_WIKI_URL (it ends in /w)."
                )
        except WikiHTTPError as exc:
            problems.append(f"The wiki at {state.wiki_url} cannot be reached: {exc}.")
    return problems


@cli.command("check")
@with_appcontext
def check() -> None:
    """Report configuration problems; exit status 1 if there are any."""
    problems = _problems()
    if not problems:
        click.echo("Flask-Wikimedia: configuration looks good.")
        return
    click.echo(f"Flask-Wikimedia found {len(problems)} problem(s):")
    for problem in problems:
        click.echo(f"  - {problem}")
    sys.exit(1)
