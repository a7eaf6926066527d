"""Sessions, logout and cookies: fixation (SF-*), logout (LO-*), cookie flags and caching
(CK-*), in each of the three session setups a tool can use."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from securitykit import (
    PENDING_COOKIE,
    approve,
    build_app,
    cookie_attributes,
    copy_cookies,
    csrf_token,
    deliver,
    is_logged_in,
    keys,
    log_in,
    log_out,
    login_key,
    login_keys,
    raw_values,
    session_key,
    session_ref,
    set_cookie_headers,
)

from flask_wikimedia.pending import HOST_COOKIE_NAME
from flask_wikimedia.state import get_state

SERVER_SIDE = ("flask-session", "sealed-sessions")


def setup_of(app) -> str:
    from flask_session.redis import RedisSessionInterface

    from flask_wikimedia.sessions import SafeRedisSessionInterface

    interface = app.session_interface
    if isinstance(interface, SafeRedisSessionInterface):
        return "sealed-sessions"
    if isinstance(interface, RedisSessionInterface):
        return "flask-session"
    return "cookie-session"


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


# --------------------------------------------------------------------------- SF


def test_session_id_rotates_at_login_and_the_old_one_is_anonymous(any_app, wiki, fast_redis):
    """SF-1: a new session at login; the pre-login session is gone from Redis and from use."""
    client = any_app.test_client()
    client.get("/probe/remember")
    before = session_cookie(client)
    assert before
    log_in(client, wiki, "Alice")
    after = session_cookie(client)
    assert after and after != before
    if setup_of(any_app) in SERVER_SIDE:
        assert not fast_redis.exists(session_key(any_app, before))
        assert fast_redis.exists(session_key(any_app, after))
    client.set_cookie("session", before)
    assert not is_logged_in(client)


@pytest.mark.parametrize("chosen", ["attacker-chosen-session-id-0000", "A" * 43])
@pytest.mark.parametrize("setup", SERVER_SIDE)
def test_attacker_chosen_session_id_is_never_adopted(wiki, fast_redis, setup, chosen):
    """SF-2: an id planted in the victim's browser is replaced, and never created in Redis."""
    app = build_app(wiki, fast_redis, setup)
    client = app.test_client()
    client.set_cookie("session", chosen)
    client.get("/probe/remember")
    log_in(client, wiki, "Alice")
    assert session_cookie(client) != chosen
    assert not fast_redis.exists(session_key(app, chosen))
    attacker = app.test_client()
    attacker.set_cookie("session", chosen)
    assert not is_logged_in(attacker)


def test_switching_user_in_one_browser_drops_the_first_login(any_app, wiki, fast_redis):
    """SF-3: logging in as B over A's login leaves nothing of A."""
    client = any_app.test_client()
    log_in(client, wiki, "Alice")
    first_ref = session_ref(client)
    log_in(client, wiki, "Sysop")
    second_ref = session_ref(client)
    assert first_ref != second_ref
    assert not fast_redis.exists(login_key(any_app, first_ref))
    assert len(login_keys(fast_redis)) == 1
    assert client.get("/private").text == "private page of Sysop"


def test_session_ids_and_login_references_are_256_bit(any_app, wiki):
    """SF-5: ids from ``secrets``: at least 32 random bytes, URL-safe."""
    client = any_app.test_client()
    log_in(client, wiki, "Alice")
    ref = session_ref(client)
    assert ref is not None and len(ref) >= 43
    if setup_of(any_app) in SERVER_SIDE:
        sid = session_cookie(client)
        assert sid is not None and len(sid) >= 43
        assert set(sid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_tampered_signed_cookie_is_anonymous(wiki, fast_redis):
    """Flask's cookie session: a changed byte or another app's signature reads as no session."""
    app = build_app(wiki, fast_redis, "cookie-session")
    client = app.test_client()
    log_in(client, wiki, "Alice")
    value = session_cookie(client)
    assert value
    body, _, signature = value.rpartition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    client.set_cookie("session", f"{body}.{flipped}")
    assert not is_logged_in(client)
    # The same login data signed by another tool (another SECRET_KEY) is not ours.
    other = build_app(wiki, fast_redis, "cookie-session", SECRET_KEY="another-tool-" + "s" * 40)
    foreign = other.test_client()
    log_in(foreign, wiki, "Sysop")
    client.set_cookie("session", session_cookie(foreign))
    assert not is_logged_in(client)


@pytest.mark.parametrize("setup", SERVER_SIDE)
def test_session_id_of_another_tool_on_the_same_redis_is_anonymous(wiki, fast_redis, setup):
    """A session id valid for a neighbour (another key prefix) means nothing here."""
    ours = build_app(wiki, fast_redis, setup)
    theirs = build_app(
        wiki,
        fast_redis,
        "flask-session",
        session_prefix="neighbour:session:",
        WIKIMEDIA_KEY_PREFIX="neighbour:wikimedia:",
    )
    neighbour = theirs.test_client()
    log_in(neighbour, wiki, "Sysop")
    client = ours.test_client()
    client.set_cookie("session", session_cookie(neighbour))
    assert not is_logged_in(client)


# --------------------------------------------------------------------------- LO


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_logout_by_get_does_nothing(any_app, wiki, method):
    """LO-1: a link or an image cannot log anyone out."""
    client = any_app.test_client()
    log_in(client, wiki, "Alice")
    response = client.open("/auth/logout", method=method)
    assert response.status_code == 405
    assert is_logged_in(client)


def test_logout_needs_this_sessions_csrf_token(any_app, wiki):
    """LO-2: no token, a wrong one, or another session's: 400 and still logged in."""
    client = any_app.test_client()
    log_in(client, wiki, "Alice")
    other = any_app.test_client()
    log_in(other, wiki, "Sysop")
    foreign = csrf_token(other)
    cross_site = {"Origin": "https://evil.example", "Referer": "https://evil.example/page"}
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "wrong"}, {"csrf_token": foreign}):
        response = client.post("/auth/logout", data=data, headers=cross_site)
        assert response.status_code == 400
        # Its own error, not "Login failed": the user is still logged in.
        assert b"Logout failed" in response.data and b"Login failed" not in response.data
        assert is_logged_in(client)
    assert log_out(client).status_code == 303
    assert not is_logged_in(client)
    assert is_logged_in(other)


