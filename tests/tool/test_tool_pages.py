"""The tool's pages as on Toolforge: logins through the dev wiki, gated pages, the sandbox edit,
health check and error pages."""

from __future__ import annotations

import re

import pytest
from toolkit import TOOLFORGE_CALLBACK, register_tool

from flask_wikimedia.testing import login
from template_tool import create_app


def csrf_token_of(page_text: str) -> str:
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page_text)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_front_page_logged_out_offers_the_login(client):
    page = client.get("/")
    assert page.status_code == 200
    # A Codex primary button (a link), with the log-in icon: the page's one main action.
    button = re.search(r'<a class="([^"]*)" href="/auth/login">(.*?)</a>', page.text, re.S)
    assert button, page.text
    assert "cdx-button--weight-primary" in button.group(1)
    assert button.group(2).endswith("Log in with Wikimedia")
    assert "icon-logIn" in button.group(2)
    assert "Logged in as" not in page.text


def test_front_page_logged_in_greets_with_bdi_and_logout_form(client, devwiki):
    login(client, devwiki, "Alice")
    page = client.get("/")
    assert "Hello, <bdi>Alice</bdi>!" in page.text
    assert 'action="/auth/logout"' in page.text
    assert 'name="csrf_token"' in page.text


def test_profile_needs_login(client):
    response = client.get("/profile")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/profile"


def test_profile_shows_groups_rights_grants_edits_and_registration(client, devwiki):
    login(client, devwiki, "Sysop")
    page = client.get("/profile")
    assert page.status_code == 200
    assert "Profile of <bdi>Sysop</bdi>" in page.text
    assert "12,345" in page.text
    assert "2010-01-01" in page.text
    for name in ("sysop", "block", "editpage", "basic"):
        assert f"<code>{name}</code>" in page.text


def test_admin_tools_refuse_a_plain_user_naming_the_right(client, devwiki):
    login(client, devwiki, "Alice")
    page = client.get("/admin-tools")
    assert page.status_code == 403
    assert "block" in page.text
    assert '<link rel="stylesheet" href="/static/style.css">' in page.text  # the tool's look


def test_admin_tools_refuse_a_blocked_user(client, devwiki):
    login(client, devwiki, "Blocker", rights=["block"], blocked=True)
    page = client.get("/admin-tools")
    assert page.status_code == 403
    assert "blocked" in page.text


def test_a_user_given_the_right_sees_admin_tools(client, devwiki):
    login(client, devwiki, "Pat", rights=["block"])
    assert client.get("/admin-tools").status_code == 200
    assert client.get("/sysops").status_code == 403


def test_sysop_sees_both_gated_pages(client, devwiki):
    login(client, devwiki, "Sysop")
    assert client.get("/admin-tools").status_code == 200
    assert client.get("/sysops").status_code == 200


def test_sysops_page_refuses_others_naming_the_group(client, devwiki):
    login(client, devwiki, "Alice")
    page = client.get("/sysops")
    assert page.status_code == 403
    assert "<code>sysop</code>" in page.text


def test_sandbox_appends_a_line_as_the_user(client, devwiki):
    login(client, devwiki, "Alice")
    page = client.get("/sandbox")
    assert page.status_code == 200
    assert "No edits yet." in page.text
    response = client.post(
        "/sandbox", data={"csrf_token": csrf_token_of(page.text), "line": "Testing  the\ttool"}
    )
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/sandbox"
    assert devwiki.edits[-1]["title"] == "User:Alice/sandbox"
    assert devwiki.edits[-1]["user"] == "Alice"
    assert "* Testing the tool ~~~~" in devwiki.edits[-1]["text"]
    after = client.get("/sandbox")
    assert "Added your line to User:Alice/sandbox." in after.text
    assert "<bdi>User:Alice/sandbox</bdi>" in after.text  # the edit is listed


def test_sandbox_post_without_csrf_token_is_refused(client, devwiki):
    login(client, devwiki, "Alice")
    response = client.post("/sandbox", data={"line": "no token"})
    assert response.status_code == 400
    assert "CSRF" in response.text
    assert devwiki.edits == []


@pytest.mark.parametrize("referer", [None, "https://evil.example/", "http://localhost/"])
def test_https_post_from_elsewhere_is_refused(client, devwiki, referer):
    login(client, devwiki, "Alice")
    csrf = csrf_token_of(client.get("/sandbox").text)
    headers = {"Referer": referer} if referer else {}
    client.environ_base.pop("HTTP_REFERER")
    response = client.post("/sandbox", data={"csrf_token": csrf, "line": "x"}, headers=headers)
    assert response.status_code == 400
    assert devwiki.edits == []


def test_sandbox_edit_needs_the_editpage_grant(toolforge_env, redis_client, devwiki):
    register_tool(devwiki, TOOLFORGE_CALLBACK, grants=["basic"])
    client = create_app().test_client()
    client.environ_base["HTTP_REFERER"] = "https://localhost/"
    login(client, devwiki, "Alice")
    page = client.get("/sandbox")
    assert "did not give this tool the <code>editpage</code> grant" in page.text
    csrf = csrf_token_of(client.get("/").text)
    response = client.post("/sandbox", data={"csrf_token": csrf, "line": "x"})
    assert response.status_code == 403, response.text
    assert "editpage" in response.text
    assert devwiki.edits == []


def test_logout_ends_the_login(client, devwiki):
    login(client, devwiki, "Alice")
    page = client.get("/")
    response = client.post("/auth/logout", data={"csrf_token": csrf_token_of(page.text)})
    assert response.status_code == 303
    assert "Log in with Wikimedia" in client.get("/").text


def test_logout_without_csrf_token_is_refused(client, devwiki):
    login(client, devwiki, "Alice")
    assert client.post("/auth/logout").status_code == 400
    assert "Hello, <bdi>Alice</bdi>" in client.get("/").text


def test_logout_with_another_sessions_token_is_refused(client, tool_app, devwiki):
    other = tool_app.test_client()
    login(other, devwiki, "Sysop")
    foreign = csrf_token_of(other.get("/").text)
    login(client, devwiki, "Alice")
    assert client.post("/auth/logout", data={"csrf_token": foreign}).status_code == 400


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no-such-page", 404), ("GET", "/auth/logout", 405), ("POST", "/healthz", 405)],
)
def test_error_pages_have_the_tools_look(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert '<link rel="stylesheet" href="/static/style.css">' in response.text
    assert f"Error {status}" in response.text


def test_extension_errors_have_the_tools_look(client):
    response = client.get("/auth/callback?code=x")  # no state
    assert response.status_code == 400
    assert "Login failed" in response.text
    assert '<link rel="stylesheet" href="/static/style.css">' in response.text


def test_internal_errors_show_no_details(toolforge_env, redis_client, devwiki):
    app = create_app()

    @app.get("/_boom")
    def boom() -> str:
        raise ValueError("secret detail")

    response = app.test_client().get("/_boom")
    assert response.status_code == 500
    assert "secret detail" not in response.text
    assert "Traceback" not in response.text
    assert '<link rel="stylesheet" href="/static/style.css">' in response.text


def test_json_clients_get_json_errors(client):
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json["status"] == 404


def test_wiki_down_during_api_call_is_a_503(client, devwiki):
    login(client, devwiki, "Alice")
    devwiki.stop()
    try:
        response = client.get("/sandbox")
    finally:
        devwiki.start()
    assert response.status_code == 503  # unreachable, not a bad answer
    assert '<link rel="stylesheet" href="/static/style.css">' in response.text
