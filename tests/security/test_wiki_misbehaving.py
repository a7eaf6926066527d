"""The wiki misbehaving (catalogue PE-*, RT-*, AZ-*, SF-4, DS-4): every answer a broken,
slow or hostile wiki can give is a clear page within a bounded time, and nothing is stored.

The app talks to a :class:`securitykit.ScriptedWiki`, a real HTTP server in front of the
development wiki that passes requests through unless told to misbehave.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from pathlib import Path

import pytest
from apps import CLIENT_SECRET, USER_AGENT
from securitykit import (
    CountingServer,
    answer_json,
    answer_raw,
    approve,
    assert_clean_page,
    begin,
    build_app,
    deliver,
    edit_upstream_json,
    get_in_parallel,
    hang,
    is_logged_in,
    keys,
    log_in,
    login_keys,
    run_with_deadline,
    session_ref,
    state_of,
    trickle,
)

from flask_wikimedia import requires_right
from flask_wikimedia.api import user_session
from flask_wikimedia.state import get_state

PACKAGE = Path(__file__).resolve().parents[2] / "flask_wikimedia"
#: Configured timeouts are (0.5, 1.0): every failure must be over well within this.
BOUND = 3.0


def nothing_stored(redis_client) -> bool:
    """No login record and no session: only used-state markers may exist."""
    return all(b":once:" in key for key in keys(redis_client))


@pytest.fixture
def clock(monkeypatch):
    """Move the tool's clock forward (the wiki's tokens live hours, so it does not mind)."""
    real = time.time
    offset = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def advance(seconds: float) -> None:
        offset[0] += seconds

    return advance


def add_fresh_right_route(app) -> None:
    @app.get("/probe/fresh-edit")
    @requires_right("edit", fresh=True)
    def fresh_edit() -> str:
        return "edit allowed"

    @app.get("/probe/api")
    def probe_api() -> dict:
        return user_session().get_json(action="query", meta="userinfo")["query"]


def make_due(app, client) -> None:
    """Make the login's access token due for a refresh (as after four hours)."""
    store = get_state(app).store
    ref = session_ref(client)
    stored = store.get(ref)
    store.replace(ref, stored.version, dataclasses.replace(stored.record, expires_at=time.time()))


# --------------------------------------------------------------------------- PE at the callback

TOKEN_FAULTS = {
    "http-500-html": (answer_raw(b"<h1>Internal error</h1>", 500), 503),
    "http-503-varnish": (
        answer_raw(b"<html>Our servers are busy</html>", 503, Retry_After="5"),
        503,
    ),
    "hang": ("hang", 503),
    "200-html-garbage": (answer_raw(b"<html>oops", 200), 502),
    "malformed-json": (answer_raw(b'{"access_token": ', 200, "application/json"), 502),
    "json-list": (answer_json([1, 2, 3]), 502),
    "200-with-error": (answer_json({"error": "invalid_grant"}), 400),
    "missing-access-token": (answer_json({"token_type": "Bearer", "expires_in": 3600}), 502),
    "access-token-not-a-string": (answer_json({"access_token": 12345, "expires_in": 3600}), 502),
    "expires-in-garbage": (answer_json({"access_token": "a.b.c", "expires_in": "soon"}), 502),
    "refresh-token-not-a-string": (
        answer_json({"access_token": "a.b.c", "refresh_token": ["x"], "expires_in": 60}),
        502,
    ),
    "oversized": (answer_raw(b'{"access_token": "' + b"x" * 3_000_000 + b'"}', 200), 502),
    "redirect-307": ("redirect", 502),
    "nonstandard-error": (
        answer_json({"error": "mwoauth-invalid-authorization", "message": "Nope"}, 400),
        400,
    ),
    "mediawiki-139-error": (
        answer_json({"error": "invalid_request", "message": "The refresh token is invalid."}, 401),
        400,
    ),
    "invalid-client": (answer_json({"error": "invalid_client"}, 401), 400),
    "http-404-html": (answer_raw(b"<h1>Not Found</h1>", 404), 502),
    "empty-200": (answer_raw(b"", 200, "application/json"), 502),
}

