"""Login, protected requests, refresh and logout on a Redis Cluster and behind Sentinel, with
Flask-Session's own ``Session(app)`` (as its docs show it) and with ``use_redis_sessions``."""

from __future__ import annotations

import pytest
from flask import Flask
from scalekit import app_on
from support import login_due_for_refresh, session_ref

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import login

JSON = {"Accept": "application/json"}
CSRF = "csrf-token-for-this-test"


@pytest.fixture(params=["flask-session", "ours"])
def app(request: pytest.FixtureRequest, devwiki: DevWiki, scaled_redis) -> Flask:
    return app_on(request.param, devwiki, scaled_redis)


def test_login_protected_request_and_logout(app, devwiki):
    client = app.test_client()
    assert client.get("/private").status_code == 302
    assert login(client, devwiki, "Alice").status_code == 303
    assert client.get("/private").text == "private page of Alice"
    assert client.get("/api/whoami", headers=JSON).json["username"] == "Alice"
    ref = session_ref(client)
    assert ref is not None
    with client.session_transaction() as sess:
        sess["_wikimedia_csrf"] = CSRF
    assert client.post("/auth/logout", data={"csrf_token": CSRF}).status_code == 303
    assert get_state(app).store.get(ref) is None
    assert client.get("/private").status_code == 302


def test_expired_token_is_refreshed(app, devwiki):
    client = app.test_client()
    before = login_due_for_refresh(client, devwiki)
    assert client.get("/private").text == "private page of Alice"
    assert devwiki.calls["token:refresh_token"] == 1
    after = get_state(app).store.get(session_ref(client))
    assert after is not None and after.record.access_token != before.record.access_token
