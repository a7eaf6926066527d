"""The pending-login cookie: bound to this browser, and within what browsers keep (issue 9
item 5, catalogue PC-1, PC-2). The same in a real browser: tests/tool/test_browser_pending.py.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from securitykit import (
    PENDING_COOKIE,
    approve,
    build_app,
    cookie_attributes,
    deliver,
    set_cookie_headers,
)

from flask_wikimedia.pending import HOST_COOKIE_NAME, MAX_PENDING

HTTPS = "https://localhost"
#: What browsers keep of one cookie (name + value), RFC 6265 §6.1 and Chromium's limit.
BROWSER_LIMIT = 4096


def _https_app(wiki, fast_redis, **config):
    # The callback the test client is registered with; the browser leg is not what is tested.
    config.setdefault("WIKIMEDIA_REDIRECT_URI", "http://localhost/auth/callback")
    return build_app(wiki, fast_redis, "sealed-sessions", SESSION_COOKIE_SECURE=True, **config)


def _start(client, next_path: str | None = "/", base_url: str = HTTPS):
    path = "/auth/login" if next_path is None else f"/auth/login?next={quote(next_path, safe='')}"
    response = client.get(path, base_url=base_url)
    assert response.status_code == 302, response.text[:300]
    return response


def _callback_path(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1]


# --------------------------------------------------------------------------- PC-1


def test_on_https_the_pending_cookie_is_a_host_cookie(wiki, fast_redis):
    """PC-1: ``__Host-`` name, Secure, Path=/, no Domain: only this origin can set it."""
    app = _https_app(wiki, fast_redis)
    headers = set_cookie_headers(_start(app.test_client()))
    pending = [cookie_attributes(h) for h in headers if "wikimedia_login" in h]
    assert len(pending) == 1
    name, _, attrs = pending[0]
    assert name == HOST_COOKIE_NAME
    assert "secure" in attrs and attrs["path"] == "/" and "domain" not in attrs


def test_a_pending_login_tossed_from_a_sibling_domain_cannot_log_the_victim_in(wiki, fast_redis):
    """PC-1 (login CSRF by cookie tossing): the attacker starts a login in their own browser,
    approves it as themselves, and plants their pending-login cookie in the victim's browser
    from a sibling domain (which can set ``wikimedia_login`` with ``Domain=``, but not a
    ``__Host-`` cookie), then sends the victim to the callback: refused, the victim is not
    logged in to the attacker's account."""
    app = _https_app(wiki, fast_redis)
    attacker = app.test_client()
    login = _start(attacker, "/private")
    callback = approve(wiki, login.headers["Location"], "Sysop")
    value = attacker.get_cookie(HOST_COOKIE_NAME, path="/").value
    victim = app.test_client()
    for path in ("/", "/auth"):  # what a sibling domain can plant (it may add Domain=)
        victim.set_cookie(PENDING_COOKIE, value, path=path)
    response = victim.get("/" + _callback_path(callback), base_url=HTTPS)
    assert response.status_code == 400
    assert wiki.calls["token"] == 0  # the attacker's code was never redeemed
    assert victim.get("/private", base_url=HTTPS).status_code == 302
    # Control: the attacker's own browser, holding the __Host- cookie, completes it.
    assert deliver(attacker, callback, base_url=HTTPS).status_code == 303


def test_a_value_sealed_for_one_cookie_name_does_not_open_under_another(wiki, fast_redis):
    """PC-1: an http-era value (or another mount's) copied into the __Host- name is refused."""
    app = build_app(wiki, fast_redis, "sealed-sessions")
    plain = app.test_client()
    login = _start(plain, "/", base_url="http://localhost")
    value = plain.get_cookie(PENDING_COOKIE, path="/auth").value
    callback = approve(wiki, login.headers["Location"], "Alice")
    secure = app.test_client()
    secure.set_cookie(HOST_COOKIE_NAME, value, path="/")
    response = secure.get("/" + _callback_path(callback), base_url=HTTPS)
    assert response.status_code == 400


def test_two_mounts_on_one_host_keep_separate_pending_cookies(wiki, fast_redis):
    """PC-1: with Path=/ the mount is in the name: /auth and /login2 never overwrite each
    other's entries."""
    app = _https_app(wiki, fast_redis, WIKIMEDIA_URL_PREFIX="/login2")
    headers = set_cookie_headers(_start_at(app, "/login2/login"))
    (name,) = [cookie_attributes(h)[0] for h in headers if "wikimedia_login" in h]
    assert name.startswith(HOST_COOKIE_NAME + "-")


def _start_at(app, path: str):
    response = app.test_client().get(path, base_url=HTTPS)
    assert response.status_code == 302
    return response


# --------------------------------------------------------------------------- PC-2


@pytest.mark.parametrize("length", [0, 900, 1500, 1989, 5000])
@pytest.mark.parametrize("base_url", [HTTPS, "http://localhost"])
def test_the_pending_cookie_stays_within_what_browsers_keep(wiki, fast_redis, length, base_url):
    """PC-2: visits to /auth/login?next=<length chars> (as cross-site links can make a victim
    do), many times over: every Set-Cookie line stays under 4 KB, and a normal login in the
    same browser still completes (before: two 2000-char visits broke it for ten minutes)."""
    app = (
        _https_app(wiki, fast_redis)
        if base_url == HTTPS
        else build_app(wiki, fast_redis, "sealed-sessions")
    )
    client = app.test_client()
    long_next = "/private?q=" + "a" * length  # 2000 characters at 1989, the longest safe one
    for _ in range(MAX_PENDING + 2):
        response = _start(client, long_next, base_url)
        for header in set_cookie_headers(response):
            assert len(header.encode()) < BROWSER_LIMIT, len(header)
    login = _start(client, "/private", base_url)
    for header in set_cookie_headers(login):
        assert len(header.encode()) < BROWSER_LIMIT
    response = deliver(client, approve(wiki, login.headers["Location"], "Alice"), base_url=base_url)
    assert response.status_code == 303
    assert response.headers["Location"] == "/private"
    assert client.get("/private", base_url=base_url).status_code == 200


@pytest.mark.parametrize("length", [1200, 1989])
def test_an_over_long_next_is_replaced_by_the_default(wiki, fast_redis, length):
    """PC-2: a next too long to store is not kept: after the login the user lands on the
    app's default page instead (the login itself works)."""
    app = build_app(wiki, fast_redis, "sealed-sessions")
    client = app.test_client()
    login = _start(client, "/private?q=" + "b" * length, "http://localhost")
    response = deliver(client, approve(wiki, login.headers["Location"], "Alice"))
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_a_next_within_the_budget_is_kept(wiki, fast_redis):
    app = build_app(wiki, fast_redis, "sealed-sessions")
    client = app.test_client()
    wanted = "/private?q=" + "c" * 900
    login = _start(client, wanted, "http://localhost")
    response = deliver(client, approve(wiki, login.headers["Location"], "Alice"))
    assert response.headers["Location"] == wanted