PROFILE_FAULTS = {
    "http-500": (answer_raw(b"<h1>Internal error</h1>", 500), 503),
    "hang": ("hang", 503),
    "garbage": (answer_raw(b"<html>oops", 200), 502),
    "malformed-json": (answer_raw(b'{"sub": ', 200, "application/json"), 502),
    "json-list": (answer_json(["sub", "1"]), 502),
    "wrong-types": (
        answer_json({"sub": [], "username": 5, "groups": "sysop", "blocked": "no"}),
        502,
    ),
    "groups-not-a-list": (edit_upstream_json(lambda p: p.update(groups="sysop")), 502),
    "blocked-not-a-bool": (edit_upstream_json(lambda p: p.update(blocked="false")), 502),
    "editcount-a-string": (edit_upstream_json(lambda p: p.update(editcount="42")), 502),
    "missing-username": (edit_upstream_json(lambda p: p.pop("username")), 502),
    "missing-sub": (edit_upstream_json(lambda p: p.pop("sub")), 502),
    "oversized": (answer_raw(b'{"sub": "' + b"1" * 3_000_000 + b'"}', 200), 502),
    "redirect": ("redirect", 502),
    "token-refused-401": (
        answer_json({"error": "invalid_token"}, 401, **{"WWW-Authenticate": "Bearer"}),
        502,
    ),
    "http-404": (answer_raw(b"<h1>Not Found</h1>", 404), 502),
}


def _handler(spec, scripted, evil):
    if spec == "hang":
        return hang(scripted.release, 5.0)
    if spec == "redirect":
        return answer_raw(b"", 307, Location=f"{evil.root}/steal")
    return spec


@pytest.fixture
def evil():
    server = CountingServer()
    yield server
    server.stop()


def _login_with_fault(scripted_app, scripted, wiki, evil, endpoint: str, spec):
    """A login whose ``endpoint`` call meets ``spec``: (client, callback response, seconds)."""
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    scripted.on(endpoint, _handler(spec, scripted, evil))
    started = time.monotonic()
    response = deliver(client, callback)
    return client, response, time.monotonic() - started


@pytest.mark.parametrize("fault", TOKEN_FAULTS, ids=str)
def test_token_endpoint_trouble_is_a_clear_page_in_bounded_time(
    scripted_app, scripted, wiki, fast_redis, evil, fault
):
    """PE-3/PE-4/PE-5/PE-6/PE-7 and non-standard error codes, at the code exchange."""
    spec, status = TOKEN_FAULTS[fault]
    client, response, elapsed = _login_with_fault(scripted_app, scripted, wiki, evil, "token", spec)
    assert response.status_code == status
    assert elapsed < BOUND
    assert_clean_page(response, CLIENT_SECRET)
    assert response.headers["Cache-Control"] == "no-store"
    if status == 503:
        assert response.headers.get("Retry-After")
    assert evil.hits == []  # PE-7: nothing followed the redirect
    assert len(scripted.calls("token")) == 1  # PE-9: no retry loop
    assert not is_logged_in(client)
    assert nothing_stored(fast_redis)


@pytest.mark.parametrize("fault", PROFILE_FAULTS, ids=str)
def test_profile_trouble_at_login_is_a_clear_page_in_bounded_time(
    scripted_app, scripted, wiki, fast_redis, evil, fault
):
    """PE-4/PE-5/PE-6 and malformed profiles, at the profile read that ends a login."""
    spec, status = PROFILE_FAULTS[fault]
    client, response, elapsed = _login_with_fault(
        scripted_app, scripted, wiki, evil, "profile", spec
    )
    assert response.status_code == status
    assert elapsed < BOUND
    assert_clean_page(response)
    assert evil.hits == []
    assert not is_logged_in(client)
    assert nothing_stored(fast_redis)


@pytest.mark.parametrize(
    ("sub", "status"),
    [
        # An id that names no central account: the account is refused (403).
        *[(sub, 403) for sub in ("0", 0, "-3", "abc", "1.5", "١٢")],
        # No id at all, or not a string or number: the profile is unusable (502).
        *[(sub, 502) for sub in ("", True, None, [])],
    ],
    ids=repr,
)
def test_profile_without_a_usable_central_id_is_refused(
    scripted_app, scripted, wiki, fast_redis, sub, status
):
    """SF-4: identity is the central user id; ``"0"`` (not attached to a central account),
    missing, empty, negative or non-numeric ids never make a login."""
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    scripted.on("profile", edit_upstream_json(lambda p: p.update(sub=sub)))
    response = deliver(client, callback)
    assert response.status_code == status
    assert not is_logged_in(client)
    assert nothing_stored(fast_redis)


