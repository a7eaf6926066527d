"""The callback under attack: state (CS-*), PKCE and code injection (CI-*), code replay and
double redemption (CR-*), provider confusion and callbacks on the wrong path (MX-*)."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from apps import CLIENT_ID
from securitykit import (
    ORIGIN,
    PENDING_COOKIE,
    approve,
    begin,
    build_app,
    copy_cookies,
    deliver,
    is_logged_in,
    log_in,
    pending_of,
    query_of,
    state_of,
)
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from flask_wikimedia import pending
from flask_wikimedia.devwiki import DevClient
from flask_wikimedia.errors import ConfigurationError
from flask_wikimedia.state import get_state

PACKAGE = Path(__file__).resolve().parents[2] / "flask_wikimedia"
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


# --------------------------------------------------------------------------- CS: state


@pytest.mark.parametrize(
    "query",
    [
        "code=stolen",  # CS-1: no state at all
        "code=stolen&state=",  # CS-1: empty state
        "code=stolen&state=" + "A" * 43,  # CS-2: forged, well-formed
        "code=stolen&state=%00%0d%0a",  # CS-2: forged, control characters
        "code=stolen&state=" + "x" * 5000,  # CS-2: forged, oversized
    ],
    ids=["missing", "empty", "forged", "control-chars", "oversized"],
)
def test_callback_without_a_pending_state_is_refused_before_any_token_call(
    client, wiki, caplog, query
):
    log_in(client, wiki, "Alice")  # an existing login must survive the attack
    begin(client, "/somewhere")
    calls = wiki.calls["token"]
    caplog.set_level(logging.INFO, logger="flask_wikimedia")
    response = client.get(f"/auth/callback?{query}")
    assert response.status_code == 400
    assert "Login failed" in response.text
    assert wiki.calls["token"] == calls
    assert is_logged_in(client)  # the session's login is unchanged
    assert any(
        r.name.startswith("flask_wikimedia") and r.levelno >= logging.WARNING
        for r in caplog.records
    ), "a refused callback is a security event and must be logged"


def test_callback_without_state_does_not_log_anyone_in(client, wiki):
    callback = approve(wiki, begin(client), "Alice")
    code = query_of(callback)["code"][0]
    response = client.get(f"/auth/callback?code={code}")
    assert response.status_code == 400
    assert not is_logged_in(client)
    assert wiki.calls["token"] == 0


def test_state_minted_in_another_browser_is_refused_and_left_usable_there(app, wiki):
    """CS-3, the Authlib CVE-2025-68158 pattern: the attacker's state in the victim's browser."""
    attacker, victim = app.test_client(), app.test_client()
    callback = approve(wiki, begin(attacker), "Sysop")
    begin(victim, "/victim")  # the victim has pending logins of their own
    response = deliver(victim, callback)
    assert response.status_code == 400
    assert wiki.calls["token"] == 0
    assert not is_logged_in(victim)
    # The attacker's pending login was not consumed by the victim's failed attempt.
    assert deliver(attacker, callback).status_code == 303
    assert is_logged_in(attacker)


def test_replayed_callback_url_is_refused_and_keeps_the_login(client, wiki):
    """CS-4: the same callback URL again (history, logs) after a successful login."""
    callback = approve(wiki, begin(client), "Alice")
    assert deliver(client, callback).status_code == 303
    replay = deliver(client, callback)
    assert replay.status_code == 400
    assert wiki.calls["token:authorization_code"] == 1
    assert is_logged_in(client)


def test_replay_with_the_old_pending_cookie_is_refused_server_side(app, wiki):
    """CS-4: even with the pending-login cookie as it was before the callback (a copy of the
    browser's cookies, a response lost in transit), a state is redeemed only once."""
    first = app.test_client()
    callback = approve(wiki, begin(first), "Alice")
    thief = app.test_client()
    copy_cookies(first, thief)
    assert deliver(first, callback).status_code == 303
    replay = deliver(thief, callback)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert wiki.calls["token:authorization_code"] == 1
    assert not is_logged_in(thief)


@pytest.mark.parametrize("minutes", [10.05, 16, 60 * 24])
def test_expired_state_is_refused_without_token_call(client, wiki, monkeypatch, minutes):
    """CS-5: pending logins live ten minutes."""
    callback = approve(wiki, begin(client), "Alice")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + minutes * 60)
    response = deliver(client, callback)
    assert response.status_code == 400
    assert "expired" in response.text
    assert wiki.calls["token"] == 0


