"""Helpers for testing your own tool against the development wiki.

Use it as a pytest plugin (``pytest_plugins = ["flask_wikimedia.testing"]`` in your
``conftest.py``) to get the ``devwiki`` fixture, then log a Flask test client in and out::

    from flask_wikimedia.testing import dev_config, login, logout

    def test_only_blockers_see_the_tools(devwiki):
        client = create_app(dev_config(devwiki)).test_client()
        login(client, devwiki, "Carol", add_rights=["block"])   # a plain user, plus block
        assert client.get("/admin-tools").status_code == 200
        login(client, devwiki, "Dave", rights=["read"])         # exactly read, nothing else
        assert client.get("/admin-tools").status_code == 403
        logout(client)

``rights``, ``groups`` and ``grants`` set exactly what is given; ``add_rights`` and
``add_groups`` add to the account's. Everything goes over real HTTP through the development
wiki's consent page, exactly as a browser would, so the code under test is the code that runs
in production. The development wiki's ``api.php`` (``meta=siteinfo|userinfo|tokens``,
``action=edit`` on in-memory pages) answers the tool's API calls as that user too: check
``devwiki.pages`` and ``devwiki.edits`` afterwards. docs/testing.md has the whole story.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import session, url_for
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .devwiki import DEV_CLIENT_ID, DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET, DevClient, DevUser, DevWiki
from .devwiki.models import PLAIN_USER_RIGHTS
from .views import csrf_token

__all__ = [
    "PLAIN_USER_RIGHTS",
    "dev_config",
    "dev_environ",
    "devwiki",
    "ensure_user",
    "finish_login",
    "login",
    "logout",
    "set_grants",
    "start_login",
]


# Random, so that nothing signed in a test run can be replayed anywhere else.
_TEST_SECRET_KEY = "test-only secret key, " + secrets.token_hex(16)


def dev_config(wiki: DevWiki, oauth_version: str = "2.0") -> dict[str, Any]:
    """Config that points an app at ``wiki`` with its built-in public client, for
    ``create_app(dev_config(devwiki))`` or ``app.config.update(...)`` before ``Wikimedia(app)``.

    Testing mode is on (logins kept in the process unless the app names a Redis), and any
    configured secret or redirect URI is cleared: the development client accepts any loopback
    callback, which is what the Flask test client uses. ``SECRET_KEY`` is a random test-only
    value (the same for the whole test run), so a test needs no secret of its own.
    ``oauth_version="1.0a"`` uses the wiki's built-in OAuth 1.0a consumer instead, for tools on
    an OAuth 1.0a consumer.
    """
    if wiki.base_url is None:
        raise RuntimeError("serve the development wiki first (the devwiki fixture does)")
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": _TEST_SECRET_KEY,
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


def dev_environ(wiki: DevWiki) -> dict[str, str]:
    """Environment variables that do what :func:`dev_config` does, for an app built at import
    time (``app = Flask(__name__)``, ``app.config.from_prefixed_env()``, ``Wikimedia(app)``).

    Put them in ``os.environ`` in your ``conftest.py`` before anything imports the app module;
    docs/testing.md shows the whole conftest. ``FLASK_SECRET_KEY`` is set too (to a test-only
    value) unless the environment already has one.
    """
    config = dev_config(wiki)
    environ = {
        "FLASK_TESTING": "true",
        "FLASK_WIKIMEDIA_WIKI_URL": str(config["WIKIMEDIA_WIKI_URL"]),
        "FLASK_WIKIMEDIA_CLIENT_ID": str(config["WIKIMEDIA_CLIENT_ID"]),
        "FLASK_WIKIMEDIA_DEV_WIKI": "false",
    }
    if not os.environ.get("FLASK_SECRET_KEY"):
        environ["FLASK_SECRET_KEY"] = _TEST_SECRET_KEY
    return environ


def ensure_user(
    wiki: DevWiki,
    username: str,
    *,
    rights: Iterable[str] | None = None,
    groups: Iterable[str] | None = None,
    add_rights: Iterable[str] = (),
    add_groups: Iterable[str] = (),
    **fields: Any,
) -> DevUser:
    """Create ``username`` on the dev wiki (a plain autoconfirmed user), or update it.

    ``rights`` and ``groups`` *replace* the account's rights and groups with exactly the ones
    given, so a test of a missing right really lacks it (``rights=["read"]``: nothing else).
    ``add_rights`` and ``add_groups`` add to what the account has (a new account starts with
    :data:`PLAIN_USER_RIGHTS` and the groups ``*``, ``user``, ``autoconfirmed``). Other keyword
    arguments set :class:`~flask_wikimedia.devwiki.DevUser` fields: ``blocked=True``,
    ``confirmed_email=False``, ``hidden=True``, ``editcount=5``, ``registered=None``...
    """
    user = wiki.users.get(username)
    if user is None:
        user = wiki.add_user(DevUser(name=username))
    changes: dict[str, Any] = dict(fields)
    new_rights = list(user.rights) if rights is None else _unique(rights)
    new_groups = list(user.groups) if groups is None else _unique(groups)
    new_rights += [r for r in _unique(add_rights) if r not in new_rights]
    new_groups += [g for g in _unique(add_groups) if g not in new_groups]
    if new_rights != list(user.rights):
        changes["rights"] = new_rights
    if new_groups != list(user.groups):
        changes["groups"] = new_groups
    if changes:
        wiki.set_user(username, **changes)
    return wiki.users[username]


def _unique(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        # rights="block" would otherwise become the rights b, l, o, c, k.
        raise TypeError(f"give a list of names, not the string {names!r}")
    return list(dict.fromkeys(names))


def set_grants(client: FlaskClient, wiki: DevWiki, grants: Iterable[str]) -> DevClient:
    """Register exactly ``grants`` for the OAuth client ``client``'s app logs in with.

    The dev wiki adds ``basic`` as MediaWiki's registration does (unless the grants are
    identity-only, ``mwoauth-authonly``). Logins from then on get these grants (limited by
    ``WIKIMEDIA_SCOPES`` if the app asks for fewer), which is how a test checks
    ``@requires_grant``.
    """
    client_id = client.application.config.get("WIKIMEDIA_CLIENT_ID") or DEV_CLIENT_ID
    registered = wiki.clients.get(client_id)
    if registered is None:
        raise LookupError(f"the development wiki has no client {client_id!r}")
    return wiki.add_client(dataclasses.replace(registered, grants=_unique(grants)))


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
    grants: Iterable[str] | None = None,
    add_rights: Iterable[str] = (),
    add_groups: Iterable[str] = (),
    allow: bool = True,
    **fields: Any,
) -> TestResponse:
    """Log ``client`` in as ``username`` through the dev wiki's consent page.

    The account is created first if needed (a plain autoconfirmed user). ``rights``,
    ``groups`` and ``grants`` set *exactly* what is given: ``rights=["read"]`` is a user with
    the read right and nothing else, ``grants=["basic"]`` a login that allowed the tool
    nothing more (the grants are registered on the app's OAuth client, see
    :func:`set_grants`). ``add_rights`` and ``add_groups`` add to the account's current ones
    instead. Other keyword arguments set :class:`~flask_wikimedia.devwiki.DevUser` fields
    (``blocked=True``, ``confirmed_email=False``, ``hidden=True``, ``editcount=5``...); see
    :func:`ensure_user`.

    Returns the callback's response: a 303 redirect to ``next`` on success, the error page
    (403 for a login policy's refusal, say) otherwise; ``allow=False`` presses Cancel.
    ``wiki`` must be served over HTTP (the ``devwiki`` fixture is).
    """
    ensure_user(
        wiki,
        username,
        rights=rights,
        groups=groups,
        add_rights=add_rights,
        add_groups=add_groups,
        **fields,
    )
    if grants is not None:
        set_grants(client, wiki, grants)
    authorize_url = start_login(client, next)
    _check_same_wiki(authorize_url, wiki)
    callback_url = wiki.approve(authorize_url, username=username, allow=allow)
    return finish_login(client, callback_url)


def _check_same_wiki(authorize_url: str, wiki: DevWiki) -> None:
    """Fail with what to do when the app logs in somewhere other than ``wiki``.

    Without this, an app configured before the test could set it up (a module-level
    ``app``) sends the consent page to its own wiki, and the test dies in a ConnectionError
    to ``localhost:80`` or a real wiki that explains nothing.
    """
    if wiki.base_url is None:
        raise RuntimeError("serve the development wiki first (the devwiki fixture does)")
    if authorize_url.startswith(wiki.base_url + "/"):
        return
    where = authorize_url.split("?", 1)[0]
    raise AssertionError(
        f"The app sends its logins to {where}, not to the development wiki this test serves "
        f"({wiki.base_url}). Configure the app for it before Wikimedia(app) reads the "
        "config: create_app(dev_config(devwiki)) with an app factory, or, for a module-level "
        "app that calls app.config.from_prefixed_env(), os.environ.update(dev_environ(wiki)) "
        "in conftest.py before the app module is imported (see docs/testing.md)."
    )


def logout(client: FlaskClient, next: str | None = None) -> TestResponse:
    """Log ``client`` out the way the ``logout_form()`` button does: a POST with its CSRF field.

    Returns the response: a 303 redirect to ``next`` (or the app's default page). Works with
    Flask's cookie sessions, Flask-Session and Flask-WTF's ``CSRFProtect``.
    """
    app = client.application
    with client.session_transaction() as stored, app.test_request_context():
        # Mint the token the way the form would, in a request whose session is the client's,
        # and keep whatever the session gained (the raw token the form value is checked against).
        session.update(stored)
        token = csrf_token()
        stored.update(session)
        logout_url = url_for("wikimedia.logout")
    data = {"csrf_token": token}
    if next is not None:
        data["next"] = next
    return client.post(logout_url, data=data)


@pytest.fixture
def devwiki() -> Iterator[DevWiki]:
    """A development wiki served over real HTTP on an ephemeral port, fresh for each test."""
    wiki = DevWiki()
    wiki.start()
    try:
        yield wiki
    finally:
        wiki.stop()
