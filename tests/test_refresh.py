"""Staying logged in: token refresh against the development wiki over real HTTP (DESIGN invariant 4).

Refresh shortly before expiry; exactly one refresh however many threads and gunicorn workers hit
an expired token at once; no lost update; a refused refresh is a clean logout; a wiki outage
during a refresh is a 503 that keeps the login (security catalogue RT-1..RT-5).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from apps import make_app
from flask import render_template_string
from support import (
    assert_twenty_requests_across_workers_refresh_once,
    clone,
    free_port,
    gunicorn,
    in_parallel,
    login_due_for_refresh,
    served_env,
    session_ref,
    stored,
    wait_for_every_worker,
)

from flask_wikimedia import signals
from flask_wikimedia.api import user_session
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.errors import WikiUnavailable
from flask_wikimedia.state import get_state
from flask_wikimedia.store import LoginRecord
from flask_wikimedia.testing import login

TESTS = Path(__file__).parent
JSON = {"Accept": "application/json"}
WORKERS = 4


@pytest.fixture(params=["wikimedia", "strict", "1.39"])
def wiki(request: pytest.FixtureRequest) -> Iterator[DevWiki]:
    """Current Wikimedia (old refresh token usable for 600 s), the same without the grace
    period (MediaWiki before it existed), and MediaWiki 1.39 (no grace, 401 invalid_request)."""
    served = DevWiki(flavor="1.39" if request.param == "1.39" else "wikimedia")
    if request.param == "strict":
        served.refresh_grace = 0
    served.start()
    yield served
    served.stop()


def test_expired_token_is_refreshed_and_user_stays_logged_in(wiki, redis_client):
    app = make_app(wiki, redis_client)
    client = app.test_client()
    before = login_due_for_refresh(client, wiki)
    page = client.get("/private")
    assert page.status_code == 200
    assert page.text == "private page of Alice"
    assert wiki.calls["token:refresh_token"] == 1
    after = stored(app, client)
    assert after is not None
    assert after.record.access_token != before.record.access_token
    assert after.record.expires_at - time.time() > 3600
    # The new token works, and later requests need no refresh.
    assert client.get("/api/whoami", headers=JSON).json["username"] == "Alice"
    assert wiki.calls["token:refresh_token"] == 1


def test_refresh_token_rotates_and_the_new_one_is_used_next_time(wiki, redis_client):
    app = make_app(wiki, redis_client)
    client = app.test_client()
    first = login_due_for_refresh(client, wiki)
    wiki.access_token_ttl = 60  # the refreshed token is due again at once
    assert client.get("/private").status_code == 200
    second = stored(app, client)
    assert second is not None
    assert second.record.refresh_token != first.record.refresh_token
    assert wiki.refresh_tokens[first.record.refresh_token].revoked
    wiki.access_token_ttl = 14400
    wiki.expire_access_tokens()
    # On the strict flavours the old refresh token is dead: this works only with the new one.
    assert client.get("/private").status_code == 200
    third = stored(app, client)
    assert third is not None
    assert third.record.refresh_token not in (
        first.record.refresh_token,
        second.record.refresh_token,
    )
    assert wiki.calls["token:refresh_token"] == 2


def test_twenty_threads_hitting_an_expired_token_refresh_once(wiki, redis_client):
    app = make_app(wiki, redis_client)
    client = app.test_client()
    login_due_for_refresh(client, wiki)
    refreshed = []
    clients = [clone(client) for _ in range(20)]
    with signals.token_refreshed.connected_to(lambda sender, **kw: refreshed.append(kw)):
        answers = in_parallel(20, lambda i: clients[i].get("/api/whoami", headers=JSON))
    assert [a.status_code for a in answers] == [200] * 20
    assert {a.json["username"] for a in answers} == {"Alice"}
    assert wiki.calls["token:refresh_token"] == 1
    assert len(refreshed) == 1
    assert client.get("/private").status_code == 200
    assert wiki.calls["token:refresh_token"] == 1


@pytest.fixture
def gunicorn_app(devwiki: DevWiki, redis_server, redis_client: redis.Redis, tmp_path: Path):
    """served_app.py (plain Flask-Session, make_app's prefixes) in four gunicorn worker
    processes, sharing the test's Redis and development wiki; yields the test client's app
    (whose session cookies the workers read) and the base URL."""
    app = make_app(devwiki, redis_client)
    port = free_port()
    env = served_env(
        sessions="flask-session",
        redis_url=redis_server.url,
        wiki_url=str(devwiki.base_url),
        secret_key=str(app.secret_key),
    )
    log = tmp_path / "gunicorn.log"
    with gunicorn("served_app:app", port, env, log, cwd=TESTS, ready="/ready") as base:
        wait_for_every_worker(base, WORKERS)
        yield app, base


def test_twenty_requests_across_gunicorn_workers_refresh_once(gunicorn_app, devwiki):
    app, base = gunicorn_app
    devwiki.refresh_grace = 0  # strict: a second refresh would be refused, and be a logout
    client = app.test_client()
    login_due_for_refresh(client, devwiki)
    cookie = {"session": client.get_cookie("session").value}
    assert_twenty_requests_across_workers_refresh_once(devwiki, base, cookie)


def test_a_write_with_an_old_version_cannot_bring_old_tokens_back(app, client, devwiki):
    before = login_due_for_refresh(client, devwiki)
    assert client.get("/private").status_code == 200  # refreshed: version moved on
    after = stored(app, client)
    assert after is not None and after.version > before.version
    store = get_state(app).store
    ref = session_ref(client)
    assert ref is not None
    # A request that read the record before the refresh tries to write what it holds.
    assert store.replace(ref, before.version, before.record) is None
    now = store.get(ref)
    assert now is not None
    assert now.record.access_token == after.record.access_token
    assert now.record.refresh_token == after.record.refresh_token
    assert client.get("/api/whoami", headers=JSON).status_code == 200
    assert devwiki.calls["token:refresh_token"] == 1


def test_request_that_started_before_a_refresh_uses_the_new_tokens(app, client, devwiki):
    """Request A loads the login, request B refreshes (the wiki refused the token to its API
    call), then A talks to the wiki and writes a fresh profile: A picks up B's tokens, causes
    no second refresh, and the stored tokens stay B's."""
    from flask_wikimedia.login import current_login

    loaded, go_on = threading.Event(), threading.Event()

    @app.get("/slow")
    def slow() -> str:
        held = current_login()
        assert held is not None
        loaded.set()
        go_on.wait(10)
        name = user_session().get_json(action="query", meta="userinfo")["query"]["userinfo"]
        current_login(fresh=True)  # writes the profile: must not undo B's refresh
        return name["name"]

    @app.get("/api-call")
    def api_call() -> str:
        return user_session().get_json(action="query", meta="userinfo")["query"]["userinfo"]["name"]

    login(client, devwiki, "Alice")
    first = stored(app, client)
    assert first is not None
    result: dict[str, str] = {}
    a = threading.Thread(target=lambda: result.update(a=clone(client).get("/slow").text))
    a.start()
    assert loaded.wait(10)
    devwiki.expire_access_tokens()  # the wiki now refuses the token (HTTP 200 + API error)
    assert clone(client).get("/api-call").text == "Alice"  # B refreshes
    assert devwiki.calls["token:refresh_token"] == 1
    refreshed = stored(app, client)
    assert refreshed is not None
    go_on.set()
    a.join(10)
    assert result["a"] == "Alice"
    final = stored(app, client)
    assert final is not None
    assert final.record.access_token == refreshed.record.access_token
    assert final.record.refresh_token == refreshed.record.refresh_token
    assert final.version > refreshed.version  # A's profile write landed on top of B's tokens
    assert devwiki.calls["token:refresh_token"] == 1
    assert client.get("/api-call").text == "Alice"
    assert devwiki.calls["token:refresh_token"] == 1


def test_revoked_refresh_token_logs_a_browser_out_to_the_login_page(wiki, redis_client):
    app = make_app(wiki, redis_client)
    client = app.test_client()
    login_due_for_refresh(client, wiki)
    ref = session_ref(client)
    wiki.revoke_tokens("Alice")
    ended = []
    with signals.logged_out.connected_to(lambda sender, **kw: ended.append(kw)):
        response = client.get("/private", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=/private")
    assert wiki.calls["token:refresh_token"] == 1
    assert get_state(app).store.get(ref) is None
    assert session_ref(client) is None
    assert [e["reason"] for e in ended] == ["refresh_refused"]
    assert ended[0]["user"].username == "Alice"
    # No retry loop: the next request is simply logged out, without calling the wiki.
    assert client.get("/private").status_code == 302
    assert wiki.calls["token:refresh_token"] == 1


def test_revoked_refresh_token_gives_a_json_client_401(app, client, devwiki):
    login_due_for_refresh(client, devwiki)
    ref = session_ref(client)
    devwiki.revoke_tokens("Alice")
    response = client.get("/api/whoami", headers=JSON)
    assert response.status_code == 401
    assert response.json["error"] == "login_required"
    assert get_state(app).store.get(ref) is None


def test_expired_refresh_token_logs_out(app, client, devwiki):
    login_due_for_refresh(client, devwiki)
    ref = session_ref(client)
    devwiki.advance_time(366 * 86400)  # refresh tokens live 365 days on Wikimedia
    assert client.get("/private").status_code == 302
    assert get_state(app).store.get(ref) is None


@pytest.mark.parametrize(
    ("fault", "status"),
    [("500", 503), ("503", 503), ("hang", 503), ("garbage", 502), ("redirect", 502)],
)
def test_wiki_trouble_during_refresh_keeps_the_login(app, client, devwiki, fault, status):
    before = login_due_for_refresh(client, devwiki)
    devwiki.inject_fault("token", fault, delay=5.0)
    started = time.monotonic()
    response = client.get("/private")
    assert response.status_code == status
    assert time.monotonic() - started < 4  # WIKIMEDIA_TIMEOUT is (1.0, 1.5) in these tests
    assert "Traceback" not in response.text
    if status == 503:
        assert response.headers["Retry-After"]
        assert "still logged in" in response.text
    kept = stored(app, client)
    assert kept is not None
    assert kept.record.access_token == before.record.access_token
    devwiki.clear_faults()
    assert client.get("/private").text == "private page of Alice"
    assert stored(app, client).record.access_token != before.record.access_token


def test_wiki_down_during_refresh_is_503_json_for_api_clients(client, devwiki):
    login_due_for_refresh(client, devwiki)
    devwiki.inject_fault("token", "500")
    response = client.get("/api/whoami", headers=JSON)
    assert response.status_code == 503
    assert response.json["error"] == "wiki_unavailable"
    assert client.get("/api/whoami", headers=JSON).status_code == 200


def test_requests_waiting_for_a_failing_refresh_share_its_failure(app, client, devwiki):
    """The wiki hangs for the lock holder: the others wait for it, then answer 503 with it
    instead of each trying the hung wiki in turn."""
    login_due_for_refresh(client, devwiki)
    devwiki.inject_fault("token", "hang", times=20, delay=5.0)
    clients = [clone(client) for _ in range(6)]
    started = time.monotonic()
    answers = in_parallel(6, lambda i: clients[i].get("/private"))
    assert [a.status_code for a in answers] == [503] * 6
    assert devwiki.calls["token:refresh_token"] == 1
    assert time.monotonic() - started < 4
    devwiki.clear_faults()
    assert client.get("/private").status_code == 200


def test_error_page_after_a_failed_refresh_does_not_call_the_wiki_again(app, client, devwiki):
    @app.errorhandler(WikiUnavailable)
    def unavailable(error):
        # Templates of a real tool show current_user on every page, error pages included.
        page = render_template_string(
            "{% if current_user %}{{ current_user }}{% else %}-{% endif %}"
        )
        return page, 503

    login_due_for_refresh(client, devwiki)
    devwiki.inject_fault("token", "500", times=5)
    response = client.get("/private")
    assert response.status_code == 503
    assert response.text == "-"
    assert devwiki.calls["token:refresh_token"] == 1


def test_logout_while_a_refresh_is_in_flight_stays_logged_out(app, client, devwiki):
    login_due_for_refresh(client, devwiki)
    with client.session_transaction() as sess:
        sess["_wikimedia_csrf"] = "csrf-token-for-this-test"
    ref = session_ref(client)
    devwiki.inject_fault("token", "hang", delay=0.8)  # slow, but answers within the timeout
    answers = {}
    slow = threading.Thread(target=lambda: answers.update(slow=clone(client).get("/private")))
    slow.start()
    deadline = time.monotonic() + 5
    while devwiki.calls["token:refresh_token"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    logout = client.post("/auth/logout", data={"csrf_token": "csrf-token-for-this-test"})
    assert logout.status_code == 303
    slow.join(10)
    assert answers["slow"].status_code == 302  # the refresh finished into a deleted login
    assert get_state(app).store.get(ref) is None  # not written back by the late refresh


def test_memory_store_refreshes_too(devwiki):
    app = make_app(devwiki, None)  # testing mode without Redis: in-process records
    client = app.test_client()
    login_due_for_refresh(client, devwiki)
    assert client.get("/private").status_code == 200
    assert devwiki.calls["token:refresh_token"] == 1


def test_tokens_never_reach_the_refresh_signal(app, client, devwiki):
    login_due_for_refresh(client, devwiki)
    seen = []
    with signals.token_refreshed.connected_to(lambda sender, **kw: seen.append((sender, kw))):
        assert client.get("/private").status_code == 200
    record: LoginRecord = stored(app, client).record
    assert len(seen) == 1
    sender, kwargs = seen[0]
    assert sender is app
    assert set(kwargs) == {"user"}
    assert kwargs["user"].username == "Alice"
    assert record.access_token not in repr(seen)
    assert record.refresh_token not in repr(seen)


@pytest.mark.parametrize("backend", ["redis", "memory"])
def test_failure_count_survives_writes_and_never_creates_a_record(devwiki, redis_client, backend):
    app = make_app(devwiki, redis_client if backend == "redis" else None)
    client = app.test_client()
    login(client, devwiki, "Alice")
    store = get_state(app).store
    ref = session_ref(client)
    first = store.get(ref)
    assert first.failures == 0
    store.note_failure(ref)
    assert store.get(ref).failures == 1
    written = store.replace(ref, first.version, first.record)
    assert written is not None and written.failures == 1
    assert store.get(ref).failures == 1
    store.delete(ref)
    store.note_failure(ref)  # a logout meanwhile: counting must not bring a record back
    assert store.get(ref) is None
    if backend == "redis":
        assert redis_client.keys("tests:wikimedia:login:*") == []