def test_state_from_the_future_is_refused(app, client, wiki):
    """CS-5: a pending login dated in the future (clock games) is not valid either."""
    sealer = get_state(app).pending_sealer
    entry = pending.PendingLogin(
        state="S" * 43,
        code_verifier="v" * 64,
        next="/",
        redirect_uri="http://localhost/auth/callback",
        created_at=time.time() + 3600,
    )
    client.set_cookie(PENDING_COOKIE, pending.write(sealer, [entry]), path="/auth")
    response = client.get("/auth/callback?code=x&state=" + "S" * 43)
    assert response.status_code == 400
    assert wiki.calls["token"] == 0


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("&state={state}", 400),
        ("&state=other", 400),
        ("&code=second", 400),
        ("&error=access_denied", 403),  # an error wins: read as declined, nothing exchanged
    ],
    ids=["same-state-twice", "two-states", "two-codes", "code-and-error"],
)
def test_polluted_callback_parameters_are_refused(client, wiki, extra, status):
    """CS-6: duplicated parameters are never guessed at."""
    callback = approve(wiki, begin(client), "Alice")
    state = state_of(callback)
    response = deliver(client, callback + extra.format(state=state))
    assert response.status_code == status
    assert wiki.calls["token"] == 0
    assert not is_logged_in(client)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_callback_is_get_only(client, wiki, method):
    """CS-6: the state and code in a POST body are not a callback."""
    callback = approve(wiki, begin(client), "Alice")
    parts = urlsplit(callback)
    response = client.open(parts.path, method=method, data=parts.query)
    assert response.status_code == 405
    assert wiki.calls["token"] == 0


def test_rfc_error_with_matching_state_reads_as_declined_and_consumes_it(app, client, wiki):
    """CS-7/PE-1: ``error=access_denied&state=s`` (the RFC's Cancel)."""
    state = state_of(begin(client, "/one"))
    begin(client, "/two")
    response = client.get(f"/auth/callback?error=access_denied&state={state}")
    assert response.status_code == 403
    assert "You declined" in response.text
    assert "You chose not to allow this tool" in response.text
    remaining = [p.state for p in pending_of(app, client)]
    assert state not in remaining
    assert len(remaining) == 1  # the other tab's login is kept
    assert wiki.calls["token"] == 0


def test_mediawiki_cancel_without_state_reads_as_declined_and_keeps_pending(app, client, wiki):
    """CS-7/PE-1: MediaWiki's Cancel is ``error=unauthorized_client`` with no state."""
    callback = approve(wiki, begin(client), "Alice", allow=False)
    assert "state=" not in callback
    response = deliver(client, callback)
    assert response.status_code == 403
    assert len(pending_of(app, client)) == 1  # nothing matched, nothing consumed
    assert wiki.calls["token"] == 0


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("error=access_denied", 403),  # MediaWiki's Cancel shape: "declined"
        ("error=unauthorized_client&error_description=User+has+rejected", 403),
        ("error=server_error&state=" + "A" * 43, 400),
        ("error=temporarily_unavailable", 400),
    ],
)
def test_forged_error_callback_never_logs_a_user_out(client, wiki, query, status):
    """CS-7: an error callback sent to a logged-in user changes nothing."""
    log_in(client, wiki, "Alice")
    calls = wiki.calls["token"]
    response = client.get(f"/auth/callback?{query}")
    assert response.status_code == status
    assert wiki.calls["token"] == calls
    assert is_logged_in(client)


