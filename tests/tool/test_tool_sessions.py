"""Redis-backed sessions (flask_wikimedia.sessions) in the tool: planted data, Redis outages,
hung Redis, failures while saving, and no resurrection of a deleted session."""

from __future__ import annotations

import builtins
import logging
import pickle
import time

import pytest
from flask import session
from toolkit import KEY_PREFIX, SESSION_COOKIE

from flask_wikimedia.testing import login

SESSION_PREFIX = KEY_PREFIX + ":session:"


def store_key(app, sid: str) -> str:
    """The Redis key of session ``sid``: a keyed digest of it (DESIGN invariant 11)."""
    return app.session_interface._get_store_id(sid)


PLANTED_SID = "P" * 43


class Evil:
    def __reduce__(self):
        return (exec, ("import builtins; builtins.FW_PWNED = True",))


def session_id(client) -> str:
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return cookie.value


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xfe garbage",
        b'{"_wikimedia_ref": "x", "csrf_token": "chosen"}',  # Flask-Session 0.8 accepts this
        b"\x81\xa1a\xa1b",  # valid msgpack, but not sealed by us
        pickle.dumps(Evil()),  # Flask-Session 0.8 runs this
        b"x" * (2 * 1024 * 1024),
        b"",
    ],
    ids=["garbage", "json", "msgpack", "pickle", "huge", "empty"],
)
def test_planted_session_values_read_as_no_session(tool_app, redis_client, caplog, value):
    @tool_app.get("/_test/remember")
    def remember() -> str:
        seen = sorted(key for key in session if key != "_permanent")
        session["visited"] = True
        return ",".join(seen) or "empty"

    client = tool_app.test_client()
    redis_client.set(store_key(tool_app, PLANTED_SID), value)
    client.set_cookie(SESSION_COOKIE, PLANTED_SID)
    caplog.set_level(logging.WARNING, logger="flask_wikimedia.sessions")
    page = client.get("/")
    assert page.status_code == 200
    assert "Log in with Wikimedia" in page.text
    response = client.get("/_test/remember")
    assert response.text == "empty"
    assert not getattr(builtins, "FW_PWNED", False)
    if value:
        assert "discarded a session value" in caplog.text
    assert "garbage" not in caplog.text
    assert "chosen" not in caplog.text
    # The planted id is never adopted: the session is written under a fresh one.
    assert session_id(client) != PLANTED_SID
    assert redis_client.get(store_key(tool_app, PLANTED_SID)) == value


def test_a_session_moved_to_another_key_does_not_open(client, devwiki, redis_client):
    login(client, devwiki, "Alice")
    sid = session_id(client)
    redis_client.set(
        store_key(client.application, PLANTED_SID),
        redis_client.get(store_key(client.application, sid)),
    )
    client.set_cookie(SESSION_COOKIE, PLANTED_SID)
    assert "Log in with Wikimedia" in client.get("/").text


def test_cookie_that_is_not_a_session_id_is_ignored(client, redis_client):
    client.set_cookie(SESSION_COOKIE, "../../etc:passwd*")
    assert client.get("/").status_code == 200
    assert redis_client.exists(store_key(client.application, "../../etc:passwd*")) == 0


def test_session_id_rotates_at_login_and_logout(client, devwiki, redis_client):
    client.get("/sandbox")
    login(client, devwiki, "Alice")
    first = session_id(client)
    login(client, devwiki, "Sysop")
    second = session_id(client)
    assert second != first
    assert redis_client.exists(store_key(client.application, first)) == 0
    page = client.get("/")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/auth/logout", data={"csrf_token": token})
    assert redis_client.exists(store_key(client.application, second)) == 0


def test_redis_stopped_gives_a_fast_503_page(client, devwiki, redis_server):
    login(client, devwiki, "Alice")
    redis_server.stop()
    started = time.monotonic()
    response = client.get("/profile")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 2.0
    assert "Temporarily unavailable" in response.text
    assert '<link rel="stylesheet" href="/static/style.css">' in response.text
    assert "Traceback" not in response.text
    assert response.headers["Retry-After"]
    assert response.headers["Cache-Control"] == "no-store"
    # Health checks and the stylesheet of the error page still work.
    assert client.get("/healthz").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    # A login cannot finish without the store, and says so.
    assert client.get("/auth/callback?code=x&state=y").status_code == 503