def test_logout_removes_every_trace_server_side(any_app, wiki, fast_redis):
    """LO-3/LO-5: the login record and the session are gone, the old cookie is anonymous,
    and no token is left anywhere in Redis (the wiki has no revocation endpoint)."""
    client = any_app.test_client()
    log_in(client, wiki, "Alice")
    ref = session_ref(client)
    record = get_state(any_app).store.get(ref).record
    old = session_cookie(client)
    assert log_out(client).status_code == 303
    assert login_keys(fast_redis) == []
    if setup_of(any_app) in SERVER_SIDE:
        assert not fast_redis.exists(session_key(any_app, old))
    raw = raw_values(fast_redis)
    assert record.access_token.encode() not in raw
    assert record.refresh_token.encode() not in raw
    replay = any_app.test_client()
    replay.set_cookie("session", old)
    assert not is_logged_in(replay)


def test_logout_cookie_deletion_matches_a_host_prefixed_cookie(wiki, fast_redis):
    """LO-3: a ``__Host-`` cookie is deleted with ``Secure`` and ``Path=/``, or browsers keep it
    (Flask-Session 0.8 omits ``Secure`` when deleting; the sealed sessions do not)."""
    app = build_app(
        wiki,
        fast_redis,
        "sealed-sessions",
        SESSION_COOKIE_NAME="__Host-session",
        SESSION_COOKIE_SECURE=True,
        WIKIMEDIA_REDIRECT_URI="http://localhost/auth/callback",
    )
    client = app.test_client()
    log_in(client, wiki, "Alice")
    token = csrf_token(client)
    response = client.post("/auth/logout", data={"csrf_token": token})
    assert response.status_code == 303
    deletions = [
        cookie_attributes(h) for h in set_cookie_headers(response) if h.startswith("__Host-")
    ]
    assert deletions, set_cookie_headers(response)
    for _name, value, attrs in deletions:
        assert value in ("", '""')
        assert "secure" in attrs
        assert attrs.get("path") == "/"
        assert "domain" not in attrs


def test_request_in_flight_during_logout_cannot_bring_the_login_back(any_app, wiki, fast_redis):
    """LO-4: a slow request that loaded the login before the logout and writes the session
    after it does not resurrect the login (nor, with sealed sessions, the session)."""
    client = any_app.test_client()
    log_in(client, wiki, "Alice")
    token = csrf_token(client)
    old_sid = session_cookie(client)
    slow = any_app.test_client()
    copy_cookies(client, slow)
    result: dict[str, str] = {}
    worker = threading.Thread(target=lambda: result.update(text=slow.get("/probe/slow").text))
    worker.start()
    assert any_app.config["PROBE_LOADED"].wait(5)
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 303
    any_app.config["PROBE_GATE"].set()
    worker.join(10)
    assert result["text"] == "Alice"  # it did see the login while it lasted
    assert login_keys(fast_redis) == []
    assert not is_logged_in(slow)
    if setup_of(any_app) == "sealed-sessions":
        assert not fast_redis.exists(session_key(any_app, old_sid))


