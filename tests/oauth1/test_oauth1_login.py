"""OAuth 1.0a logins end to end: the extension against the development wiki over real HTTP
(issue 14; security catalogue O1)."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from apps import login_record
from flask import redirect, request, url_for
from flask.testing import FlaskClient
from oauth1_apps import CALLBACK, KEY, SECRET, make_app1, register_consumer
from support import session_ref

from flask_wikimedia import pending
from flask_wikimedia.devwiki import DevWiki, DevWikiError
from flask_wikimedia.devwiki.faults import JWT_FAULTS
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import finish_login, login, logout, start_login


@pytest.fixture
def app(devwiki: DevWiki, redis_client: redis.Redis):
    return make_app1(devwiki, redis_client)


def pending_cookie(client: FlaskClient):
    """The pending-login cookie, whatever path it is scoped to."""
    return next((c for c in client._cookies.values() if c.key == pending.COOKIE_NAME), None)


def test_plain_user_logs_in_with_oauth1(app, client, devwiki):
    response = login(client, devwiki, "Alice", next="/private")
    assert response.status_code == 303
    assert response.headers["Location"] == "/private"
    assert client.get("/private").text == "private page of Alice"
    assert [devwiki.calls[f"oauth1:{s}"] for s in ("initiate", "token", "identify")] == [1, 1, 1]
    assert devwiki.calls["token:authorization_code"] == 0  # no OAuth 2.0 at all
    record = login_record(app, session_ref(client))
    assert record.oauth_version == "1.0a"
    assert record.access_secret and record.refresh_token is None
    assert math.isinf(record.expires_at)  # 1.0a tokens do not expire: nothing to refresh


def test_authenticate_url_carries_only_the_request_token(client, devwiki):
    authorize = start_login(client)
    parts = urlsplit(authorize)
    query = parse_qs(parts.query)
    assert parts.path.endswith("/w/index.php")
    assert query["title"] == ["Special:OAuth/authenticate"]
    assert query["oauth_consumer_key"] == [KEY]
    assert len(query["oauth_token"][0]) == 32
    assert set(query) == {"title", "oauth_token", "oauth_consumer_key"}
    # The request token's secret is sealed in the pending cookie, never readable.
    cookie = pending_cookie(client)
    assert cookie is not None and cookie.http_only
    token = devwiki.request_tokens[query["oauth_token"][0]]
    assert token.secret not in cookie.value and token.callback == CALLBACK


def test_profile_fields_come_from_the_identify_jwt(app, client, devwiki):
    login(client, devwiki, "Sysop")
    user = login_record(app, session_ref(client)).user()
    assert user.username == "Sysop" and user.sub == str(devwiki.users["Sysop"].id)
    assert "sysop" in user.groups and "block" in user.rights
    assert user.grants == frozenset({"basic", "editpage", "highvolume"})  # object -> list
    assert user.editcount == 12345 and user.registered is not None
    assert client.get("/sysop").text == "sysop only"
    assert client.get("/grant").text == "has editpage"


def test_oob_consumer_logs_in_through_its_registered_callback(devwiki, redis_client):
    register_consumer(devwiki, callback_is_prefix=False)
    client = make_app1(
        devwiki, redis_client, WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX=False
    ).test_client()
    assert login(client, devwiki, "Alice").status_code == 303
    assert client.get("/private").status_code == 200
    assert next(iter(devwiki.request_tokens.values())).callback == "oob"


def test_several_tabs_log_in_at_once(client, devwiki):
    first = devwiki.approve(start_login(client, "/one"), username="Alice")
    second = devwiki.approve(start_login(client, "/two"), username="Alice")
    assert finish_login(client, second).headers["Location"] == "/two"
    assert finish_login(client, first).headers["Location"] == "/one"


def test_session_id_rotates_at_login(client, devwiki):
    client.get("/me")
    with client.session_transaction() as sess:
        sess["planted"] = "x"
    login(client, devwiki, "Alice")
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_cancel_sends_nothing_back_and_logs_nobody_in(client, devwiki):
    with pytest.raises(DevWikiError) as cancelled:
        devwiki.approve(start_login(client), username="Alice", allow=False)
    assert cancelled.value.status == 200  # the wiki's own page, as MediaWiki shows it
    assert "You have chosen not to allow" in cancelled.value.text
    assert client.get("/private").status_code == 302
    assert devwiki.calls["oauth1:token"] == 0
    # The user can simply start again.
    assert login(client, devwiki, "Alice").status_code == 303


def test_wiki_error_at_initiate_is_a_clear_page(devwiki, redis_client, caplog):
    # The consumer is not "callback is prefix", but the tool was told it is: MediaWiki answers
    # HTTP 200 "Error: ... mwoauth-callback-not-oob".
    register_consumer(devwiki, callback_is_prefix=False)
    client = make_app1(devwiki, redis_client).test_client()
    with caplog.at_level(logging.ERROR, "flask_wikimedia"):
        response = client.get("/auth/login")
    assert response.status_code == 400
    assert "refused to start a login" in response.text
    assert "WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX" in caplog.text
    assert pending.COOKIE_NAME not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize(
    ("endpoint", "fault", "status"),
    [("initiate", "503", 503), ("initiate", "garbage", 502), ("token", "500", 503)],
)
def test_wiki_trouble_is_a_clear_page(client, devwiki, endpoint, fault, status):
    if endpoint == "initiate":
        devwiki.inject_fault("initiate", fault)
        assert client.get("/auth/login").status_code == status
        return
    callback = devwiki.approve(start_login(client), username="Alice")
    devwiki.inject_fault("token", fault)
    assert finish_login(client, callback).status_code == status
    assert client.get("/private").status_code == 302


def test_forged_callback_with_another_browsers_token_is_refused(app, devwiki):
    attacker, victim = app.test_client(), app.test_client()
    callback = devwiki.approve(start_login(attacker), username="Alice")
    start_login(victim)
    response = finish_login(victim, callback)
    assert response.status_code == 400
    assert "unknown or has expired" in response.text
    assert victim.get("/private").status_code == 302
    assert devwiki.calls["oauth1:token"] == 0


def test_oauth2_style_callback_cannot_redeem_a_1_0a_entry(client, devwiki):
    authorize = start_login(client)
    token = parse_qs(urlsplit(authorize).query)["oauth_token"][0]
    response = client.get(f"/auth/callback?state={token}&code=abc")
    assert response.status_code == 400
    assert devwiki.calls["oauth1:token"] == 0 and devwiki.calls["token"] == 0


def test_replayed_callback_and_reused_verifier_are_refused(client, devwiki):
    callback = devwiki.approve(start_login(client), username="Alice")
    cookie = pending_cookie(client)
    assert cookie is not None
    assert finish_login(client, callback).status_code == 303
    assert logout(client).status_code == 303
    # Put the old pending cookie back: the request token is still single use.
    client.set_cookie(pending.COOKIE_NAME, cookie.value, path=cookie.path)
    replay = finish_login(client, callback)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert devwiki.calls["oauth1:token"] == 1
    assert client.get("/private").status_code == 302


def test_callback_without_verifier_or_with_doubled_token_is_refused(client, devwiki):
    callback = devwiki.approve(start_login(client), username="Alice")
    query = parse_qs(urlsplit(callback).query)
    token = query["oauth_token"][0]
    no_verifier = client.get(f"/auth/callback?oauth_token={token}")
    doubled = client.get(f"/auth/callback?oauth_token={token}&oauth_token=x&oauth_verifier=v")
    assert (no_verifier.status_code, doubled.status_code) == (400, 400)
    assert devwiki.calls["oauth1:token"] == 0


def test_wrong_verifier_is_refused_by_the_wiki(client, devwiki):
    callback = devwiki.approve(start_login(client), username="Alice")
    token = parse_qs(urlsplit(callback).query)["oauth_token"][0]
    response = client.get(f"/auth/callback?oauth_token={token}&oauth_verifier=0123456789")
    assert response.status_code == 400
    assert "refused this login" in response.text
    assert devwiki.calls["oauth1:token"] == 1 and devwiki.calls["oauth1:identify"] == 0


def test_expired_request_token_is_refused(client, devwiki, monkeypatch):
    callback = devwiki.approve(start_login(client), username="Alice")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 601)
    response = finish_login(client, callback)
    assert response.status_code == 400
    assert "expired" in response.text
    assert devwiki.calls["oauth1:token"] == 0


@pytest.mark.parametrize("fault", JWT_FAULTS)
def test_identify_jwt_that_does_not_verify_logs_nobody_in(client, devwiki, fault, caplog):
    callback = devwiki.approve(start_login(client), username="Alice")
    devwiki.inject_fault("identify", fault)
    with caplog.at_level(logging.WARNING, "flask_wikimedia"):
        response = finish_login(client, callback)
    assert response.status_code == 400
    assert "could not be verified" in response.text
    assert "did not verify" in caplog.text
    assert client.get("/private").status_code == 302
    assert session_ref(client) is None


def test_blocked_user_logs_in_flagged_or_is_refused_by_policy(app, devwiki, redis_client):
    client = app.test_client()
    login(client, devwiki, "Blocked")
    assert login_record(app, session_ref(client)).user().blocked
    strict = make_app1(devwiki, redis_client, WIKIMEDIA_DENY_BLOCKED=True).test_client()
    assert login(strict, devwiki, "Blocked").status_code == 403
    assert strict.get("/private").status_code == 302


def test_hidden_user_is_refused(client, devwiki):
    # The identify JWT of a suppressed account carries only sub and blocked.
    assert [login(client, devwiki, "Hidden").status_code, session_ref(client)] == [403, None]


def test_logout_ends_a_1_0a_login(app, client, devwiki):
    login(client, devwiki, "Alice")
    ref = session_ref(client)
    assert logout(client).status_code == 303
    assert login_record(app, ref) is None
    assert client.get("/private").status_code == 302


def test_no_token_or_secret_in_cookies_pages_or_raw_redis(app, client, devwiki, redis_client):
    login(client, devwiki, "Alice")
    record = login_record(app, session_ref(client))
    secrets_ = [record.access_token, record.access_secret, SECRET]
    cookies = " ".join(c.value for c in client._cookies.values())
    pages = client.get("/me").text + client.get("/private").text
    raw = b" ".join(redis_client.dump(k) or b"" for k in redis_client.keys("*"))
    for value in secrets_:
        assert value not in cookies and value not in pages
        assert value.encode() not in raw


def test_1_0a_login_key_names_reveal_nothing_and_logout_leaves_tombstones(
    app, client, devwiki, redis_client
):
    """KN-1/KN-2 for a 1.0a login: no Redis key name holds the request token (the state),
    its SHA-256, the login reference or a cookie; a dump written back after logout does not
    log the old cookie in again (the 1.0a record goes through the same names and tombstones)."""
    authorize = start_login(client, "/private")
    request_token = parse_qs(urlsplit(authorize).query)["oauth_token"][0]
    assert finish_login(client, devwiki.approve(authorize, username="Alice")).status_code == 303
    assert client.get("/private").text == "private page of Alice"
    ref = session_ref(client)
    assert login_record(app, ref).oauth_version == "1.0a"
    held = [ref, request_token, hashlib.sha256(request_token.encode()).hexdigest()]
    held += [c.value for c in client._cookies.values()]
    names = [k.decode() for k in redis_client.keys("*")]
    assert names
    for name in names:
        for value in held:
            assert value not in name, (value, name)
    old_cookies = {c.key: c.value for c in client._cookies.values()}
    dumped = [(k, redis_client.dump(k), redis_client.pttl(k)) for k in redis_client.keys("*")]
    assert logout(client).status_code == 303
    for key, value, pttl in dumped:
        redis_client.restore(key, max(pttl, 0), value, replace=True)
    # The 1.0a record is back in Redis, and its tombstone refuses it.
    assert redis_client.exists(get_state(app).store.record_key(ref))
    assert login_record(app, ref) is None
    replay = app.test_client()
    for name, value in old_cookies.items():
        replay.set_cookie(name, value)
    assert replay.get("/private").status_code == 302


def test_old_registered_callback_path_forwards_to_ours(devwiki, redis_client):
    """docs/migrate.md: a consumer registered for flask-mwoauth's /oauth-callback keeps working."""
    consumer = register_consumer(devwiki, callback_is_prefix=False)
    consumer.redirect_uri = "http://localhost/oauth-callback"
    app = make_app1(devwiki, redis_client, WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX=False)

    @app.get("/oauth-callback")  # the callback URL registered with the 1.0a consumer
    def old_oauth_callback():
        query = request.query_string.decode("ascii", "replace")
        return redirect(url_for("wikimedia.callback") + "?" + query, 303)

    client = app.test_client()
    back = devwiki.approve(start_login(client, "/private"), username="Alice")
    assert back.startswith("http://localhost/oauth-callback?oauth_verifier=")
    hop = finish_login(client, back)
    assert hop.status_code == 303
    final = client.get(hop.headers["Location"])
    assert final.status_code == 303 and final.headers["Location"] == "/private"
    assert client.get("/private").text == "private page of Alice"
