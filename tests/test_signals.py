"""Signals (blinker): logged_in, logged_out, login_failed (with a reason), token_refreshed; sent
with the app as sender and the right arguments, and none of them carries a token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from apps import make_app
from support import login_due_for_refresh

from flask_wikimedia import WikimediaUser, signals
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.testing import finish_login, login, logout, start_login

SIGNALS = ("logged_in", "logged_out", "login_failed", "token_refreshed")


@pytest.fixture
def app(devwiki: DevWiki, redis_client: redis.Redis):
    return make_app(devwiki, redis_client, WIKIMEDIA_DENY_BLOCKED=True)


@contextmanager
def recorded() -> Iterator[list[tuple[str, Any, dict[str, Any]]]]:
    """Every signal sent inside the block, as (name, sender, keyword arguments)."""
    events: list[tuple[str, Any, dict[str, Any]]] = []
    with ExitStack() as stack:
        for name in SIGNALS:

            def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
                events.append((_name, sender, kwargs))

            stack.enter_context(getattr(signals, name).connected_to(receiver))
        yield events


def test_logged_in_carries_the_user(app, client, devwiki):
    with recorded() as events:
        login(client, devwiki, "Sysop")
    assert [(name, sender) for name, sender, _ in events] == [("logged_in", app)]
    kwargs = events[0][2]
    assert set(kwargs) == {"user"}
    assert isinstance(kwargs["user"], WikimediaUser)
    assert kwargs["user"].username == "Sysop"
    assert "sysop" in kwargs["user"].groups


def test_logged_out_carries_the_user_who_left(app, client, devwiki):
    login(client, devwiki, "Alice")
    with recorded() as events:
        assert logout(client).status_code == 303
    assert [name for name, _, _ in events] == ["logged_out"]
    assert events[0][1] is app
    assert events[0][2]["user"].username == "Alice"


def test_login_ended_by_the_server_is_a_logout_with_a_reason(app, client, devwiki):
    login_due_for_refresh(client, devwiki)
    devwiki.revoke_tokens("Alice")
    with recorded() as events:
        assert client.get("/private").status_code == 302
    assert [name for name, _, _ in events] == ["logged_out"]
    assert events[0][2]["user"].username == "Alice"
    assert events[0][2]["reason"] == "refresh_refused"


def test_token_refreshed_carries_the_user(app, client, devwiki):
    login_due_for_refresh(client, devwiki)
    with recorded() as events:
        assert client.get("/private").status_code == 200
        assert client.get("/private").status_code == 200
    assert [(name, sender) for name, sender, _ in events] == [("token_refreshed", app)]
    assert set(events[0][2]) == {"user"}
    assert events[0][2]["user"].username == "Alice"


def _declined(client, devwiki):
    finish_login(client, devwiki.approve(start_login(client), username="Alice", allow=False))


def _forged_state(client, devwiki):
    start_login(client)
    client.get("/auth/callback?code=abc&state=forged")


def _wrong_verifier(client, devwiki):
    first = devwiki.approve(start_login(client, "/one"), username="Alice")
    second = devwiki.approve(start_login(client, "/two"), username="Alice")
    code = parse_qs(urlsplit(first).query)["code"][0]
    state = parse_qs(urlsplit(second).query)["state"][0]
    client.get(f"/auth/callback?code={code}&state={state}")


def _wiki_down(client, devwiki):
    callback = devwiki.approve(start_login(client), username="Alice")
    devwiki.inject_fault("token", "500")
    finish_login(client, callback)


def _wiki_garbage(client, devwiki):
    callback = devwiki.approve(start_login(client), username="Alice")
    devwiki.inject_fault("profile", "garbage")
    finish_login(client, callback)


@pytest.mark.parametrize(
    ("attempt", "reason"),
    [
        (_declined, "declined"),
        (_forged_state, "state"),
        (_wrong_verifier, "wiki_refused"),
        (_wiki_down, "wiki_unavailable"),
        (_wiki_garbage, "wiki_bad_response"),
        (lambda client, wiki: login(client, wiki, "Blocked"), "policy"),
        (lambda client, wiki: login(client, wiki, "Hidden"), "refused"),
    ],
)
def test_login_failed_says_why(app, client, devwiki, attempt, reason):
    with recorded() as events:
        attempt(client, devwiki)
    assert [(name, sender) for name, sender, _ in events] == [("login_failed", app)]
    kwargs = events[0][2]
    assert set(kwargs) == {"reason", "description"}
    assert kwargs["reason"] == reason
    assert isinstance(kwargs["description"], str) and kwargs["description"]


def test_no_signal_ever_carries_a_token(app, client, devwiki):
    """A whole life: failed login, login, refresh, token refused by the API, logout."""
    from flask_wikimedia.api import user_session

    @app.get("/api-call")
    def api_call() -> str:
        return user_session().get_json(action="query", meta="userinfo")["query"]["userinfo"]["name"]

    with recorded() as events:
        _wiki_down(client, devwiki)
        login_due_for_refresh(client, devwiki)
        assert client.get("/private").status_code == 200
        devwiki.expire_access_tokens()
        assert client.get("/api-call").text == "Alice"
        assert logout(client).status_code == 303
    assert [name for name, _, _ in events] == [
        "login_failed",
        "logged_in",
        "token_refreshed",
        "token_refreshed",
        "logged_out",
    ]
    secrets = [*devwiki.access_tokens, *devwiki.refresh_tokens]
    assert len(secrets) >= 6
    for _, _, kwargs in events:  # users and words only: nothing that could hold a token
        assert all(isinstance(v, WikimediaUser | str) for v in kwargs.values())
    dumped = repr(events)
    for secret in secrets:
        assert secret not in dumped
        assert secret[:40] not in dumped