def test_states_and_verifiers_are_long_random_and_unique(app):
    """CS-8: 1 000 logins, 1 000 different states and verifiers from a CSPRNG."""
    client = app.test_client()
    states, verifiers = set(), set()
    for _ in range(1000):
        url = begin(client)
        (entry,) = pending_of(app, client)
        client._cookies.clear()
        state = state_of(url)
        assert entry.state == state
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", state)
        assert UNRESERVED.fullmatch(entry.code_verifier)
        states.add(state)
        verifiers.add(entry.code_verifier)
    assert len(states) == len(verifiers) == 1000


def test_the_package_never_uses_the_random_module_for_secrets():
    """CS-8/SF-5: ``secrets`` (or Authlib's generator, which uses it), never ``random``."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "devwiki" in path.parts:
            continue  # the fake wiki's test data is not security-relevant
        text = path.read_text()
        if re.search(r"^\s*(import random|from random import)", text, re.M):
            offenders.append(path.name)
    assert offenders == []


def test_parallel_tabs_both_complete(client, wiki):
    """CS-9: a second login in the same browser does not clobber the first."""
    first, second = begin(client, "/one"), begin(client, "/two")
    one, two = approve(wiki, first, "Alice"), approve(wiki, second, "Alice")
    assert deliver(client, one).headers["Location"] == "/one"
    assert deliver(client, two).headers["Location"] == "/two"


def test_pending_logins_per_browser_are_capped_oldest_first(app, client, wiki):
    """CS-9/DS-2: fifty logins in one browser keep only the newest five, in a small cookie."""
    urls = [begin(client, f"/tab{i}") for i in range(50)]
    entries = pending_of(app, client)
    assert len(entries) == pending.MAX_PENDING == 5
    assert {e.next for e in entries} == {f"/tab{i}" for i in range(45, 50)}
    assert len(client.get_cookie(PENDING_COOKIE, path="/auth").value) < 4096
    assert deliver(client, approve(wiki, urls[0], "Alice")).status_code == 400
    assert deliver(client, approve(wiki, urls[-1], "Alice")).status_code == 303


# --------------------------------------------------------------------------- CI: PKCE


def test_injected_code_of_another_session_is_redeemed_with_our_verifier_and_fails(app, wiki):
    """CI-1: the victim's code injected into the attacker's own flow."""
    victim, attacker = app.test_client(), app.test_client()
    victim_callback = approve(wiki, begin(victim), "Alice")
    code = query_of(victim_callback)["code"][0]
    attacker_state = state_of(begin(attacker))
    response = attacker.get(f"/auth/callback?code={code}&state={attacker_state}")
    assert response.status_code == 400
    assert wiki.calls["token:authorization_code"] == 1  # it reached the wiki ...
    assert wiki.codes[code].used is False  # ... which refused it: wrong verifier
    assert not is_logged_in(attacker)
    assert deliver(victim, victim_callback).status_code == 303  # the victim is unaffected


def test_authorize_url_and_token_request_carry_s256_pkce(scripted_app, scripted, wiki):
    """CI-2: S256 always explicit; a 43-128 character verifier whose hash is the challenge."""
    client = scripted_app.test_client()
    authorize = begin(client)
    query = query_of(authorize)
    assert query["code_challenge_method"] == ["S256"]
    challenge = query["code_challenge"][0]
    assert len(challenge) == 43 and "=" not in challenge
    assert "code_verifier" not in authorize
    assert deliver(client, approve(wiki, authorize, "Alice")).status_code == 303
    (token_call,) = scripted.calls("token")
    verifier = token_call.form["code_verifier"][0]
    assert UNRESERVED.fullmatch(verifier)
    assert s256(verifier) == challenge


@pytest.mark.parametrize(
    "verifier",
    ["", "short", "x" * 200, "has spaces in it and is long enough to pass a length check"],
    ids=["empty", "short", "too-long", "bad-charset"],
)
def test_pending_login_without_a_usable_verifier_is_never_redeemed(app, client, wiki, verifier):
    """CI-3: a pending record without a proper verifier (old format, corruption) must not
    continue without PKCE."""
    sealer = get_state(app).pending_sealer
    entry = pending.PendingLogin(
        state="S" * 43,
        code_verifier=verifier,
        next="/",
        redirect_uri="http://localhost/auth/callback",
        created_at=time.time(),
    )
    client.set_cookie(PENDING_COOKIE, pending.write(sealer, [entry]), path="/auth")
    response = client.get("/auth/callback?code=whatever&state=" + "S" * 43)
    assert response.status_code == 400
    assert wiki.calls["token"] == 0


def test_downgrade_by_stripping_the_challenge_fails_at_the_wiki(scripted_app, scripted, wiki):
    """CI-4: the challenge is stripped on the way to the wiki; we still send the verifier and
    the wiki (League 9) refuses a verifier for a code without challenge."""
    client = scripted_app.test_client()
    authorize = begin(client)
    parts = urlsplit(authorize)
    kept = {k: v[0] for k, v in query_of(authorize).items() if not k.startswith("code_challenge")}
    stripped = parts._replace(query=urlencode(kept)).geturl()
    response = deliver(client, approve(wiki, stripped, "Alice"))
    assert response.status_code == 400
    (token_call,) = scripted.calls("token")
    assert token_call.form.get("code_verifier")
    assert not is_logged_in(client)


def test_redirect_uri_is_the_same_constant_in_both_legs(scripted, fast_redis, wiki):
    """CI-5/HH-1: the configured redirect URI, in the authorize URL and the token request,
    whatever Host the browser used."""
    configured = "http://localhost/auth/callback"
    app = build_app(
        wiki,
        fast_redis,
        "flask-session",
        WIKIMEDIA_WIKI_URL=scripted.base_url,
        WIKIMEDIA_REDIRECT_URI=configured,
    )
    spoofed = begin(app.test_client(), "/", Host="evil.example")
    assert query_of(spoofed)["redirect_uri"] == [configured]
    client = app.test_client()
    authorize = begin(client)
    assert query_of(authorize)["redirect_uri"] == [configured]
    assert deliver(client, approve(wiki, authorize, "Alice")).status_code == 303
    (token_call,) = scripted.calls("token")
    assert token_call.form["redirect_uri"] == [configured]


# --------------------------------------------------------------------------- CR: replay


def test_used_code_replayed_with_a_fresh_state_is_refused_by_the_wiki(app, wiki):
    """CR-1: a redeemed code, smuggled into a new flow, gets ``invalid_grant``."""
    first = app.test_client()
    callback = approve(wiki, begin(first), "Alice")
    assert deliver(first, callback).status_code == 303
    code = query_of(callback)["code"][0]
    other = app.test_client()
    state = state_of(begin(other))
    response = other.get(f"/auth/callback?code={code}&state={state}")
    assert response.status_code == 400
    assert not is_logged_in(other)


def test_two_parallel_callbacks_with_one_code_make_one_token_call(app, wiki):
    """CR-2: a double click or a prefetch: exactly one redemption, one login, no 500."""
    for _ in range(5):  # a few rounds to give the race a chance
        first = app.test_client()
        callback = approve(wiki, begin(first), "Alice")
        second = app.test_client()
        copy_cookies(first, second)
        barrier = threading.Barrier(2)
        results: dict[str, int] = {}

        def hit(name: str, client, barrier=barrier, results=results, url=callback) -> None:
            barrier.wait()
            results[name] = deliver(client, url).status_code

        before = wiki.calls["token:authorization_code"]
        threads = [
            threading.Thread(target=hit, args=("first", first)),
            threading.Thread(target=hit, args=("second", second)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(results.values()) == [303, 400]
        assert wiki.calls["token:authorization_code"] - before == 1
        winner = first if results["first"] == 303 else second
        assert is_logged_in(winner)


def test_successful_callback_leaves_no_code_in_the_address_bar_or_referer(client, wiki):
    """CR-3/TL-4: a 303 to a clean URL, no Referer, not cached."""
    response = log_in(client, wiki, "Alice", next="/private")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == "/private"
    assert "code" not in location and "state" not in location
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response.headers["Cache-Control"]
    assert "<script" not in response.text and "<img" not in response.text


# --------------------------------------------------------------------------- MX


@pytest.mark.parametrize(
    "url", ["http://meta.wikimedia.org/w", "ftp://meta.wikimedia.org/w", "meta.wikimedia.org/w"]
)
def test_a_wiki_url_that_is_not_https_is_refused_at_startup(fast_redis, url):
    """MX-1: the provider's URLs are configuration, https only."""
    from flask import Flask

    from flask_wikimedia import Wikimedia

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="x" * 48,
        WIKIMEDIA_CLIENT_ID=CLIENT_ID,
        WIKIMEDIA_WIKI_URL=url,
        WIKIMEDIA_USER_AGENT="Test/1.0 (https://example.org; t@example.org)",
        WIKIMEDIA_REDIRECT_URI="https://tool.example/auth/callback",
        WIKIMEDIA_REDIS=fast_redis,
    )
    with pytest.raises(ConfigurationError):
        Wikimedia(app)


