"""An app mounted below a path (SCRIPT_NAME) keeps its mount point in every URL back into it
(issue 9.7): the decorators' ``next``, the redirect after login and logout, the templates and
error pages; ``safe_next`` accepts the mounted path and refuses the rest of the site."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from apps import CLIENT_ID, CLIENT_SECRET, make_app
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from flask_wikimedia.devwiki import DevClient, DevWiki
from flask_wikimedia.redirects import safe_next
from template_tool import create_app as create_tool

MOUNT = "/a"


def mounted(app: Flask) -> Client:
    """``app`` at /a; the site's root is another app, which must never be a target."""
    other = Flask("other")
    other.add_url_rule("/<path:anything>", "other", lambda anything: "another app")
    return Client(DispatcherMiddleware(other, {MOUNT: app.wsgi_app}))


@pytest.fixture
def browser(devwiki: DevWiki, redis_client: redis.Redis) -> Client:
    # Any loopback callback: the mounted app's is http://localhost/a/auth/callback.
    devwiki.add_client(
        DevClient(
            client_id=CLIENT_ID,
            secret=CLIENT_SECRET,
            redirect_uri=None,
            grants=["basic", "editpage", "highvolume"],
        )
    )
    return mounted(make_app(devwiki, redis_client))


def log_in_from(browser: Client, devwiki: DevWiki, path: str) -> str:
    """Visit ``path`` logged out and follow the login through; return where it lands."""
    bounce = browser.get(path, headers={"Accept": "text/html"})
    assert bounce.status_code == 302
    login = bounce.headers["Location"]
    assert login.startswith(f"{MOUNT}/auth/login?")
    authorize = browser.get(login).headers["Location"]
    assert parse_qs(urlsplit(authorize).query)["redirect_uri"] == [
        f"http://localhost{MOUNT}/auth/callback"
    ]
    callback = urlsplit(devwiki.approve(authorize, username="Alice"))
    done = browser.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 303, done.get_data(as_text=True)[:300]
    return done.headers["Location"]


def test_login_required_comes_back_to_the_mounted_page(browser, devwiki):
    """A whole login from a protected page of an app at /a ends on /a/private, not /private
    (another app's page)."""
    assert log_in_from(browser, devwiki, f"{MOUNT}/private?x=1") == f"{MOUNT}/private?x=1"
    page = browser.get(f"{MOUNT}/private")
    assert page.status_code == 200
    assert "private page of Alice" in page.get_data(as_text=True)


def test_logout_and_error_pages_stay_in_the_mount_point(browser, devwiki):
    log_in_from(browser, devwiki, f"{MOUNT}/private")
    forbidden = browser.get(f"{MOUNT}/sysop").get_data(as_text=True)
    assert f'href="{MOUNT}/"' in forbidden
    me = browser.get(f"{MOUNT}/me").get_data(as_text=True)
    assert f'action="{MOUNT}/auth/logout"' in me
    token = me.split('name="csrf_token" value="')[1].split('"')[0]
    out = browser.post(
        f"{MOUNT}/auth/logout", data={"csrf_token": token, "next": "/private"}
    )  # outside the mount point: refused, back to the app's own root
    assert out.status_code == 303
    assert out.headers["Location"] == f"{MOUNT}/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/a", "/a"),
        ("/a/", "/a/"),
        ("/a/private?x=1", "/a/private?x=1"),
        ("/a?tab=1", "/a?tab=1"),
        ("/private", "/a/"),
        ("/", "/a/"),
        ("/ab/private", "/a/"),
        ("/b/a/", "/a/"),
        ("/a/../b/x", "/a/"),
        ("/a/%2e%2e/b", "/a/"),
        ("/a/./x", "/a/"),
        ("//a/x", "/a/"),
    ],
)
def test_safe_next_keeps_to_the_mount_point(value, expected):
    assert safe_next(value, "/a/", root=MOUNT) == expected


def test_safe_next_at_the_site_root_is_unchanged():
    assert safe_next("/private?x=1") == "/private?x=1"
    assert safe_next("/x/../y") == "/"


def test_the_sample_tool_links_keep_the_mount_point(monkeypatch):
    monkeypatch.setenv("TOOLFORGE", "0")
    app = create_tool({"TESTING": True, "SECRET_KEY": "k" * 40})
    page = mounted(app).get(f"{MOUNT}/profile", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["Location"].startswith(f"{MOUNT}/auth/login?next={MOUNT}/profile")
    home = mounted(app).get(f"{MOUNT}/").get_data(as_text=True)
    assert f'href="{MOUNT}/auth/login?next={MOUNT}/"' in home  # the header's login link
    assert f'href="{MOUNT}/static/style.css"' in home
