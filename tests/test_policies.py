"""Login policies: deny blocked users, require a confirmed email, rights or groups, or a custom
check; a refused login gets a clear 403 page, a login_failed signal and no login record."""

from __future__ import annotations

import html
import time

import pytest
import redis
from apps import make_app
from support import session_ref

from flask_wikimedia import signals
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import login


def login_records(redis_client: redis.Redis) -> list[bytes]:
    return redis_client.keys("tests:wikimedia:login:*")


def assert_refused(app, devwiki, redis_client, username: str, message: str) -> None:
    client = app.test_client()
    failures = []
    with signals.login_failed.connected_to(lambda sender, **kw: failures.append(kw)):
        response = login(client, devwiki, username)
    assert response.status_code == 403
    assert "Login refused" in response.text
    assert message in response.text
    assert failures == [{"reason": "policy", "description": failures[0]["description"]}]
    assert html.unescape(message) in failures[0]["description"]
    assert login_records(redis_client) == []
    assert session_ref(client) is None
    assert client.get("/private").status_code == 302


def assert_allowed(app, devwiki, username: str) -> None:
    client = app.test_client()
    assert login(client, devwiki, username).status_code == 303
    assert client.get("/private").text == f"private page of {username}"


def test_blocked_users_may_log_in_by_default(devwiki, redis_client):
    assert_allowed(make_app(devwiki, redis_client), devwiki, "Blocked")


def test_deny_blocked_refuses_blocked_users(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_DENY_BLOCKED=True)
    assert_refused(app, devwiki, redis_client, "Blocked", "Blocked accounts cannot log in")
    assert_allowed(app, devwiki, "Alice")


def test_confirmed_email_can_be_required(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_REQUIRE_CONFIRMED_EMAIL=True)
    assert_refused(app, devwiki, redis_client, "NoEmail", "confirmed email address")
    assert_allowed(app, devwiki, "Alice")


def test_rights_can_be_required_at_login(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_REQUIRED_RIGHTS=["autoconfirmed", "edit"])
    assert_refused(app, devwiki, redis_client, "Newbie", "needs the right(s): autoconfirmed.")
    assert_allowed(app, devwiki, "Alice")


@pytest.mark.parametrize("groups", [["sysop"], "sysop", "sysop, user"])
def test_groups_can_be_required_at_login(devwiki, redis_client, groups):
    app = make_app(devwiki, redis_client, WIKIMEDIA_REQUIRED_GROUPS=groups)
    assert_refused(app, devwiki, redis_client, "Alice", "only for members of: sysop.")
    assert_allowed(app, devwiki, "Sysop")


def test_custom_check_refuses_with_its_message(devwiki, redis_client):
    app = make_app(devwiki, redis_client)
    wikimedia = get_state(app).ext
    seen = []

    @wikimedia.login_check
    def only_experienced(user):
        seen.append(user.username)
        if user.editcount < 100:
            return "This tool is for editors with at least 100 edits <b>sorry</b>."
        return None

    assert_refused(
        app,
        devwiki,
        redis_client,
        "Alice",
        "This tool is for editors with at least 100 edits &lt;b&gt;sorry&lt;/b&gt;.",
    )
    assert_allowed(app, devwiki, "Sysop")
    assert seen == ["Alice", "Sysop"]


def test_first_refusing_check_wins_and_later_ones_are_not_asked(devwiki, redis_client):
    app = make_app(devwiki, redis_client)
    wikimedia = get_state(app).ext
    asked = []
    wikimedia.login_check(lambda user: asked.append("first") or None)
    wikimedia.login_check(lambda user: asked.append("second") or "No one today.")
    wikimedia.login_check(lambda user: asked.append("third") or "Never asked.")
    assert_refused(app, devwiki, redis_client, "Sysop", "No one today.")
    assert asked == ["first", "second"]


def test_policies_apply_again_when_the_profile_is_re_read(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_PROFILE_MAX_AGE=0.3)
    wikimedia = get_state(app).ext
    allowed = {"Alice"}
    wikimedia.login_check(lambda user: None if user.username in allowed else "Not any more.")
    client = app.test_client()
    login(client, devwiki, "Alice")
    assert client.get("/private").status_code == 200
    allowed.clear()
    time.sleep(0.4)
    assert client.get("/private").status_code == 302
    assert login_records(redis_client) == []


def test_refused_login_leaves_other_browsers_logins_alone(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_DENY_BLOCKED=True)
    first = app.test_client()
    login(first, devwiki, "Alice")
    records = login_records(redis_client)
    other = app.test_client()
    assert login(other, devwiki, "Blocked").status_code == 403
    assert login_records(redis_client) == records
    assert first.get("/private").text == "private page of Alice"
