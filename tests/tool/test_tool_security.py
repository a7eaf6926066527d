"""Browser-facing security of the tool as configured for Toolforge: headers, cookies, proxies."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from toolkit import KEY_PREFIX, SESSION_COOKIE, TOOLFORGE_CALLBACK, redis_keys

from flask_wikimedia.testing import login
from template_tool import create_app
from template_tool.security import CONTENT_SECURITY_POLICY


def set_cookies(response) -> dict[str, str]:
    """name -> the full Set-Cookie header, for each cookie the response sets."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        found[header.split("=", 1)[0]] = header
    return found


def cookie_attributes(header: str) -> dict[str, str]:
    parsed = SimpleCookie()
    parsed.load(header)
    (morsel,) = parsed.values()
    return {k: v for k, v in morsel.items() if v}


@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/no-such-page", "/profile", "/auth/login", "/static/style.css"]
)
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_csp_allows_no_script_no_inline_and_no_framing():
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert policy["default-src"] == "'none'"
    assert "script-src" not in policy
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert policy["frame-ancestors"] == "'none'"


def test_pages_use_no_inline_script_or_style(client, devwiki):
    login(client, devwiki, "Alice")
    for path in ("/", "/profile", "/sandbox", "/admin-tools", "/nope"):
        text = client.get(path).text
        assert "<script" not in text
        assert "<style" not in text
        assert "style=" not in text


def test_pages_are_not_cached_but_static_files_may_be(client, devwiki):
    login(client, devwiki, "Alice")
    for path in ("/", "/profile", "/sandbox", "/admin-tools", "/healthz"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store", path
        assert "Cookie" in response.headers["Vary"], path
    assert "no-store" not in client.get("/static/style.css").headers.get("Cache-Control", "")


def test_session_cookie_flags_on_toolforge(client, devwiki):
    response = login(client, devwiki, "Alice")
    cookies = set_cookies(response)
    assert SESSION_COOKIE in cookies
    flags = cookie_attributes(cookies[SESSION_COOKIE])
    assert flags["secure"] is True
    assert flags["httponly"] is True
    assert flags["samesite"] == "Lax"
    assert flags["path"] == "/"
    assert "domain" not in flags


def test_pending_login_cookie_is_secure_httponly_lax(client):
    response = client.get("/auth/login")
    for header in response.headers.getlist("Set-Cookie"):
        flags = cookie_attributes(header)
        assert flags["secure"] is True
        assert flags["httponly"] is True
        assert flags["samesite"] == "Lax"


def test_cookies_stay_secure_when_the_request_claims_http(client, devwiki):
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "http"
    client.environ_base["HTTP_REFERER"] = "http://localhost/"
    response = login(client, devwiki, "Alice")
    assert cookie_attributes(set_cookies(response)[SESSION_COOKIE])["secure"] is True


@pytest.mark.parametrize(("scheme", "secure"), [("http", False), ("https", True)])
def test_secure_flag_follows_the_scheme_when_not_forced(
    toolforge_env, clean_env, redis_client, devwiki, scheme, secure
):
    from toolkit import register_tool

    clean_env.setenv("FLASK_SESSION_COOKIE_SECURE", "false")
    register_tool(devwiki, TOOLFORGE_CALLBACK)
    client = create_app().test_client()
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = scheme
    response = login(client, devwiki, "Alice")
    header = set_cookies(response)["session"]  # no __Host- prefix without Secure
    assert cookie_attributes(header).get("secure", False) is secure


def test_anonymous_visit_sets_no_cookie_and_writes_nothing(client, redis_client):
    for path in ("/", "/profile", "/healthz", "/static/style.css", "/no-such-page"):
        assert "Set-Cookie" not in client.get(path).headers
    assert redis_keys(redis_client) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
    ],
)
def test_spoofed_host_does_not_change_the_callback_url(client, headers):
    response = client.get("/auth/login", headers=headers)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["redirect_uri"] == [TOOLFORGE_CALLBACK]


def test_redis_holds_only_sealed_values_with_ttls_under_the_prefix(client, devwiki, redis_client):
    login(client, devwiki, "Alice")
    client.get("/sandbox")  # creates a CSRF token in the session
    keys = redis_keys(redis_client)
    assert keys
    lifetime = client.application.permanent_session_lifetime.total_seconds()
    for key in keys:
        assert key.startswith(KEY_PREFIX.encode() + b":"), key
        ttl = redis_client.ttl(key)
        assert 0 < ttl <= max(lifetime, 31 * 86400), key
        if redis_client.type(key) == b"string":
            value = redis_client.get(key)
            assert b"Alice" not in value
            assert b"csrf" not in value