def test_hidden_user_is_refused_and_nothing_is_stored(client, wiki, fast_redis):
    """SF-4: a suppressed account's profile has only ``sub`` and ``blocked``."""
    response = log_in(client, wiki, "Hidden")
    assert response.status_code == 403
    assert "Login refused" in response.text
    assert not is_logged_in(client)
    assert nothing_stored(fast_redis)


@pytest.mark.parametrize("token_type", ["MAC", "N_A"])
def test_token_type_other_than_bearer_is_refused(
    scripted_app, scripted, wiki, fast_redis, token_type
):
    """PE-4: a token we would not know how to use is not stored."""
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    scripted.on("token", edit_upstream_json(lambda t: t.update(token_type=token_type)))
    response = deliver(client, callback)
    assert response.status_code == 502
    assert nothing_stored(fast_redis)


@pytest.mark.parametrize(
    "field",
    [{"expires_in": [None]}, {"expires_in": {"s": 1}}, {"expires_at": [1]}],
    ids=["expires_in-list", "expires_in-object", "expires_at-list"],
)
@pytest.mark.parametrize("moment", ["login", "refresh"])
def test_token_answer_with_an_unusable_expiry_is_a_502(
    scripted_app, scripted, wiki, fast_redis, field, moment
):
    """PE-4 (found by fuzzing): a token answer whose expiry is not a number is garbage."""
    client = scripted_app.test_client()
    if moment == "login":
        callback = approve(wiki, begin(client), "Alice")
        scripted.on("token", edit_upstream_json(lambda t: t.update(field)))
        assert deliver(client, callback).status_code == 502
        assert nothing_stored(fast_redis)
    else:
        log_in(client, wiki, "Alice")
        make_due(scripted_app, client)
        scripted.on("token", edit_upstream_json(lambda t: t.update(field)))
        assert client.get("/private").status_code == 502
        assert len(login_keys(fast_redis)) == 1


def test_token_type_is_compared_case_insensitively(scripted_app, scripted, wiki):
    """PE-4: ``bearer`` is Bearer (RFC 6749 §7.1)."""
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    scripted.on("token", edit_upstream_json(lambda t: t.update(token_type="bearer")))
    assert deliver(client, callback).status_code == 303


def test_trickling_wiki_cannot_hold_a_worker(scripted_app, scripted, wiki):
    """PE-5/DS-5: one byte every 0.2 s never trips a 1 s read timeout; the call must still end
    within a couple of seconds with a 503."""
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    release = threading.Event()
    scripted.on("token", trickle(release, 0.2))
    try:
        finished, result = run_with_deadline(lambda: deliver(client, callback), BOUND)
    finally:
        release.set()
    assert finished, "the callback was still reading the trickle after the deadline"
    assert result.status_code == 503


def test_tls_verification_is_always_on(fast_redis, wiki):
    """PE-8: a wiki with a self-signed certificate is unreachable, not trusted."""
    tls = CountingServer(ssl_context="adhoc")
    try:
        app = build_app(
            wiki,
            fast_redis,
            "flask-session",
            WIKIMEDIA_WIKI_URL=tls.root + "/w",
            WIKIMEDIA_TIMEOUT=(0.5, 1.0),
        )
        client = app.test_client()
        state = state_of(begin(client))
        response = client.get(f"/auth/callback?code=x&state={state}")
        assert response.status_code == 503
        assert tls.hits == []  # the handshake failed: no request, no code, no secret sent
    finally:
        tls.stop()


def test_nothing_turns_tls_verification_off():
    """PE-8: no ``verify=False`` and no insecure-transport switch anywhere in the package."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"verify\s*=\s*False", text), path
        assert "INSECURE_TRANSPORT" not in text, path


def test_every_outbound_call_carries_the_policy_user_agent(scripted_app, scripted, wiki):
    """PE-9: the tool's agent (with contact) plus ours, on token, profile and API calls."""
    add_fresh_right_route(scripted_app)
    client = scripted_app.test_client()
    log_in(client, wiki, "Alice")
    assert client.get("/probe/api").status_code == 200
    make_due(scripted_app, client)
    assert client.get("/private").status_code == 200
    endpoints = {s.endpoint for s in scripted.seen}
    assert {"token", "profile", "api"} <= endpoints
    for request in scripted.seen:
        agent = request.headers.get("User-Agent", "")
        assert agent.startswith(USER_AGENT)
        assert "Flask-Wikimedia/" in agent