def test_authorize_and_token_endpoints_are_on_the_configured_wiki(scripted_app, scripted, wiki):
    """MX-1: both legs go to the one configured wiki."""
    client = scripted_app.test_client()
    authorize = begin(client)
    assert authorize.startswith(scripted.base_url + "/rest.php/oauth2/authorize?")
    deliver(client, approve(wiki, authorize, "Alice"))
    assert len(scripted.calls("token")) == 1


def _two_tools_on_one_host(wiki, fast_redis):
    wiki.add_client(DevClient(client_id=CLIENT_ID, secret="f" * 40, redirect_uri=None))
    apps = {}
    for name in ("a", "b"):
        apps[name] = build_app(
            wiki,
            fast_redis,
            "cookie-session",
            SECRET_KEY=f"secret-of-tool-{name}-" + "k" * 40,
            WIKIMEDIA_KEY_PREFIX=f"tool-{name}:",
        )
    root = build_app(wiki, fast_redis, "cookie-session")
    host = DispatcherMiddleware(root.wsgi_app, {"/a": apps["a"].wsgi_app, "/b": apps["b"].wsgi_app})
    return host


def test_login_works_under_a_path_prefix(wiki, fast_redis):
    """MX-2: a tool mounted below ``/a`` gets its pending-login cookie back at its callback."""
    browser = Client(_two_tools_on_one_host(wiki, fast_redis))
    authorize = browser.get("/a/auth/login?next=/a/private").headers["Location"]
    assert query_of(authorize)["redirect_uri"] == [f"{ORIGIN}/a/auth/callback"]
    callback = approve(wiki, authorize, "Alice")
    parts = urlsplit(callback)
    response = browser.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert browser.get("/a/private").status_code == 200


