"""The sample tool as deployed on Toolforge (catalogue CK-*, CJ-*, HH-*, LO-3, RI-1 … RI-4,
RF-1/RF-5, DS-1): ``template_tool.create_app()`` configured from the environment exactly as
Toolforge would, against the development wiki and the private Redis."""

from __future__ import annotations

import os
import pickle
import re
import time
from pathlib import Path

import pytest
from securitykit import (
    approve,
    assert_clean_page,
    cookie_attributes,
    deliver,
    query_of,
    set_cookie_headers,
    timed,
)

import template_tool
from flask_wikimedia.devwiki import DevClient

TOOL = "fw-sectest"
CLIENT_ID = "5ec0" * 8
CLIENT_SECRET = "c0ffee" * 7
KEY_PREFIX = "9f1b2c3d4e5f6a7b" * 2
CALLBACK = f"https://{TOOL}.toolforge.org/auth/callback"
COOKIE = "__Host-session"
BOUND = 2.5  # the tool's Redis client has 1 s timeouts


@pytest.fixture
def tool_env(monkeypatch, wiki, redis_server, redis_client):
    """Toolforge's environment (``toolforge envvars``), nothing else from this machine."""
    for key in list(os.environ):
        if key.startswith("FLASK_") or key in (
            "TOOLFORGE",
            "TOOL_DATA_DIR",
            "TOOL_CONFIG",
            "REDIS_URL",
            "REDIS_KEY_PREFIX",
        ):
            monkeypatch.delenv(key)
    env = {
        "TOOLFORGE": "1",
        "FLASK_TOOL_NAME": TOOL,
        "FLASK_SECRET_KEY": "sec-tests-" + "s" * 48,
        "FLASK_WIKIMEDIA_CLIENT_ID": CLIENT_ID,
        "FLASK_WIKIMEDIA_CLIENT_SECRET": CLIENT_SECRET,
        "FLASK_WIKIMEDIA_WIKI_URL": wiki.base_url,
        "FLASK_WIKIMEDIA_TIMEOUT": "[0.5, 1.0]",
        "REDIS_URL": redis_server.url,
        "REDIS_KEY_PREFIX": KEY_PREFIX,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    wiki.add_client(DevClient(CLIENT_ID, CLIENT_SECRET, CALLBACK, grants=["basic", "editpage"]))
    return monkeypatch


@pytest.fixture
def tool(tool_env):
    return template_tool.create_app()


def browser(app, scheme: str = "https"):
    """A test client behind Toolforge's front proxy (which terminates TLS)."""
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = scheme
    client.environ_base["HTTP_REFERER"] = "https://localhost/"
    return client


def tool_login(client, wiki, username: str = "Alice"):
    start = client.get("/auth/login")
    assert start.status_code == 302, start.text[:300]
    return deliver(client, approve(wiki, start.headers["Location"], username)), start


def logout_token(client) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert match
    return match.group(1)


def tool_keys(fast_redis) -> list[bytes]:
    return sorted(fast_redis.keys("*"))


# --------------------------------------------------------------------------- cookies


def test_session_cookie_is_host_prefixed_secure_httponly_lax(tool, wiki):
    """CK-1/CK-2: on every response that sets it: ``__Host-``, Secure, HttpOnly, Lax, Path=/,
    no Domain; the pending-login cookie is Secure, HttpOnly and Lax too."""
    client = browser(tool)
    done, start = tool_login(client, wiki)
    assert done.status_code == 303
    session_headers = [h for h in set_cookie_headers(done) if h.startswith(COOKIE + "=")]
    assert session_headers
    for _name, _value, attrs in map(cookie_attributes, session_headers):
        assert "secure" in attrs and "httponly" in attrs
        assert attrs["samesite"].lower() == "lax"
        assert attrs["path"] == "/"
        assert "domain" not in attrs
    for header in set_cookie_headers(start) + set_cookie_headers(done):
        _name, _value, attrs = cookie_attributes(header)
        assert "secure" in attrs and "httponly" in attrs, header
        assert attrs.get("samesite", "").lower() == "lax", header
        assert "domain" not in attrs, header


def test_logout_deletes_the_host_cookie_with_its_flags(tool, wiki, fast_redis):
    """LO-3: the deletion header carries Secure and Path=/ (or browsers keep a __Host- cookie),
    and the session and login record are gone from Redis."""
    client = browser(tool)
    tool_login(client, wiki)
    response = client.post("/auth/logout", data={"csrf_token": logout_token(client)})
    assert response.status_code == 303
    deletions = [cookie_attributes(h) for h in set_cookie_headers(response) if h.startswith(COOKIE)]
    assert deletions
    for _name, value, attrs in deletions:
        assert value in ("", '""')
        assert "secure" in attrs and attrs["path"] == "/"
    left = [k for k in tool_keys(fast_redis) if b"gone:" not in k]  # tombstones (KN-2) stay
    assert not any(b":login:" in k or b":session:" in k for k in left)


@pytest.mark.parametrize(
    "headers",
    [
        {"Referer": "https://evil.example/page"},
        {"Referer": "https://fw-sectest.toolforge.org.evil.example/"},
        {"Origin": "https://evil.example", "Referer": "https://evil.example/"},
    ],
    ids=["cross-site-referer", "look-alike-referer", "cross-site-origin"],
)
def test_cross_site_logout_is_refused_even_with_a_valid_token(tool, wiki, headers):
    """LO-2: Flask-WTF's CSRF check also wants a same-origin Referer over https, so even a
    leaked token cannot be used from another site (SameSite=Lax is a further layer)."""
    client = browser(tool)
    tool_login(client, wiki)
    token = logout_token(client)
    response = client.post("/auth/logout", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 400
    assert client.get("/profile").status_code == 200


@pytest.mark.parametrize("scheme", ["http", ""])
def test_cookies_stay_secure_and_hsts_is_sent_whatever_the_scheme_claims(tool, wiki, scheme):
    """HH-2/HH-3: ``X-Forwarded-Proto: http`` (or none) does not drop Secure, and HSTS is
    always sent on Toolforge, which is only reachable over https."""
    client = browser(tool, scheme)
    if not scheme:
        del client.environ_base["HTTP_X_FORWARDED_PROTO"]
    start = client.get("/auth/login")
    assert start.headers["Strict-Transport-Security"].startswith("max-age=")
    for header in set_cookie_headers(start):
        assert "secure" in cookie_attributes(header)[2]


def test_anonymous_visit_sets_no_cookie_and_writes_nothing(tool, fast_redis):
    """CK-3: the front page for someone not logged in: no cookie, no Redis key."""
    client = browser(tool)
    for path, status in (("/", 200), ("/healthz", 200), ("/profile", 302), ("/admin-tools", 302)):
        response = client.get(path)
        assert response.status_code == status, path
        assert set_cookie_headers(response) == []
    assert tool_keys(fast_redis) == []


# --------------------------------------------------------------------------- headers


@pytest.fixture
def tool_pages(tool, wiki, redis_server):
    """One response of each kind the tool serves, including error pages."""
    client = browser(tool)
    pages = {"front": client.get("/"), "login": client.get("/auth/login")}
    pages["callback-400"] = client.get("/auth/callback?code=x&state=forged")
    pages["not-found-404"] = client.get("/no-such-page")
    pages["logout-get-405"] = client.get("/auth/logout")
    pages["logout-csrf-400"] = client.post("/auth/logout", data={})
    tool_login(client, wiki)
    pages["profile"] = client.get("/profile")
    pages["forbidden-403"] = client.get("/admin-tools")
    redis_server.stop()
    try:
        pages["redis-down-503"] = client.get("/profile")
    finally:
        redis_server.start()
    return pages


def test_every_page_refuses_framing_and_sniffing(tool_pages):
    """CJ-1/CJ-2: CSP ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``, nosniff and HSTS
    on every response, error pages included."""
    for name, response in tool_pages.items():
        headers = response.headers
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Strict-Transport-Security", "").startswith("max-age="), name


def test_session_pages_are_not_stored_by_shared_caches(tool_pages):
    """CK-4/TL-4: ``no-store`` and ``Vary: Cookie`` on pages; a strict Referrer-Policy."""
    for name, response in tool_pages.items():
        assert "no-store" in response.headers.get("Cache-Control", ""), name
        assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), name
    assert "Cookie" in tool_pages["profile"].headers["Vary"]


def test_error_pages_are_clean(tool_pages):
    """TL-5/RF-1: error pages have no traceback, and the 503 says when to retry."""
    for name, response in tool_pages.items():
        # The one 5xx is the page served while Redis is down, and it is a 503.
        expected_5xx = 503 if name == "redis-down-503" else None
        assert (response.status_code if response.status_code >= 500 else None) == expected_5xx
        assert_clean_page(response)
    assert tool_pages["redis-down-503"].status_code == 503
    assert tool_pages["redis-down-503"].headers.get("Retry-After")


# --------------------------------------------------------------------------- host and proxy


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
        {"X-Forwarded-For": "1.2.3.4, 5.6.7.8", "X-Forwarded-Port": "8443"},
        {"X-Forwarded-Prefix": "/evil"},
    ],
    ids=["host", "xf-host", "xf-host-proto", "xf-for-port", "xf-prefix"],
)
def test_spoofed_host_and_forwarded_headers_cannot_change_the_callback(tool, headers):
    """HH-1/HH-2: the redirect URI is the configured constant; ProxyFix trusts one hop and
    never X-Forwarded-Host/Port/Prefix."""
    response = browser(tool).get("/auth/login", headers=headers)
    assert response.status_code == 302  # the login starts, with the configured callback
    assert query_of(response.headers["Location"])["redirect_uri"] == [CALLBACK]
    assert "evil" not in response.headers["Location"].split("?")[0]