def test_refresh_in_flight_during_logout_cannot_write_the_login_back(wiki, fast_redis):
    """LO-4/RT-2: a refresh that started before the logout finishes after it; its
    compare-and-set write finds the record gone and does not recreate it."""
    app = build_app(wiki, fast_redis, "flask-session", WIKIMEDIA_TIMEOUT=(1.0, 5.0))
    client = app.test_client()
    log_in(client, wiki, "Alice")
    token = csrf_token(client)
    ref = session_ref(client)
    store = get_state(app).store
    stored = store.get(ref)
    # The access token is about to expire: the next request refreshes it.
    store.replace(ref, stored.version, dataclasses.replace(stored.record, expires_at=time.time()))
    wiki.inject_fault("token", "hang", delay=1.0)
    slow = app.test_client()
    copy_cookies(client, slow)
    result: dict[str, int] = {}
    worker = threading.Thread(target=lambda: result.update(status=slow.get("/private").status_code))
    worker.start()
    deadline = time.monotonic() + 5
    while wiki.calls["token:refresh_token"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wiki.calls["token:refresh_token"] == 1
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 303
    worker.join(10)
    assert result["status"] == 302  # the in-flight request ended logged out
    assert not fast_redis.exists(login_key(app, ref))
    assert login_keys(fast_redis) == []
    assert not is_logged_in(slow)


# --------------------------------------------------------------------------- CK


def _pending_cookie_headers(response, name: str = PENDING_COOKIE) -> list[dict[str, str]]:
    return [
        cookie_attributes(h)[2] for h in set_cookie_headers(response) if h.startswith(name + "=")
    ]


@pytest.mark.parametrize("base_url", ["https://localhost", "http://localhost"])
def test_pending_login_cookie_flags_on_every_path(wiki, fast_redis, base_url):
    """CK-1/CK-2: the pending-login cookie is HttpOnly, SameSite=Lax (Strict would be dropped
    on the wiki's redirect back), host-only, and Secure whenever the session cookie is (https,
    or SESSION_COOKIE_SECURE); on https it is a ``__Host-`` cookie (so ``Path=/``), on http
    scoped to /auth."""
    secure = base_url.startswith("https")
    name = HOST_COOKIE_NAME if secure else PENDING_COOKIE
    app = build_app(
        wiki,
        fast_redis,
        "sealed-sessions",
        SESSION_COOKIE_SECURE=base_url.startswith("https"),
        WIKIMEDIA_REDIRECT_URI="http://localhost/auth/callback",
    )
    client = app.test_client()
    responses = []
    login = client.get("/auth/login?next=/", base_url=base_url)
    responses.append(login)
    callback = approve(wiki, login.headers["Location"], "Alice")
    responses.append(deliver(client, callback, base_url=base_url))  # success
    client.get("/auth/login", base_url=base_url)
    responses.append(client.get("/auth/callback?code=x&state=forged", base_url=base_url))
    responses.append(client.get("/auth/callback?error=access_denied", base_url=base_url))
    seen = 0
    for response in responses:
        for attrs in _pending_cookie_headers(response, name):
            seen += 1
            assert "httponly" in attrs
            assert attrs.get("samesite", "").lower() == "lax"
            assert attrs.get("path") == ("/" if secure else "/auth")
            assert "domain" not in attrs
            assert ("secure" in attrs) == base_url.startswith("https")
    assert seen >= 3


def test_anonymous_visitors_get_no_cookie_and_no_redis_key(any_app, fast_redis):
    """CK-3: reading pages, even protected ones, creates nothing."""
    client = any_app.test_client()
    for path, status in (("/", 200), ("/me", 200), ("/private", 302), ("/api/whoami", 302)):
        response = client.get(path)
        assert response.status_code == status, path
        assert set_cookie_headers(response) == []
    assert keys(fast_redis) == []


def test_login_start_writes_only_the_pending_cookie(any_app, fast_redis):
    """CK-3/DS-1: /auth/login sets one small sealed cookie and writes nothing to Redis."""
    response = any_app.test_client().get("/auth/login")
    cookies = [cookie_attributes(h) for h in set_cookie_headers(response)]
    assert [name for name, _, _ in cookies] == [PENDING_COOKIE]
    assert len(cookies[0][1]) < 1024
    assert keys(fast_redis) == []


def test_session_dependent_responses_are_not_cached_by_shared_caches(any_app, wiki):
    """CK-4: ``Vary: Cookie`` on pages that read the session; ``no-store`` on every auth
    response."""
    client = any_app.test_client()
    assert "no-store" in client.get("/auth/login").headers["Cache-Control"]
    response = log_in(client, wiki, "Alice")
    assert "no-store" in response.headers["Cache-Control"]
    page = client.get("/private")
    assert "Cookie" in page.headers.get("Vary", "")
    refused = client.get("/auth/callback?code=x&state=forged")
    assert "no-store" in refused.headers["Cache-Control"]
    assert "no-store" in log_out(client).headers["Cache-Control"]
