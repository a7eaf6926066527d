"""The same protocol scenarios against the development wiki (1.39 flavour) and a real MediaWiki
1.39 with Extension:OAuth: a divergence between the fake and the real thing is a failing test.

The scenarios that take ``consumer`` run for a tool with the confidential OAuth 2.0 client and
for one with an OAuth 1.0a consumer; what only one version has is here (OAuth 2.0) or in
test_conformance_oauth1.py.

Every scenario goes through the flask_wikimedia extension in a Flask app (as tool authors use
it) or, for the wire-level shapes, straight to the server with ``requests``. Both servers must
give the same user-visible outcome; where the dev wiki models a quirk in one flavour only, the
test says which flavour matches the real server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import redis
import requests
from flask import Flask
from realwiki import ErrorPage
from scenario import log_in, session_record
from servers import CALLBACK, Server

from flask_wikimedia.api import user_session
from flask_wikimedia.testing import finish_login, start_login

TIMEOUT = 30.0
#: The extension refreshes a token that has less than a minute left: 30 s is "due at once".
DUE_FOR_REFRESH = 30


def bearer_get(server: Server, path: str, token: str, **params: str) -> requests.Response:
    """GET ``path`` (under the wiki's ``/w``) with a Bearer token."""
    return requests.get(
        server.base_url + path,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def profile(token: str, server: Server) -> requests.Response:
    return bearer_get(server, "/rest.php/oauth2/resource/profile", token)


def token_call(server: Server, **data: str) -> requests.Response:
    return requests.post(server.token_url, data=data, timeout=TIMEOUT)


def refresh_with(server: Server, refresh_token: str) -> requests.Response:
    return token_call(
        server,
        grant_type="refresh_token",
        refresh_token=refresh_token,
        client_id=server.confidential.client_id,
        client_secret=server.confidential.secret,
    )


@pytest.fixture
def app(server: Server, redis_client: redis.Redis) -> Flask:
    return server.make_app(redis_client)


@pytest.fixture(params=["oauth2", "oauth1"])
def consumer(request: pytest.FixtureRequest) -> str:
    """The tool's consumer: the confidential OAuth 2.0 client, or the OAuth 1.0a consumer."""
    return str(request.param)


def tool(server: Server, redis_client: redis.Redis, consumer: str, **config: Any) -> Flask:
    return server.make_app(redis_client, oauth1=consumer == "oauth1", **config)


# ---------------------------------------------------------------------------- login


def test_login_maps_the_profile(server, redis_client, consumer):
    client = log_in(server, tool(server, redis_client, consumer), "Alice")
    assert client.get("/private").text == "private page of Alice"
    me = client.get("/me").json
    assert me["username"] == "Alice"
    assert me["sub"] == str(server.user_id("Alice"))
    assert me["editcount"] == server.editcount("Alice") > 0
    assert me["confirmed_email"] is True
    assert me["blocked"] is False
    assert me["registered"] is not None
    assert {"user", "autoconfirmed"} <= set(me["groups"])
    assert "edit" in me["rights"]
    assert set(me["grants"]) == {"basic", "editpage", "highvolume"}
    # No privateinfo grant: neither email nor real name comes back.
    assert me["email"] == ""
    assert me["realname"] == ""


def test_public_client_logs_in_with_pkce_and_no_secret(server, redis_client):
    app = server.make_app(redis_client, confidential=False)
    client = log_in(server, app, "Alice")
    assert client.get("/private").text == "private page of Alice"


def test_sysop_rights_are_limited_to_the_grants(server, app):
    client = log_in(server, app, "Sysop")
    me = client.get("/me").json
    assert "sysop" in me["groups"]
    # 1.39 lists the user's rights limited to the token's grants: no blockusers grant, no block.
    assert "block" not in me["rights"]
    assert client.get("/edit").status_code == 200
    assert client.get("/block").status_code == 403


def test_blocked_user_is_blocked_and_still_lists_edit(server, redis_client, consumer):
    client = log_in(server, tool(server, redis_client, consumer), "Blocked")
    me = client.get("/me").json
    assert me["blocked"] is True
    assert "edit" in me["rights"]


def test_user_without_email_has_no_confirmed_email(server, redis_client, consumer):
    client = log_in(server, tool(server, redis_client, consumer), "NoEmail")
    assert client.get("/me").json["confirmed_email"] is False


def test_cancel_arrives_without_state_and_reads_as_declined(server, app):
    client = app.test_client()
    authorize = start_login(client, "/private")
    callback = server.approve(authorize, "Alice", allow=False)
    query = parse_qs(urlsplit(callback).query)
    # MediaWiki 1.39: unauthorized_client, no state (the 1.39 flavour's quirk).
    assert query["error"] == ["unauthorized_client"]
    assert "state" not in query
    response = finish_login(client, callback)
    assert response.status_code == 403
    assert client.get("/private").status_code == 302


def test_consent_is_asked_again_at_every_authorization(server, app):
    client = log_in(server, app, "Alice")
    again = start_login(client, "/private")
    assert server.consent_shown(again, "Alice")


def test_callback_carries_code_and_state_only(server, app):
    client = app.test_client()
    authorize = start_login(client, "/private")
    sent_state = parse_qs(urlsplit(authorize).query)["state"][0]
    callback = server.approve(authorize, "Alice")
    query = parse_qs(urlsplit(callback).query)
    assert set(query) == {"code", "state"}
    assert query["state"] == [sent_state]


# ---------------------------------------------------------------------------- tokens


def test_refresh_rotates_and_old_tokens_die_at_once(server, app):
    server.set_ttl("access", DUE_FOR_REFRESH)
    client = log_in(server, app, "Alice")
    old = session_record(client)
    assert client.get("/private").status_code == 200  # refreshes on the way
    new = session_record(client)
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token
    assert profile(new.access_token, server).status_code == 200
    # 1.39: no grace period; the old access token is revoked together with the refresh token.
    dead_access = profile(old.access_token, server)
    assert dead_access.status_code == 401
    assert dead_access.json()["error"] == "access_denied"
    assert dead_access.json()["hint"] == "Access token has been revoked"
    dead_refresh = refresh_with(server, old.refresh_token)
    assert dead_refresh.status_code == 401
    assert dead_refresh.json()["error"] == "invalid_request"
    assert dead_refresh.json()["hint"] == "Token has been revoked"


def test_public_client_without_secret_cannot_refresh_and_is_logged_out(server, redis_client):
    app = server.make_app(redis_client, confidential=False)
    server.set_ttl("access", DUE_FOR_REFRESH)
    client = log_in(server, app, "Alice")
    # 1.39 checks the secret on every refresh, even a public client's: 401 invalid_client.
    response = client.get("/private")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_expired_refresh_token_logs_the_user_out(server, app):
    server.set_ttl("access", DUE_FOR_REFRESH)
    server.set_ttl("refresh", 2)
    client = log_in(server, app, "Alice")
    record = session_record(client)
    server.let_time_pass(3)
    response = client.get("/private")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
    expired = refresh_with(server, record.refresh_token)
    assert expired.status_code == 401
    assert expired.json()["error"] == "invalid_request"
    assert expired.json()["hint"] == "Token has expired"


def test_revoked_app_ends_the_login(server, redis_client):
    app = server.make_app(redis_client, WIKIMEDIA_PROFILE_MAX_AGE=0)
    client = log_in(server, app, "Bob")
    record = session_record(client)
    server.revoke("Bob", server.confidential)
    assert profile(record.access_token, server).status_code == 401
    revoked = refresh_with(server, record.refresh_token)
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "invalid_request"
    assert revoked.json()["hint"] == "Token has been revoked"
    response = client.get("/private")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_block_after_login_shows_on_the_next_profile_read(server, redis_client, consumer):
    app = tool(server, redis_client, consumer, WIKIMEDIA_PROFILE_MAX_AGE=0)
    client = log_in(server, app, "Bob")
    assert client.get("/me").json["blocked"] is False
    server.block("Bob")
    me = client.get("/me").json
    # The tokens keep working; the profile (1.0a: identify) says blocked and still lists edit.
    assert me["blocked"] is True
    assert "edit" in me["rights"]


# ---------------------------------------------------------------------------- api.php


def test_edit_through_the_api_session_lands_as_the_user(server, redis_client, consumer):
    client = log_in(server, tool(server, redis_client, consumer), "Alice")
    before = server.editcount("Alice")
    marker = f"conformance {consumer} edit {secrets.token_hex(4)}"
    with client:
        client.get("/private")
        answer = user_session().edit("Sandbox", appendtext="\n" + marker, summary="conformance")
    assert answer["edit"]["result"] == "Success"
    assert server.page_text("Sandbox").rstrip().endswith(marker)
    assert server.editcount("Alice") == before + 1


@pytest.mark.parametrize("token", ["garbage", "revoked"])
def test_dead_token_on_api_php_is_200_with_an_error_header(server, app, token):
    if token == "revoked":
        server.set_ttl("access", DUE_FOR_REFRESH)
        client = log_in(server, app, "Alice")
        bearer = session_record(client).access_token
        client.get("/private")  # the refresh revokes the old access token
    else:
        bearer = "not.a.token"
    response = bearer_get(
        server, "/api.php", bearer, action="query", meta="userinfo", format="json"
    )
    assert response.status_code == 200
    assert response.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"
    assert response.json()["error"]["code"] == "mwoauth-invalid-authorization"
    assert "WWW-Authenticate" not in response.headers


# ---------------------------------------------------------------------------- wire shapes


def test_profile_is_json_served_as_text_html(server, app):
    client = log_in(server, app, "Alice")
    response = profile(session_record(client).access_token, server)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.json()["username"] == "Alice"


def test_code_exchange_without_the_verifier_is_refused(server, app):
    client = app.test_client()
    authorize = start_login(client, "/private")
    callback = server.approve(authorize, "Alice")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = token_call(
        server,
        grant_type="authorization_code",
        code=code,
        client_id=server.confidential.client_id,
        client_secret=server.confidential.secret,
        redirect_uri="http://localhost/auth/callback",
    )
    # The app's PKCE verifier is not ours: 1.39 refuses with a code_verifier hint.
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "code_verifier" in answer.json()["hint"]


@pytest.mark.parametrize(
    ("case", "status", "error", "hint"),
    [
        ("wrong-secret", 401, "invalid_client", None),
        ("garbage-code", 400, "invalid_request", "Cannot decrypt the authorization code"),
        ("password-grant", 400, "invalid_request", "Check the `grant_type` parameter"),
        ("garbage-refresh", 401, "invalid_request", "Cannot decrypt the refresh token"),
    ],
)
def test_token_endpoint_error_shapes(server, case, status, error, hint):
    client = server.confidential
    data = {"client_id": client.client_id, "client_secret": client.secret}
    if case == "wrong-secret":
        data.update(grant_type="authorization_code", code="x", client_secret="0" * 40)
    elif case == "garbage-code":
        data.update(grant_type="authorization_code", code="def50200" + "ab" * 40)
    elif case == "password-grant":
        data.update(grant_type="password", username="Alice", password="x")
    else:
        data.update(grant_type="refresh_token", refresh_token="def50200" + "cd" * 40)
    response = token_call(server, **data)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["message"] == body["error_description"]  # 1.39 copies it into `message`
    if hint is not None:
        assert body["hint"] == hint
    assert "WWW-Authenticate" not in response.headers


def test_token_endpoint_refuses_get_with_405(server):
    response = requests.get(server.token_url, timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.json()["httpCode"] == 405


def test_profile_with_a_garbage_token_is_401_access_denied(server):
    response = profile("garbage", server)
    assert response.status_code == 401
    assert response.json()["error"] == "access_denied"
    assert "WWW-Authenticate" not in response.headers


def test_profile_without_authorization_header_is_a_500(server):
    # A 1.39 bug (Resource.php passes [] to guzzle's withHeader); the 1.39 flavour models it.
    response = requests.get(server.profile_url, timeout=TIMEOUT)
    assert response.status_code == 500
    assert response.json()["httpCode"] == 500
    assert "Header value can not be an empty array" in response.json()["message"]


def test_unknown_resource_type_is_a_parameter_validation_error(server):
    response = bearer_get(server, "/rest.php/oauth2/resource/foo", "x.y.z")
    assert response.status_code == 400
    assert response.json() == {
        "error": "parameter-validation-failed",
        "name": "type",
        "value": "foo",
        "failureCode": "badvalue",
        "failureData": [],
        "messageTranslations": {"en": 'Unrecognized value for parameter "type": foo.'},
        "httpCode": 400,
        "httpReason": "Bad Request",
    }


def test_core_rest_with_a_garbage_token_is_403_rest_read_denied(server):
    response = bearer_get(server, "/rest.php/v1/page/Main_Page/bare", "garbage")
    assert response.status_code == 403
    assert response.json() == {
        "error": "rest-read-denied",
        "httpCode": 403,
        "httpReason": "Forbidden",
    }


def test_scopes_resource_is_an_object_with_gaps(server, app):
    client = log_in(server, app, "Alice")
    token = session_record(client).access_token
    response = bearer_get(server, "/rest.php/oauth2/resource/scopes", token)
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.json() == {"scopes": {"0": "basic", "2": "editpage", "3": "highvolume"}}


@pytest.mark.parametrize("problem", ["unknown-client", "unregistered-redirect", "token-flow"])
def test_authorize_errors_are_a_200_page_not_a_redirect(server, problem):
    query = {
        "client_id": server.confidential.client_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "state": "s" * 32,
    }
    if problem == "unknown-client":
        query["client_id"] = "ab" * 16
    elif problem == "unregistered-redirect":
        query["redirect_uri"] = "http://evil.example/cb"
    else:
        query["response_type"] = "token"
    with pytest.raises(ErrorPage) as page:
        server.approve(server.base_url + "/rest.php/oauth2/authorize?" + urlencode(query), "Alice")
    assert page.value.status == 200
    assert "Application Connection Error" in page.value.text


def raw_code(server: Server, username: str = "Alice") -> tuple[str, str]:
    """An authorization code for the confidential client with our own PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "client_id": server.confidential.client_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "state": "s" * 32,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    callback = server.approve(
        server.base_url + "/rest.php/oauth2/authorize?" + urlencode(query), username
    )
    return parse_qs(urlsplit(callback).query)["code"][0], verifier


def exchange(server: Server, code: str, verifier: str, **changes: str) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": server.confidential.client_id,
        "client_secret": server.confidential.secret,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    data.update(changes)
    return token_call(server, **{k: v for k, v in data.items() if v})


def test_code_exchange_shape_and_single_use(server):
    code, verifier = raw_code(server)
    first = exchange(server, code, verifier)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    body = first.json()
    assert set(body) == {"token_type", "expires_in", "access_token", "refresh_token"}  # no scope
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert isinstance(claims["exp"], float) and isinstance(claims["sub"], str)
    assert claims["scopes"] == ["basic", "editpage", "highvolume"]
    again = exchange(server, code, verifier)
    assert again.status_code == 400
    assert again.json()["hint"] == "Authorization code has been revoked"


@pytest.mark.parametrize(
    ("change", "status", "error", "hint"),
    [
        ({"code_verifier": "x" * 50}, 400, "invalid_grant", "Failed to verify `code_verifier`."),
        ({"redirect_uri": CALLBACK + "x"}, 401, "invalid_client", None),
        ({"redirect_uri": ""}, 400, "invalid_request", "Check the `redirect_uri` parameter"),
        ({"client_secret": "0" * 40}, 401, "invalid_client", None),
    ],
    ids=["wrong-verifier", "other-redirect", "no-redirect", "wrong-secret"],
)
def test_failed_exchange_does_not_burn_the_code(server, change, status, error, hint):
    code, verifier = raw_code(server)
    failed = exchange(server, code, verifier, **change)
    assert failed.status_code == status
    assert failed.json()["error"] == error
    if hint is not None:
        assert failed.json()["hint"] == hint
    assert exchange(server, code, verifier).status_code == 200
