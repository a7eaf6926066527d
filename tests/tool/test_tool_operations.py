"""Running the tool: failed logins off the callback URL, the favicon, the deep health check, the
scheduled job, and the Build Service files."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from toolkit import TOOLFORGE_CALLBACK, register_tool

from flask_wikimedia.devwiki import DevClient, DevWiki
from flask_wikimedia.testing import login, start_login
from template_tool import create_app, health

ROOT = Path(__file__).resolve().parents[2]
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def deliver(client, callback: str, headers=None):
    parts = urlsplit(callback)
    return client.get(f"{parts.path}?{parts.query}", headers=headers or {})


def test_declined_login_in_a_browser_moves_off_the_callback_url(client, devwiki: DevWiki):
    login(client, devwiki, "Alice")
    callback = devwiki.approve(start_login(client), username="Alice", allow=False)
    response = deliver(client, callback, NAVIGATE)
    assert response.status_code == 303
    assert response.location == "/auth/failed"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/auth/failed")
    assert page.status_code == 403
    assert "You declined" in page.text
    assert "Try again" in page.text
    assert "Logged in as <bdi>Alice</bdi>" in page.text  # the login that was there stays
    # A reload shows the same page; the next login clears it.
    assert client.get("/auth/failed").status_code == 403
    client.get("/auth/login")
    assert client.get("/auth/failed").status_code == 400


def test_refused_login_in_a_browser_moves_off_the_callback_url(client, devwiki: DevWiki):
    callback = devwiki.approve(start_login(client), username="Hidden")
    assert "code=" in callback
    response = deliver(client, callback, NAVIGATE)
    assert response.status_code == 303 and response.location == "/auth/failed"
    page = client.get("/auth/failed?uselang=de")
    assert page.status_code == 403
    assert "Anmeldung abgewiesen" in page.text
    assert "Mit diesem Benutzerkonto ist keine Anmeldung möglich." in page.text


def test_forged_callbacks_and_scripts_get_the_page_in_place(client, devwiki: DevWiki):
    # Not the answer to this browser's login: no redirect, nothing stored.
    assert client.get("/auth/callback?code=x&state=forged", headers=NAVIGATE).status_code == 400
    # Not a browser navigation (scripts, test clients): the error where it happened.
    callback = devwiki.approve(start_login(client), username="Alice", allow=False)
    assert deliver(client, callback).status_code == 403


def test_failed_page_with_nothing_to_show_offers_to_start_again(client):
    page = client.get("/auth/failed")
    assert page.status_code == 400
    assert "This login did not finish." in page.text
    assert 'href="/auth/login"' in page.text


def test_planted_failure_cannot_choose_an_arbitrary_class(client, tool_app):
    with client.session_transaction() as session:
        session["_wikimedia_failure"] = {"kind": "InternalServerError", "description": "<b>x</b>"}
    page = client.get("/auth/failed")
    assert page.status_code == 400
    assert "<b>x</b>" not in page.text


def test_favicon_is_served_without_a_session(client, redis_client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.data.startswith(b"<svg")
    assert "Set-Cookie" not in response.headers


def test_dev_wiki_has_a_favicon(devwiki: DevWiki):
    response = requests.get(f"{devwiki.base_url.rsplit('/w', 1)[0]}/favicon.ico", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")


@pytest.fixture(autouse=True)
def fresh_health_cache():
    health._cached.clear()
    yield
    health._cached.clear()


def test_plain_health_check_needs_nothing(client, redis_server):
    redis_server.pause()
    try:
        response = client.get("/healthz")
    finally:
        redis_server.resume()
    assert response.status_code == 200 and response.text == "ok\n"


def test_deep_health_check_reports_redis_and_wiki(client):
    response = client.get("/healthz?deep=1")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "redis": "ok", "wiki": "ok"}


def test_deep_health_check_says_down_without_details(client, redis_server, devwiki):
    devwiki.inject_fault("api", "500")
    redis_server.pause()
    try:
        response = client.get("/healthz?deep=1")
    finally:
        redis_server.resume()
        devwiki.clear_faults()
    assert response.status_code == 503
    assert response.json == {"status": "degraded", "redis": "down", "wiki": "down"}
    assert "127.0.0.1" not in response.text and "MediaWiki" not in response.text


def test_deep_health_check_is_cached_for_a_few_seconds(client, devwiki):
    assert client.get("/healthz?deep=1").json["wiki"] == "ok"
    devwiki.inject_fault("api", "500")
    try:
        # Within DEEP_CACHE_SECONDS: the wiki is not asked again.
        assert client.get("/healthz?deep=1").json["wiki"] == "ok"
        health._cached.clear()
        assert client.get("/healthz?deep=1").json["wiki"] == "down"
    finally:
        devwiki.clear_faults()


@pytest.fixture
def job_app(toolforge_env, clean_env, devwiki: DevWiki, redis_client):
    """The tool as its scheduled job sees it: the web service's envvars, plus the app token of
    an owner-only consumer (``toolforge envvars create FLASK_WIKIMEDIA_APP_TOKEN``)."""
    register_tool(devwiki, TOOLFORGE_CALLBACK)
    devwiki.add_client(
        DevClient(client_id="jobs-bot", secret="s" * 32, owner_only=True, owner="Sysop")
    )
    clean_env.setenv("FLASK_WIKIMEDIA_APP_TOKEN", devwiki.owner_only_token("jobs-bot"))
    return create_app()


def test_job_refreshes_the_wiki_name_into_redis_and_the_front_page_shows_it(job_app):
    tool_app = job_app
    client = tool_app.test_client()
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
    runner = tool_app.test_cli_runner()
    result = runner.invoke(args=["refresh-wiki-info"])
    assert result.exit_code == 0, result.output
    assert "Development wiki" in result.output
    key = f"{tool_app.config['SESSION_KEY_PREFIX']}wiki-info"
    redis = tool_app.extensions["template_tool.redis"]
    stored = json.loads(redis.get(key))
    assert stored["sitename"] == "Development wiki"
    assert 0 < redis.ttl(key) <= 2 * 24 * 3600
    assert "This tool works with Development wiki" in client.get("/").text


def test_job_reports_a_failing_wiki_and_keeps_the_old_value(job_app, devwiki):
    tool_app = job_app
    runner = tool_app.test_cli_runner()
    assert runner.invoke(args=["refresh-wiki-info"]).exit_code == 0
    devwiki.inject_fault("api", "500", times=5)
    try:
        result = runner.invoke(args=["refresh-wiki-info"])
    finally:
        devwiki.clear_faults()
    assert result.exit_code == 1
    assert "the wiki did not answer usefully" in result.output
    key = f"{tool_app.config['SESSION_KEY_PREFIX']}wiki-info"
    assert tool_app.extensions["template_tool.redis"].get(key) is not None


def test_build_service_files():
    assert (ROOT / ".python-version").read_text().strip() == "3.13"
    procfile = (ROOT / "Procfile").read_text()
    assert procfile.startswith("web: gunicorn ")
    assert "app:app" in procfile
    service = yaml.safe_load((ROOT / "service.template").read_text())
    assert service["type"] == "buildservice"
    assert service["mount"] == "none"
    assert service["health-check-path"] == "/healthz"
    jobs = yaml.safe_load((ROOT / "jobs.yaml").read_text())
    (job,) = jobs
    assert job["command"] == "flask --app app refresh-wiki-info"
    assert job["schedule"]
    assert job["image"].startswith("tool-")
    assert (ROOT / "template_tool/static/codex/VERSION").read_text().strip() == "2.7.0"


def test_deep_health_check_without_redis_in_local_development(clean_env):
    app = create_app({"TESTING": True})  # zero configuration: cookie sessions, no Redis
    health._cached.clear()
    with app.test_client() as client:
        response = client.get("/healthz?deep=1")
    # The mounted development wiki is this very app, which a test client does not serve over
    # HTTP: "down" is the truth here; what matters is that Redis reads "unused", not "down".
    assert response.json["redis"] == "unused"