def test_trusted_hosts_setting_is_honoured(tool_env):
    """HH-1: with ``TRUSTED_HOSTS`` set, a request for any other Host is a 400."""
    tool_env.setenv("FLASK_TRUSTED_HOSTS", f'["{TOOL}.toolforge.org"]')
    app = template_tool.create_app()
    client = browser(app)
    good = client.get("/healthz", headers={"Host": f"{TOOL}.toolforge.org"})
    assert good.status_code == 200
    for host in ("evil.example", f"{TOOL}.toolforge.org.evil.example", "localhost"):
        assert client.get("/auth/login", headers={"Host": host}).status_code == 400


# --------------------------------------------------------------------------- shared Redis


@pytest.mark.parametrize("prefix", [None, "", "session:", "short", "tool:"])
def test_refuses_to_start_on_toolforge_without_a_secret_key_prefix(tool_env, prefix):
    """RI-1: a known, default or short prefix on the shared Redis is a startup error."""
    if prefix is None:
        tool_env.delenv("REDIS_KEY_PREFIX")
    else:
        tool_env.setenv("REDIS_KEY_PREFIX", prefix)
    with pytest.raises(RuntimeError, match="REDIS_KEY_PREFIX"):
        template_tool.create_app()


def test_every_key_is_under_the_secret_prefix_with_a_ttl(tool, wiki, fast_redis):
    """RI-1/RI-6: everything the tool writes is under its prefix and expires."""
    client = browser(tool)
    tool_login(client, wiki)
    client.get("/profile")
    found = tool_keys(fast_redis)
    assert found
    for key in found:
        assert key.startswith(KEY_PREFIX.encode())
        assert fast_redis.ttl(key) > 0


class Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "kind", ["pickle", "json-forgery", "garbage", "huge", "neighbour-default-prefix"]
)
def test_values_planted_in_redis_are_never_executed_or_trusted(
    tool, wiki, fast_redis, tmp_path, kind
):
    """RI-2/RI-3/RI-4: a neighbour writes under our prefix (or under the default ``session:``
    prefix, hoping we use it): never executed, never trusted, never a 500."""
    victim = browser(tool)
    tool_login(victim, wiki, "Sysop")
    sid = "z" * 43
    marker = tmp_path / "pwned"
    value = {
        "pickle": pickle.dumps(Planted(marker)),
        "json-forgery": b'{"_wikimedia_ref": "x", "csrf_token": "y"}',
        "garbage": b"\xff\xfe\x00 garbage",
        "huge": b"x" * (5 * 1024 * 1024),
        "neighbour-default-prefix": pickle.dumps(Planted(marker)),
    }[kind]
    key = ("session:" if kind == "neighbour-default-prefix" else f"{KEY_PREFIX}:session:") + sid
    fast_redis.set(key, value, ex=600)
    client = browser(tool)
    client.set_cookie(COOKIE, sid)
    front = client.get("/")
    assert front.status_code == 200
    assert "<bdi>Sysop</bdi>" not in front.text
    assert "/auth/login" in front.text  # anonymous: offered a login
    assert client.get("/profile").status_code == 302
    assert not marker.exists()


# --------------------------------------------------------------------------- Redis down


def test_redis_down_is_a_fast_503_and_the_tool_recovers(tool, wiki, redis_server):
    """RF-1/RF-4: Redis stops: a 503 page fast (the session is opened in ``ctx.push()``,
    before error handlers), health checks still answer; back up, a new login works."""
    client = browser(tool)
    tool_login(client, wiki)
    redis_server.stop()
    try:
        for path in ("/", "/profile", "/auth/callback?code=x&state=y"):
            response, elapsed = timed(lambda p=path: client.get(p))
            assert response.status_code == 503, (path, response.status_code)
            assert elapsed < BOUND
            assert_clean_page(response)
        assert client.get("/healthz").status_code == 200
    finally:
        redis_server.start()
    client.get("/")
    done, _ = tool_login(client, wiki)
    assert done.status_code == 303
    assert client.get("/profile").status_code == 200


def test_hung_redis_is_a_503_within_a_couple_of_seconds(tool, wiki, redis_server):
    """RF-5: Redis accepts connections but never answers."""
    client = browser(tool)
    tool_login(client, wiki)
    redis_server.pause()
    try:
        response, elapsed = timed(lambda: client.get("/profile"))
        assert response.status_code == 503
        assert elapsed < BOUND
    finally:
        redis_server.resume()
    assert client.get("/profile").status_code == 200


def test_many_login_starts_on_the_tool_write_nothing(tool, fast_redis):
    """DS-1: /auth/login hits without cookies do not grow the shared Redis."""
    client = browser(tool)
    started = time.monotonic()
    for _ in range(3000):
        assert client.get("/auth/login").status_code == 302
        client._cookies.clear()
    assert fast_redis.dbsize() == 0
    assert time.monotonic() - started < 30
