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


def assert_refused(
    app,
    devwiki,
    redis_client,
    username: str,
    message: str,
    *,
    language: str = "en",
    english: str | None = None,
) -> None:
    """``username``'s login is refused with a 403 page in ``language`` that says ``message``;
    the ``login_failed`` signal carries the English text (``english``, or ``message``)."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    failures = []
    with signals.login_failed.connected_to(lambda sender, **kw: failures.append(kw)):
        response = login(client, devwiki, username)
    assert response.status_code == 403
    assert ("Anmeldung abgewiesen" if language == "de" else "Login refused") in response.text
    assert message in response.text
    assert failures == [{"reason": "policy", "description": failures[0]["description"]}]
    assert html.unescape(english or message) in failures[0]["description"]
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
    assert_refused(app, devwiki, redis_client, "Newbie", "needs the autoconfirmed right")
    assert_allowed(app, devwiki, "Alice")


@pytest.mark.parametrize("groups", [["sysop"], "sysop", "sysop, user"])
def test_groups_can_be_required_at_login(devwiki, redis_client, groups):
    app = make_app(devwiki, redis_client, WIKIMEDIA_REQUIRED_GROUPS=groups)
    assert_refused(app, devwiki, redis_client, "Alice", "members of the sysop group")
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


def test_several_missing_rights_are_named_in_one_sentence(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_REQUIRED_RIGHTS=["block", "delete", "edit"])
    assert_refused(
        app,
        devwiki,
        redis_client,
        "Alice",
        "This tool needs these rights, which your account does not have: block, delete.",
    )


@pytest.mark.parametrize(
    ("config", "username", "german", "english"),
    [
        (
            {"WIKIMEDIA_DENY_BLOCKED": True},
            "Blocked",
            "Gesperrte Benutzerkonten können sich bei diesem Werkzeug nicht anmelden.",
            "Blocked accounts cannot log in to this tool.",
        ),
        (
            {"WIKIMEDIA_REQUIRE_CONFIRMED_EMAIL": True},
            "NoEmail",
            "Dieses Werkzeug erfordert ein Benutzerkonto mit bestätigter E-Mail-Adresse.",
            "This tool needs an account with a confirmed email address.",
        ),
        (
            {"WIKIMEDIA_REQUIRED_RIGHTS": ["block"]},
            "Alice",
            "Dieses Werkzeug erfordert das Recht block, das dein Benutzerkonto nicht hat.",
            "This tool needs the block right, which your account does not have.",
        ),
        (
            {"WIKIMEDIA_REQUIRED_GROUPS": ["sysop", "steward"]},
            "Alice",
            "Dieses Werkzeug ist nur für Mitglieder dieser Gruppen, zu denen dein "
            "Benutzerkonto nicht gehört: steward, sysop.",
            "This tool is only for members of these groups, which your account is not in: "
            "steward, sysop.",
        ),
    ],
)
def test_a_policy_refusal_speaks_the_users_language(
    devwiki, redis_client, config, username, german, english
):
    """The page is in the browser's language; the signal (and so logs) and JSON stay English."""
    app = make_app(devwiki, redis_client, **config)
    assert_refused(app, devwiki, redis_client, username, german, language="de", english=english)