def test_rate_limited_token_endpoint_is_a_503_with_retry_after(scripted_app, scripted, wiki):
    """PE-9: Wikimedia's API gateway answers 429; try again later, no retry loop."""
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    body = {"httpCode": 429, "httpReason": "Too Many Requests", "error": "rate_limited"}
    scripted.on("token", answer_json(body, 429, **{"Retry-After": "30"}))
    response = deliver(client, callback)
    assert len(scripted.calls("token")) == 1
    assert response.status_code == 503
    assert response.headers.get("Retry-After")


def test_invalid_client_is_logged_for_the_operator_without_the_secret(wiki, fast_redis, caplog):
    """PE-3: a wrong consumer secret is a misconfiguration: an ERROR log line, a 400 page."""
    app = build_app(wiki, fast_redis, "flask-session", WIKIMEDIA_CLIENT_SECRET="wrong-" + "9" * 34)
    client = app.test_client()
    caplog.set_level(logging.INFO)
    response = log_in(client, wiki, "Alice")
    assert response.status_code == 400
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("invalid_client" in r.getMessage() for r in errors)
    assert all("wrong-" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("error=server_error&error_description=<script>alert(1)</script>", 400),
        ("error=access_denied&error_description=<script>alert(1)</script>", 403),
        ("error=invalid_scope&error_description=Your+account+is+locked.+Call+0800-EVIL", 400),
    ],
)
def test_error_description_from_a_link_is_not_shown(client, query, status):
    """PE-2: an error callback that does not match a pending login is somebody's link; its
    text is not shown (no content injection), let alone unescaped."""
    response = client.get(f"/auth/callback?{query}")
    assert response.status_code == status
    assert "<script>" not in response.text
    assert "alert(1)" not in response.text
    assert "0800-EVIL" not in response.text


def test_error_description_from_the_wiki_is_escaped_and_truncated(client):
    """PE-2: with a matching state the wiki's text may be shown: escaped, at most 300 chars."""
    state = state_of(begin(client))
    text = "<b>bold</b>" + "y" * 1000
    response = client.get(
        f"/auth/callback?error=invalid_scope&error_description={text}&state={state}"
    )
    assert response.status_code == 400
    assert "<b>" not in response.text
    assert "y" * 301 not in response.text


# --------------------------------------------------------------------------- RT


def test_rotated_refresh_token_replaces_the_old_one(scripted_app, scripted, wiki):
    """RT-1: each refresh stores the new refresh token and the next refresh uses it; a wiki
    with no grace period (old token dead at once) keeps working."""
    wiki.refresh_grace = 0
    client = scripted_app.test_client()
    log_in(client, wiki, "Alice")
    store = get_state(scripted_app).store
    first = store.get(session_ref(client)).record.refresh_token
    for _ in range(2):
        make_due(scripted_app, client)
        assert client.get("/private").status_code == 200
    refreshes = [
        s for s in scripted.calls("token") if s.form.get("grant_type") == ["refresh_token"]
    ]
    assert len(refreshes) == 2
    assert refreshes[0].form["refresh_token"] == [first]
    assert refreshes[1].form["refresh_token"] != [first]
    current = store.get(session_ref(client)).record.refresh_token
    assert current not in (first, refreshes[1].form["refresh_token"][0])


def test_refresh_answer_without_refresh_token_keeps_the_old_one(scripted_app, scripted, wiki):
    """RT-1: RFC 6749 §6 lets the server omit a new refresh token; keep using the old one."""
    client = scripted_app.test_client()
    log_in(client, wiki, "Alice")
    store = get_state(scripted_app).store
    before = store.get(session_ref(client)).record.refresh_token
    scripted.on("token", edit_upstream_json(lambda t: t.pop("refresh_token")), times=1)
    make_due(scripted_app, client)
    assert client.get("/private").status_code == 200
    assert store.get(session_ref(client)).record.refresh_token == before


