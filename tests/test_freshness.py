"""Fresh rights (DESIGN invariant 8; security catalogue 3.11): the profile is re-read at most every
WIKIMEDIA_PROFILE_MAX_AGE seconds, single-flight, so a block or a removed right takes effect
within that window; ``fresh=True`` re-reads it at once on sensitive routes."""

from __future__ import annotations

import time

import pytest
import redis
from apps import make_app
from support import parallel_gets, session_ref, stored

from flask_wikimedia import login_required, requires_group, requires_right, signals
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import login

MAX_AGE = 0.8
JSON = {"Accept": "application/json"}


@pytest.fixture
def app(devwiki: DevWiki, redis_client: redis.Redis):
    app = make_app(devwiki, redis_client, WIKIMEDIA_PROFILE_MAX_AGE=MAX_AGE)

    @app.post("/delete")
    @requires_right("delete", fresh=True)
    def delete() -> str:
        return "deleted"

    @app.get("/twice")
    @login_required(fresh=True)
    @requires_group("sysop", fresh=True)
    def twice() -> str:
        return "checked twice"

    return app


def age_out() -> None:
    time.sleep(MAX_AGE + 0.1)


def test_user_blocked_after_login_is_refused_within_the_max_age(client, devwiki):
    login(client, devwiki, "Alice")
    assert client.get("/edit").status_code == 200
    devwiki.set_user("Alice", blocked=True)
    assert client.get("/edit").status_code == 200  # inside the documented window
    assert devwiki.calls["profile"] == 1
    age_out()
    refused = client.get("/edit")
    assert refused.status_code == 403
    assert "blocked" in refused.text
    assert devwiki.calls["profile"] == 2
    assert client.get("/private").status_code == 200  # still logged in, just not allowed
    assert devwiki.calls["profile"] == 2  # one re-read per window, not one per request


def test_removed_right_takes_effect_after_the_max_age(client, devwiki):
    login(client, devwiki, "Alice")
    assert client.get("/edit").status_code == 200
    rights = [r for r in devwiki.users["Alice"].rights if r != "edit"]
    devwiki.set_user("Alice", rights=rights)
    age_out()
    response = client.get("/edit", headers=JSON)
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_removed_group_takes_effect_after_the_max_age(client, devwiki):
    login(client, devwiki, "Sysop")
    assert client.get("/sysop").status_code == 200
    devwiki.set_user("Sysop", groups=["*", "user", "autoconfirmed"])
    age_out()
    assert client.get("/sysop").status_code == 403


def test_fresh_check_sees_a_block_at_once(client, devwiki):
    login(client, devwiki, "Sysop")
    assert client.post("/delete").text == "deleted"
    assert devwiki.calls["profile"] == 2  # login + the fresh check
    devwiki.set_user("Sysop", blocked=True)
    assert client.post("/delete").status_code == 403  # no waiting for the max age
    assert devwiki.calls["profile"] == 3


def test_fresh_check_reads_the_profile_once_per_request(client, devwiki):
    login(client, devwiki, "Sysop")
    assert client.get("/twice").text == "checked twice"
    assert devwiki.calls["profile"] == 2


def test_profile_re_read_is_single_flight(app, client, devwiki):
    login(client, devwiki, "Alice")
    age_out()
    assert parallel_gets(client, 12, "/private") == [200] * 12
    assert devwiki.calls["profile"] == 2


def test_deny_blocked_ends_the_login_of_a_user_blocked_later(devwiki, redis_client):
    app = make_app(
        devwiki, redis_client, WIKIMEDIA_PROFILE_MAX_AGE=MAX_AGE, WIKIMEDIA_DENY_BLOCKED=True
    )
    client = app.test_client()
    login(client, devwiki, "Alice")
    ref = session_ref(client)
    devwiki.set_user("Alice", blocked=True)
    age_out()
    ended = []
    with signals.logged_out.connected_to(lambda sender, **kw: ended.append(kw)):
        response = client.get("/private")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")
    assert get_state(app).store.get(ref) is None
    assert [e["reason"] for e in ended] == ["policy"]


def test_account_hidden_after_login_ends_the_login(app, client, devwiki):
    login(client, devwiki, "Alice")
    ref = session_ref(client)
    devwiki.set_user("Alice", hidden=True)
    age_out()
    assert client.get("/private").status_code == 302
    assert get_state(app).store.get(ref) is None


def test_grant_revoked_on_the_wiki_logs_out_after_one_refresh_attempt(app, client, devwiki):
    """Special:OAuthManageMyGrants: the profile answers 401, one refresh gets invalid_grant,
    the login ends (catalogue AZ-3)."""
    login(client, devwiki, "Alice")
    ref = session_ref(client)
    devwiki.revoke_tokens("Alice")
    age_out()
    response = client.get("/private")
    assert response.status_code == 302
    assert devwiki.calls["token:refresh_token"] == 1
    assert get_state(app).store.get(ref) is None


def test_token_that_died_early_is_refreshed_once_during_a_re_read(app, client, devwiki):
    login(client, devwiki, "Alice")
    before = stored(app, client)
    devwiki.expire_access_tokens()  # the record still thinks it has hours left
    age_out()
    assert client.get("/private").status_code == 200
    assert devwiki.calls["token:refresh_token"] == 1
    after = stored(app, client)
    assert after is not None and before is not None
    assert after.record.access_token != before.record.access_token
    assert after.record.profile_at > before.record.profile_at


@pytest.mark.parametrize(
    ("fault", "status"), [("500", 503), ("hang", 503), ("garbage", 502), ("wrongtypes", 502)]
)
def test_wiki_trouble_during_a_re_read_keeps_the_login(app, client, devwiki, fault, status):
    """Fail closed (no stale rights past the max age), but keep the login (catalogue AZ-4)."""
    login(client, devwiki, "Alice")
    before = stored(app, client)
    devwiki.inject_fault("profile", fault, delay=5.0)
    age_out()
    started = time.monotonic()
    assert client.get("/private").status_code == status
    assert time.monotonic() - started < 4
    kept = stored(app, client)
    assert kept is not None and before is not None
    assert (kept.version, kept.record) == (before.version, before.record)
    devwiki.clear_faults()
    assert client.get("/private").status_code == 200


def test_rights_are_re_read_when_the_max_age_is_zero(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_PROFILE_MAX_AGE=0)
    client = app.test_client()
    login(client, devwiki, "Alice")
    devwiki.set_user("Alice", blocked=True)
    assert client.get("/edit").status_code == 403
