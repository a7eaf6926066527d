"""Helpers for testing your own tool against the development wiki.

Use it as a pytest plugin (``pytest_plugins = ["flask_wikimedia.testing"]`` in your
``conftest.py``) to get the ``devwiki`` fixture, then log a Flask test client in::

    from flask_wikimedia.testing import dev_config, login

    def test_only_admins_see_the_tools(devwiki):
        client = create_app(dev_config(devwiki)).test_client()
        login(client, devwiki, "Carol", rights=["block"])
        assert client.get("/admin-tools").status_code == 200

Everything goes over real HTTP through the development wiki's consent page, exactly as a
browser would, so the code under test is the code that runs in production. The development
wiki's ``api.php`` (``meta=userinfo|tokens``, ``action=edit`` on in-memory pages) answers the
tool's API calls as that user too: check ``devwiki.pages`` and ``devwiki.edits`` afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import url_for
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .devwiki import DEV_CLIENT_ID, DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET, DevUser, DevWiki


def dev_config(wiki: DevWiki, oauth_version: str = "2.0") -> dict[str, Any]:
    """Config that points an app at ``wiki`` with its built-in public client, for
    ``create_app(dev_config(devwiki))`` or ``app.config.update(...)`` before ``Wikimedia(app)``.

    Testing mode is on (logins kept in the process unless the app names a Redis), and any
    configured secret or redirect URI is cleared: the development client accepts any loopback
    callback, which is what the Flask test client uses. ``oauth_version="1.0a"`` uses the
    wiki's built-in OAuth 1.0a consumer instead, for tools on an OAuth 1.0a consumer.
    """
    if wiki.base_url is None:
        raise RuntimeError("serve the development wiki first (the devwiki fixture does)")
    config: dict[str, Any] = {
        "TESTING": True,
        "WIKIMEDIA_WIKI_URL": wiki.base_url,
        "WIKIMEDIA_CLIENT_ID": DEV_CLIENT_ID,
        "WIKIMEDIA_CLIENT_SECRET": None,
        "WIKIMEDIA_REDIRECT_URI": None,
        "WIKIMEDIA_DEV_WIKI": False,
    }
    if oauth_version == "1.0a":  # the wiki's built-in 1.0a consumer (any loopback callback)
        config.update(
            WIKIMEDIA_OAUTH_VERSION="1.0a",
            WIKIMEDIA_CLIENT_ID=DEV_OAUTH1_KEY,
            WIKIMEDIA_CLIENT_SECRET=DEV_OAUTH1_SECRET,
            WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX=True,
        )
    return config


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

    ``rights`` and ``groups`` are added to the user first (created as a plain autoconfirmed
    user if needed); other keyword arguments (``blocked=True``, ``confirmed_email=False``,
    ``editcount=5``...) set :class:`DevUser` fields. Returns the callback's response: a 303
    redirect to ``next`` on success, the error page (403 for a login policy's refusal, say)
    otherwise. ``wiki`` must be served over HTTP (the ``devwiki`` fixture is).
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