def test_redis_stopped_post_is_503_not_a_csrf_error(client, devwiki, redis_server):
    login(client, devwiki, "Alice")
    redis_server.stop()
    assert client.post("/sandbox", data={"line": "x"}).status_code == 503
    assert client.post("/auth/logout").status_code == 503


def test_redis_hung_gives_a_503_within_two_seconds(client, devwiki, redis_server):
    login(client, devwiki, "Alice")
    redis_server.pause()
    try:
        started = time.monotonic()
        response = client.get("/profile")
        elapsed = time.monotonic() - started
        health = client.get("/healthz")
    finally:
        redis_server.resume()
    assert response.status_code == 503
    assert elapsed < 2.5
    assert "Temporarily unavailable" in response.text
    assert health.status_code == 200
    # Nothing was lost: once Redis answers again the user is still logged in.
    assert "Hello, <bdi>Alice</bdi>" in client.get("/").text


def test_redis_failing_while_saving_gives_the_503_page(tool_app, devwiki, redis_server):
    @tool_app.get("/_test/write-after-outage")
    def write_after_outage() -> str:
        session["note"] = "written"
        redis_server.stop()
        return "written"

    client = tool_app.test_client()
    client.environ_base["HTTP_REFERER"] = "https://localhost/"
    login(client, devwiki, "Alice")
    response = client.get("/_test/write-after-outage")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.text
    assert "written" not in response.text
    assert response.headers["Content-Security-Policy"]


def test_a_request_in_flight_cannot_resurrect_a_deleted_session(tool_app, devwiki, redis_client):
    @tool_app.get("/_test/slow-writer")
    def slow_writer() -> str:
        session.get("x")  # loaded before ...
        redis_client.delete(store_key(tool_app, session.sid))  # ... a logout elsewhere deletes it
        session["late"] = "write"
        return "done"

    client = tool_app.test_client()
    client.environ_base["HTTP_REFERER"] = "https://localhost/"
    login(client, devwiki, "Alice")
    sid = session_id(client)
    assert client.get("/_test/slow-writer").text == "done"
    assert redis_client.exists(store_key(tool_app, sid)) == 0


def test_health_check_writes_nothing_to_redis(client, devwiki, redis_client):
    login(client, devwiki, "Alice")
    key = store_key(client.application, session_id(client))
    redis_client.expire(key, 1000)
    response = client.get("/healthz")
    assert "Set-Cookie" not in response.headers
    assert redis_client.ttl(key) <= 1000


def test_session_lifetime_is_extended_by_use(client, devwiki, redis_client):
    login(client, devwiki, "Alice")
    key = store_key(client.application, session_id(client))
    redis_client.expire(key, 1000)
    client.get("/")
    assert redis_client.ttl(key) > 1000


def write_commands(redis_client) -> dict[str, int]:
    stats = redis_client.info("commandstats")
    return {
        name: stat["calls"]
        for name, stat in stats.items()
        if name in ("cmdstat_set", "cmdstat_expire", "cmdstat_hset", "cmdstat_del")
    }


def test_protected_pages_write_nothing_to_redis_while_the_session_is_fresh(
    client, devwiki, redis_client
):
    """One round trip per protected request (session and login record in one script), no
    write-back: the session's lifetime is only extended once it has run down by more than 1%."""
    login(client, devwiki, "Alice")
    client.get("/profile")
    redis_client.config_resetstat()
    for _ in range(5):
        assert client.get("/profile").status_code == 200
    assert write_commands(redis_client) == {}
    # (commandstats counts the commands a script runs too; tests/perf counts round trips)
    assert redis_client.info("commandstats")["cmdstat_evalsha"]["calls"] == 5  # GET + PTTL
    assert redis_client.info("commandstats")["cmdstat_hmget"]["calls"] == 5  # login record
