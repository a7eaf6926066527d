"""login_required and requires_*: allowed, refused, logged out (browser GET, POST, JSON)."""

from __future__ import annotations

import pytest
import redis
from apps import make_app

from flask_wikimedia import requires_grant, requires_group, requires_right
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.testing import login


@pytest.mark.parametrize("path", ["/private", "/async", "/edit", "/sysop", "/grant"])
def test_logged_out_browser_get_is_redirected_to_login_with_next(client, path):
    response = client.get(path + "?x=1", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert f"next={path}?x%3D1" in response.headers["Location"]


def test_logged_out_post_gets_401(client):
    response = client.post("/private")
    assert response.status_code == 401


def test_logged_out_json_client_gets_401_json(client):
    response = client.get("/api/whoami", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json["error"] == "login_required"


@pytest.mark.parametrize(
    ("user", "path", "status", "text"),
    [
        ("Alice", "/private", 200, "private page of Alice"),
        ("Alice", "/async", 200, "async Alice"),
        ("Alice", "/edit", 200, "can edit"),
        ("Alice", "/block", 403, "<code>block</code>, <code>delete</code>"),
        ("Alice", "/sysop", 403, "sysop"),
        ("Alice", "/grant", 200, "has editpage"),
        ("Alice", "/nogrant", 403, "createaccount"),
        ("Sysop", "/block", 200, "can block"),
        ("Sysop", "/sysop", 200, "sysop only"),
        ("Blocked", "/edit", 403, "blocked"),
        ("Blocked", "/private", 200, "private page of Blocked"),
    ],
)
def test_decorators_allow_and_refuse(client, devwiki, user, path, status, text):
    login(client, devwiki, user)
    response = client.get(path)
    assert response.status_code == status
    assert text in response.text


def test_forbidden_json_names_what_is_missing(client, devwiki):
    login(client, devwiki, "Alice")
    response = client.get("/block", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"
    assert "block, delete" in response.json["message"]


def test_unauthorized_handler_replaces_the_default(devwiki, redis_client):
    app = make_app(devwiki, redis_client)
    app.extensions["wikimedia"].ext.unauthorized_handler(lambda: ("please log in", 418))
    response = app.test_client().get("/private")
    assert response.status_code == 418
    assert response.text == "please log in"


def test_decorator_without_names_is_a_type_error():
    from flask_wikimedia import requires_right

    with pytest.raises(TypeError):
        requires_right()


@pytest.fixture
def guarded(devwiki: DevWiki, redis_client: redis.Redis):
    """Each requires_* decorator, with and without ``allow_blocked``."""
    app = make_app(devwiki, redis_client)
    for name, decorator in {
        "right": requires_right("read"),
        "group": requires_group("user"),
        "grant": requires_grant("basic"),
        "right-open": requires_right("read", allow_blocked=True),
        "group-open": requires_group("user", allow_blocked=True),
        "grant-open": requires_grant("basic", allow_blocked=True),
    }.items():
        app.add_url_rule(f"/guarded/{name}", f"guarded-{name}", decorator(lambda: "let in"))
    return app


@pytest.mark.parametrize("kind", ["right", "group", "grant"])
def test_every_requires_decorator_refuses_blocked_users_unless_allowed(guarded, devwiki, kind):
    """Issue 9.9: requires_group and requires_grant let blocked users through while
    requires_right refused them; one rule for all three, allow_blocked=True to opt out."""
    client = guarded.test_client()
    login(client, devwiki, "Blocked", rights=["read"], groups=["user"])
    refused = client.get(f"/guarded/{kind}")
    assert refused.status_code == 403
    assert "blocked" in refused.text
    assert client.get(f"/guarded/{kind}-open").text == "let in"
    other = guarded.test_client()
    login(other, devwiki, "Alice", rights=["read"], groups=["user"])
    assert other.get(f"/guarded/{kind}").text == "let in"
