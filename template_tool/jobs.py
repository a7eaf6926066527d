"""The scheduled job (jobs.yaml): refresh what the tool knows about its wiki, as the app.

``flask --app app refresh-wiki-info`` asks the wiki for its name with the app's own token
(``app_session()``: no user involved) and keeps the answer in Redis for two days; the front
page shows it. It runs as a Toolforge job from the same image, settings and envvars as the web
service, so it shares the tool's configuration and Redis (and its secret key prefix).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from flask_wikimedia.api import ApiError, app_session
from flask_wikimedia.errors import WikimediaError
from flask_wikimedia.sessions import REDIS_TROUBLE

#: Two runs of the hourly job may fail before the front page stops showing the wiki's name.
TTL_SECONDS = 2 * 24 * 3600


def _key() -> str:
    return f"{current_app.config['SESSION_KEY_PREFIX']}wiki-info"


def _redis() -> Any:
    client = current_app.extensions.get("template_tool.redis")
    if client is None:
        raise click.ClickException(
            "REDIS_URL is not set: the job keeps its result in the tool's Redis "
            "(on Toolforge it is set for you; locally: export REDIS_URL=redis://localhost:6379/0)"
        )
    return client


def cached_wiki_info() -> dict[str, str] | None:
    """What the last run found (``sitename``, ``checked``), or None. Never raises for Redis."""
    client = current_app.extensions.get("template_tool.redis")
    if client is None:
        return None
    try:
        raw = client.get(_key())
        data = json.loads(raw) if raw else None
    except (
        *REDIS_TROUBLE,
        ValueError,
    ):  # Redis down (one server or a cluster), damaged value: show nothing, no 500
        current_app.logger.warning("could not read the cached wiki info", exc_info=True)
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("sitename", "checked")
    ):
        return None
    return {"sitename": data["sitename"], "checked": data["checked"]}


@click.command("refresh-wiki-info")
@with_appcontext
def refresh_wiki_info() -> None:
    """Ask the wiki for its name, as the app, and keep it in Redis for the front page."""
    client = _redis()
    try:
        answer = app_session().get_json(action="query", meta="siteinfo", siprop="general")
    except (ApiError, WikimediaError) as error:
        # The cron job's email says what went wrong; the old value stays until its TTL ends.
        reason = error.description if isinstance(error, WikimediaError) else str(error)
        raise click.ClickException(f"the wiki did not answer usefully: {reason}") from error
    sitename = answer.get("query", {}).get("general", {}).get("sitename")
    if not isinstance(sitename, str) or not sitename:
        raise click.ClickException("the wiki's answer has no site name")
    info = {
        "sitename": sitename[:200],
        "checked": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    client.set(_key(), json.dumps(info), ex=TTL_SECONDS)
    click.echo(f"{info['sitename']} ({info['checked']})")


def init_app(app: Flask) -> None:
    app.cli.add_command(refresh_wiki_info)
