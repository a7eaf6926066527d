"""Helpers for testing your own tool against the development wiki.

Use it as a pytest plugin (``pytest_plugins = ["flask_wikimedia.testing"]`` in your
``conftest.py``) to get the ``devwiki`` fixture, then log a Flask test client in::

    def test_only_admins_see_the_tools(app, devwiki):
        app.config["WIKIMEDIA_WIKI_URL"] = devwiki.base_url   # before Wikimedia(app)
        client = app.test_client()
        login(client, devwiki, "Carol", rights=["block"])
        assert client.get("/admin-tools").status_code == 200

Everything goes over real HTTP through the development wiki's consent page, exactly as a
browser would, so the code under test is the code that runs in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import url_for
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .devwiki import DevUser, DevWiki


def ensure_user(
    wiki: DevWiki,
    username: str,
    *,
    rights: Iterable[str] | None = None,
    groups: Iterable[str] | None = None,
    **fields: Any,
) -> DevUser:
    """Create ``username`` on the dev wiki, or update it, with extra rights and groups."""
    user = wiki.users.get(username)
    if user is None:
        user = wiki.add_user(DevUser(name=username))
    changes: dict[str, Any] = dict(fields)
    if rights is not None:
        changes["rights"] = sorted(set(user.rights) | set(rights))
    if groups is not None:
        changes["groups"] = sorted(set(user.groups) | set(groups))
    if changes:
        wiki.set_user(username, **changes)
    return wiki.users[username]


def start_login(client: FlaskClient, next: str = "/") -> str:
    """GET the login route and return the wiki authorize URL it redirects to."""
    with client.application.test_request_context():
        login_url = url_for("wikimedia.login", next=next)
    response = client.get(login_url)
    if response.status_code != 302:
        raise AssertionError(f"{login_url} answered {response.status_code}, not a redirect")
    return response.headers["Location"]


def finish_login(client: FlaskClient, callback_url: str) -> TestResponse:
    """Deliver the wiki's redirect to the app's callback through the test client."""
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def login(
    client: FlaskClient,
    wiki: DevWiki,
    username: str = "Alice",
    *,
    next: str = "/",
    rights: Iterable[str] | None = None,
    groups: Iterable[str] | None = None,
    allow: bool = True,
    **fields: Any,
) -> TestResponse:
    """Log ``client`` in as ``username`` through the dev wiki's consent page.

    ``rights`` and ``groups`` are added to the user first (created if needed); other keyword
    arguments (``blocked=True``, ``confirmed_email=False``...) set :class:`DevUser` fields.
    Returns the callback's response (a redirect to ``next`` on success).
    """
    if rights is not None or groups is not None or fields or username not in wiki.users:
        ensure_user(wiki, username, rights=rights, groups=groups, **fields)
    authorize_url = start_login(client, next)
    callback_url = wiki.approve(authorize_url, username=username, allow=allow)
    return finish_login(client, callback_url)


@pytest.fixture
def devwiki() -> Iterator[DevWiki]:
    """A development wiki served over real HTTP on an ephemeral port, fresh for each test."""
    wiki = DevWiki()
    wiki.start()
    try:
        yield wiki
    finally:
        wiki.stop()
