"""OAuth 1.0a scenarios against the development wiki (1.39 flavour) and a real MediaWiki 1.39
with Extension:OAuth: a tool whose consumer is an OAuth 1.0a one (``WIKIMEDIA_OAUTH_VERSION =
"1.0a"``, a "callback is prefix" consumer) logs in, edits as the user, sees blocks and
revocations, and the identify JWT has the shape the extension verifies. (The scenarios both
versions share, such as the profile mapping and an edit, are in test_conformance.py.)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
from authlib.integrations.requests_client import OAuth1Auth
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OctKey
from realwiki import ErrorPage
from scenario import log_in, session_record
from servers import Server

from flask_wikimedia.testing import finish_login, start_login

TIMEOUT = 30.0


@pytest.fixture
def app(server: Server, redis_client: redis.Redis) -> Flask:
    return server.make_app(redis_client, oauth1=True)


def access_of(client: FlaskClient) -> tuple[str, str]:
    """The 1.0a access token and secret behind ``client``'s login."""
    record = session_record(client)
    assert record is not None and record.oauth_version == "1.0a"
    assert record.access_secret is not None
    return record.access_token, record.access_secret


def identify(server: Server, token: str, token_secret: str) -> requests.Response:
    """``Special:OAuth/identify``, signed with the consumer and the access token."""
    auth = OAuth1Auth(
        server.oauth1.client_id,
        server.oauth1.secret,
        token=token,
        token_secret=token_secret,
    )
    return requests.post(
        server.base_url + "/index.php",
        params={"title": "Special:OAuth/identify"},
        auth=auth,
        timeout=TIMEOUT,
    )


def test_identify_lists_all_the_users_rights_not_only_the_granted_ones(server, app):
    """Unlike 1.39's OAuth 2.0 profile (test_conformance.py), identify lists every right the
    user has: a sysop's ``block`` is there although the consumer has no blockusers grant."""
    client = log_in(server, app, "Sysop")
    me = client.get("/me").json
    assert "sysop" in me["groups"]
    assert {"block", "delete", "edit"} <= set(me["rights"])
    assert client.get("/block").status_code == 200  # requires_right reads the profile


def test_callback_carries_the_verifier_and_the_request_token_only(server, app):
    client = app.test_client()
    authorize = start_login(client, "/private")
    request_token = parse_qs(urlsplit(authorize).query)["oauth_token"][0]
    callback = server.approve(authorize, "Alice")
    assert callback.startswith("http://localhost/auth/callback?")
    query = parse_qs(urlsplit(callback).query)
    assert set(query) == {"oauth_verifier", "oauth_token"}
    assert query["oauth_token"] == [request_token]
    assert finish_login(client, callback).status_code == 303


def test_cancel_shows_the_wikis_page_and_sends_nothing_back(server, app):
    client = app.test_client()
    authorize = start_login(client, "/private")
    with pytest.raises(ErrorPage) as page:
        server.approve(authorize, "Alice", allow=False)
    assert page.value.status == 200
    assert "mw-mwoauth-authorize-form" not in page.value.text
    assert client.get("/private").status_code == 302


def test_a_request_token_is_traded_once(server, app):
    client = app.test_client()
    authorize = start_login(client, "/private")
    callback = server.approve(authorize, "Alice")
    assert finish_login(client, callback).status_code == 303
    replay = app.test_client()
    assert finish_login(replay, callback).status_code == 400
    assert replay.get("/private").status_code == 302


def test_revoked_consumer_ends_the_login(server, redis_client):
    app = server.make_app(redis_client, oauth1=True, WIKIMEDIA_PROFILE_MAX_AGE=0)
    client = log_in(server, app, "Bob")
    token, token_secret = access_of(client)
    assert identify(server, token, token_secret).status_code == 200
    server.revoke("Bob", server.oauth1)
    refused = identify(server, token, token_secret)
    # Errors on identify are HTTP 200 with a JSON body (protocol §7.1).
    assert refused.status_code == 200
    assert set(refused.json()) >= {"error", "message"}
    response = client.get("/private")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_identify_answers_the_jwt_the_extension_verifies(server, app):
    client = log_in(server, app, "Alice")
    token, token_secret = access_of(client)
    answer = identify(server, token, token_secret)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    compact = answer.text.strip()
    decoded = jwt.decode(compact, OctKey.import_key(server.oauth1.secret), algorithms=["HS256"])
    claims: dict[str, Any] = decoded.claims
    header = decoded.header
    assert header["alg"] == "HS256"
    assert claims["iss"] == server.base_url.rsplit("/w", 1)[0]
    assert claims["aud"] == server.oauth1.client_id
    assert claims["exp"] - claims["iat"] == 100
    assert claims["username"] == "Alice"
    assert claims["sub"] == str(server.user_id("Alice"))  # a string, as in the 2.0 profile
    # The grants come as a JSON object (an array that had holes), not a list.
    assert isinstance(claims["grants"], dict)
    assert set(claims["grants"].values()) == {"basic", "editpage", "highvolume"}
    assert "nonce" in claims
    json.dumps(claims)  # plain JSON all the way down