def test_callback_delivered_to_another_tools_path_is_refused(wiki, fast_redis):
    """MX-2: the callback for tool ``a`` delivered to tool ``b`` on the same host (or to any
    other path) logs nobody in and calls no token endpoint."""
    browser = Client(_two_tools_on_one_host(wiki, fast_redis))
    authorize = browser.get("/a/auth/login").headers["Location"]
    callback = approve(wiki, authorize, "Alice")
    query = urlsplit(callback).query
    assert browser.get(f"/b/auth/callback?{query}").status_code == 400
    assert browser.get(f"/auth/callback?{query}").status_code == 400
    assert browser.get(f"/a/private?{query}").status_code == 302
    assert wiki.calls["token"] == 0


@pytest.mark.parametrize("state", ["\x80", "é" * 43, "\u2028", "💥"])
def test_non_ascii_state_is_a_400_not_a_crash(client, wiki, state):
    """Found by fuzzing: ``hmac.compare_digest`` refuses non-ASCII str, which was a 500."""
    begin(client)
    response = client.get("/auth/callback", query_string={"code": "x", "state": state})
    assert response.status_code == 400
    assert wiki.calls["token"] == 0


@pytest.mark.parametrize("token", ["é", "\x80" * 40])
def test_non_ascii_logout_token_is_a_400_not_a_crash(client, wiki, token):
    """Found by fuzzing: the same for the logout form's CSRF token."""
    log_in(client, wiki, "Alice")
    client.get("/me")
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 400
    assert is_logged_in(client)