@pytest.mark.parametrize("grace", [0, 600], ids=["strict-wiki", "wikimedia-grace"])
def test_parallel_requests_with_an_expired_token_refresh_once(app, wiki, grace):
    """RT-2: ten requests at once find the token expired; the wiki sees one refresh and every
    request ends logged in."""
    wiki.refresh_grace = grace
    client = app.test_client()
    log_in(client, wiki, "Alice")
    wiki.expire_access_tokens("Alice")
    make_due(app, client)
    assert get_in_parallel(app, client, "/private", 10) == [200] * 10
    assert wiki.calls["token:refresh_token"] == 1
    assert is_logged_in(client)


def test_revoked_refresh_token_logs_out_cleanly(app, client, wiki, fast_redis):
    """RT-3/AZ-3: the user revoked the tool: one refresh attempt, then a clean logout."""
    log_in(client, wiki, "Alice")
    wiki.revoke_tokens("Alice")
    make_due(app, client)
    response = client.get("/private")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")
    assert wiki.calls["token:refresh_token"] == 1
    assert login_keys(fast_redis) == []
    api = client.get("/api/whoami", headers={"Accept": "application/json"})
    assert api.status_code == 401
    assert wiki.calls["token:refresh_token"] == 1  # no retry loop


@pytest.mark.parametrize("fault", ["500", "503", "hang"])
def test_transient_refresh_failure_keeps_the_login(app, client, wiki, fast_redis, fault):
    """RT-4: the wiki is down during a refresh: a 503 with Retry-After, the login is kept and
    works again once the wiki is back."""
    log_in(client, wiki, "Alice")
    make_due(app, client)
    wiki.inject_fault("token", fault, delay=3.0)
    started = time.monotonic()
    response = client.get("/private")
    assert response.status_code == 503
    assert time.monotonic() - started < BOUND
    assert response.headers.get("Retry-After")
    assert len(login_keys(fast_redis)) == 1
    wiki.clear_faults()
    assert client.get("/private").status_code == 200


@pytest.mark.parametrize(
    ("expires_in", "low", "high"),
    [
        ("3600", 3000, 3700),
        (None, 60, 4 * 3600),
        (14400, 14000, 14500),
        (10**12, 14000, float("inf")),
    ],
    ids=["string", "missing", "normal", "huge"],
)
def test_expires_in_is_parsed_defensively(scripted_app, scripted, wiki, expires_in, low, high):
    """RT-5: a string, a missing value or an absurd one gives a sane expiry."""

    def edit(token):
        if expires_in is None:
            token.pop("expires_in")
        else:
            token["expires_in"] = expires_in

    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    scripted.on("token", edit_upstream_json(edit))
    assert deliver(client, callback).status_code == 303
    expires_at = get_state(scripted_app).store.get(session_ref(client)).record.expires_at
    assert low <= expires_at - time.time() <= high


@pytest.mark.parametrize("expires_in", [-5, 0])
def test_nonsensical_expires_in_does_not_refresh_on_every_request(
    scripted_app, scripted, wiki, expires_in
):
    """RT-5: a negative or zero lifetime is clamped, not obeyed literally."""
    client = scripted_app.test_client()
    scripted.on("token", edit_upstream_json(lambda t: t.update(expires_in=expires_in)))
    log_in(client, wiki, "Alice")
    for _ in range(3):
        assert client.get("/private").status_code == 200
    refreshes = [
        s for s in scripted.calls("token") if s.form.get("grant_type") == ["refresh_token"]
    ]
    assert len(refreshes) <= 1


def test_api_call_with_a_dead_token_refreshes_once_and_retries_once(app, client, wiki):
    """RT-5 (m3api-oauth2 pattern): the wiki refuses a token we thought valid; one refresh,
    one retry, success."""
    add_fresh_right_route(app)
    log_in(client, wiki, "Alice")
    wiki.expire_access_tokens("Alice")
    response = client.get("/probe/api")
    assert response.status_code == 200
    assert response.json["userinfo"]["name"] == "Alice"
    assert wiki.calls["token:refresh_token"] == 1


# --------------------------------------------------------------------------- AZ


@pytest.fixture
def az_app(wiki, fast_redis):
    app = build_app(wiki, fast_redis, "flask-session", WIKIMEDIA_TIMEOUT=(0.5, 1.0))
    add_fresh_right_route(app)
    return app


