"""The login flow end to end: the extension against the development wiki over real HTTP."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from apps import login_record, make_app
from support import session_ref

from flask_wikimedia.testing import finish_login, login, start_login


def test_plain_user_logs_in_and_sees_private_page(client, devwiki):
    response = login(client, devwiki, "Alice", next="/private")
    assert response.status_code == 303
    assert response.headers["Location"] == "/private"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/private")
    assert page.status_code == 200
    assert page.text == "private page of Alice"
    assert devwiki.calls["token:authorization_code"] == 1
    assert devwiki.calls["profile"] == 1


def test_sysop_logs_in_and_passes_group_and_right_checks(client, devwiki):
    login(client, devwiki, "Sysop")
    assert client.get("/sysop").text == "sysop only"
    assert client.get("/block").text == "can block"


def test_public_client_logs_in_without_secret(devwiki, redis_client):
    app = make_app(devwiki, redis_client, confidential=False)
    client = app.test_client()
    login(client, devwiki, "Alice")
    assert client.get("/private").status_code == 200


def test_works_with_flasks_cookie_session_and_no_token_in_cookie(devwiki, redis_client):
    app = make_app(devwiki, None, WIKIMEDIA_REDIS=redis_client)
    client = app.test_client()
    login(client, devwiki, "Alice")
    assert client.get("/private").text == "private page of Alice"
    record = login_record(app, session_ref(client))
    for cookie in client._cookies.values():
        assert record.access_token not in cookie.value
        assert record.refresh_token not in cookie.value


def test_profile_fields_are_mapped(app, client, devwiki):
    devwiki.set_user("Alice", realname="Alice Example")
    login(client, devwiki, "Alice")
    user = login_record(app, session_ref(client)).user()
    assert user.username == "Alice"
    assert isinstance(user.sub, str) and user.sub == str(devwiki.users["Alice"].id)
    assert user.editcount == 42
    assert user.confirmed_email is True
    assert user.blocked is False
    assert user.registered is not None and user.registered.year == 2020
    assert "autoconfirmed" in user.groups
    assert "edit" in user.rights
    assert {"basic", "editpage"} <= user.grants
    assert isinstance(user.groups, frozenset)
    assert user.email == ""  # no privateinfo grant: no email, no real name
    assert user.realname == ""


def test_profile_from_mediawiki_139_is_mapped(devwiki_139, redis_client):
    app = make_app(devwiki_139, redis_client)
    client = app.test_client()
    login(client, devwiki_139, "Sysop")
    user = login_record(app, session_ref(client)).user()
    assert user.username == "Sysop"
    assert "sysop" in user.groups
    assert user.sub == str(devwiki_139.users["Sysop"].id)
    assert client.get("/sysop").status_code == 200


def test_wrong_code_verifier_fails_cleanly(client, devwiki):
    # The code of the first tab with the state (and so the verifier) of the second tab.
    first = devwiki.approve(start_login(client, "/one"), username="Alice")
    second = devwiki.approve(start_login(client, "/two"), username="Alice")
    code = parse_qs(urlsplit(first).query)["code"][0]
    state = parse_qs(urlsplit(second).query)["state"][0]
    response = client.get(f"/auth/callback?code={code}&state={state}")
    assert response.status_code == 400
    assert devwiki.calls["token:authorization_code"] == 1
    assert client.get("/private").status_code == 302


@pytest.mark.parametrize(
    ("endpoint", "fault", "status"),
    [
        ("token", "500", 503),
        ("token", "garbage", 502),
        ("token", "badjson", 502),
        ("token", "oversized", 502),
        ("token", "redirect", 502),
        ("token", "hang", 503),
        ("profile", "500", 503),
        ("profile", "garbage", 502),
        ("profile", "hang", 503),
        ("profile", "wrongtypes", 502),
        ("profile", "missingfields", 502),
    ],
)
def test_wiki_trouble_during_callback_is_a_clear_page(client, devwiki, endpoint, fault, status):
    callback = devwiki.approve(start_login(client), username="Alice")
    devwiki.inject_fault(endpoint, fault, delay=5.0)
    started = time.monotonic()
    response = finish_login(client, callback)
    assert response.status_code == status
    assert time.monotonic() - started < 4.5
    assert "Traceback" not in response.text
    assert client.get("/private").status_code == 302
    devwiki.clear_faults()


def test_hidden_user_is_refused(client, devwiki):
    response = login(client, devwiki, "Hidden")
    assert response.status_code == 403
    assert client.get("/private").status_code == 302


def test_logout_by_post_ends_the_login(app, client, devwiki):
    login(client, devwiki, "Alice")
    ref = session_ref(client)
    page = client.get("/me")
    assert "Hello <bdi>Alice</bdi>" in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/auth/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert login_record(app, ref) is None
    assert client.get("/private").status_code == 302
    assert "Logged out" in client.get("/me").text