def test_user_blocked_after_login_loses_access_within_max_age(az_app, wiki, clock):
    """AZ-1: allowed inside the documented window, refused after it, and at once on a
    ``fresh=True`` route."""
    client = az_app.test_client()
    log_in(client, wiki, "Alice")
    assert client.get("/edit").status_code == 200
    wiki.set_user("Alice", blocked=True)
    assert client.get("/edit").status_code == 200  # inside WIKIMEDIA_PROFILE_MAX_AGE
    assert client.get("/probe/fresh-edit").status_code == 403  # fresh=True: at once
    clock(301)
    assert client.get("/edit").status_code == 403
    assert client.get("/private").status_code == 200  # blocked, but still logged in


def test_user_blocked_after_login_is_logged_out_when_blocked_users_are_denied(
    wiki, fast_redis, clock
):
    """AZ-1: with WIKIMEDIA_DENY_BLOCKED the re-read ends the login."""
    app = build_app(wiki, fast_redis, "flask-session", WIKIMEDIA_DENY_BLOCKED=True)
    client = app.test_client()
    log_in(client, wiki, "Alice")
    wiki.set_user("Alice", blocked=True)
    clock(301)
    assert client.get("/private").status_code == 302
    assert login_keys(fast_redis) == []


def test_removed_rights_and_groups_take_effect_after_max_age(az_app, wiki, clock):
    """AZ-2: decorators decide on the re-read profile."""
    client = az_app.test_client()
    log_in(client, wiki, "Sysop")
    assert client.get("/sysop").status_code == 200
    assert client.get("/block").status_code == 200
    wiki.set_user("Sysop", groups=["*", "user"], rights=["read", "edit"])
    clock(301)
    assert client.get("/sysop").status_code == 403
    assert client.get("/block").status_code == 403


def test_revoked_grant_ends_the_login_at_the_next_re_read(az_app, wiki, fast_redis, clock):
    """AZ-3: the profile says 401, one refresh says invalid_grant: local logout."""
    client = az_app.test_client()
    log_in(client, wiki, "Alice")
    wiki.revoke_tokens("Alice")
    clock(301)
    response = client.get("/private")
    assert response.status_code == 302
    assert wiki.calls["token:refresh_token"] == 1
    assert login_keys(fast_redis) == []


@pytest.mark.parametrize(("fault", "status"), [("500", 503), ("hang", 503), ("garbage", 502)])
def test_failed_re_read_is_never_access_granted(az_app, wiki, fast_redis, clock, fault, status):
    """AZ-4: when the profile is due and the wiki fails, the gated route fails closed (503 or
    502) and the login is kept for later."""
    client = az_app.test_client()
    log_in(client, wiki, "Alice")
    clock(301)
    wiki.inject_fault("profile", fault, delay=3.0)
    response = client.get("/edit")
    assert response.status_code == status
    assert "can edit" not in response.text
    assert len(login_keys(fast_redis)) == 1
    wiki.clear_faults()
    assert client.get("/edit").status_code == 200


def test_many_parallel_requests_re_read_the_profile_once(az_app, wiki, clock):
    """DS-4/AZ-1: thirty requests after max_age cause one profile call (single-flight)."""
    client = az_app.test_client()
    log_in(client, wiki, "Alice")
    calls = wiki.calls["profile"]
    clock(301)
    assert get_in_parallel(az_app, client, "/edit", 30) == [200] * 30
    assert wiki.calls["profile"] - calls == 1


def test_idle_login_expires_in_redis(wiki, fast_redis):
    """AZ-6: the login record lives WIKIMEDIA_LOGIN_TTL after its last write; then the
    browser is anonymous and nothing is left."""
    app = build_app(wiki, fast_redis, "flask-session", WIKIMEDIA_LOGIN_TTL=1)
    client = app.test_client()
    log_in(client, wiki, "Alice")
    (key,) = login_keys(fast_redis)
    assert 0 < fast_redis.pttl(key) <= 1000
    time.sleep(1.2)
    assert not is_logged_in(client)
    assert login_keys(fast_redis) == []


def test_fault_answers_reach_the_tool_through_the_scripted_wiki(scripted_app, scripted, wiki):
    """The harness itself: a pass-through scripted wiki changes nothing."""
    client = scripted_app.test_client()
    assert log_in(client, wiki, "Alice").status_code == 303
    assert {"token", "profile"} <= {s.endpoint for s in scripted.seen}
    assert json.loads(client.get("/api/whoami").text)["username"] == "Alice"
