"""The tool in a real browser (headless Chromium from Debian), served by real WSGI servers.

Screenshots go to tests/artifacts/. Never run `playwright install`: the browser is the system's
/usr/bin/chromium (apt-get install chromium).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from toolkit import live_server, live_tool_config, register_tool

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.state import get_state
from template_tool import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert violations == [], "the tool's pages broke its own CSP"


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"tool-{name}.png"), full_page=True)


def log_in_through_consent(page: Page, base: str, username: str, shot_prefix: str) -> None:
    page.goto(base + "/")
    screenshot(page, f"{shot_prefix}-logged-out")
    page.get_by_role("link", name="Log in with Wikimedia").click()
    page.wait_for_selector("#mw-mwoauth-authorize-form")
    screenshot(page, f"{shot_prefix}-consent")
    page.check(f'input[name="user"][value="{username}"]')
    page.click("button.allow")
    page.wait_for_url(base + "/")
    assert f"Hello, {username}!" in page.inner_text("main")


def test_browser_login_profile_gates_sandbox_edit_logout(
    page: Page, clean_env, devwiki: DevWiki, redis_server, redis_client
):
    register_tool(devwiki, None)  # any loopback callback

    def make_app(base: str):
        return create_app(live_tool_config(base, devwiki.base_url, redis_server.url))

    with live_server(make_app) as base:
        log_in_through_consent(page, base, "Alice", "redis")
        assert page.locator("header bdi").inner_text() == "Alice"
        screenshot(page, "redis-logged-in")

        page.goto(base + "/profile")
        assert "Profile of Alice" in page.inner_text("h1")
        assert "editpage" in page.inner_text("main")
        screenshot(page, "redis-profile")

        response = page.goto(base + "/admin-tools")
        assert response is not None and response.status == 403
        assert "block" in page.inner_text("main")
        screenshot(page, "redis-forbidden")

        page.goto(base + "/sandbox")
        page.fill("#line", "Hello from the browser test")
        page.get_by_role("button", name="Add it to my sandbox").click()
        page.wait_for_selector(".flash-success")
        assert "Added your line to User:Alice/sandbox." in page.inner_text(".flash-success")
        assert devwiki.edits[-1]["title"] == "User:Alice/sandbox"
        assert "Hello from the browser test" in devwiki.edits[-1]["text"]
        assert "User:Alice/sandbox" in page.inner_text("table")
        screenshot(page, "redis-sandbox")

        page.locator("header form.logout button").click()
        page.wait_for_url(base + "/")
        assert page.get_by_role("link", name="Log in with Wikimedia").is_visible()
        screenshot(page, "redis-logged-out-again")
        page.goto(base + "/profile")
        assert page.url.startswith(devwiki.base_url)  # sent to the wiki to log in again


def test_browser_zero_config_uses_the_mounted_development_wiki(page: Page, clean_env):
    clean_env.setenv("FLASK_DEBUG", "1")  # what `make run` sets: the development wiki's opt-in
    apps = []

    def make_app(base: str):
        app = create_app()
        apps.append(app)
        return app

    with live_server(make_app) as base:
        log_in_through_consent(page, base, "Sysop", "zeroconf")
        assert "/_devwiki/" not in page.url
        screenshot(page, "zeroconf-logged-in")
        response = page.goto(base + "/admin-tools")
        assert response is not None and response.status == 200
        page.goto(base + "/sandbox")
        page.get_by_role("button", name="Add it to my sandbox").click()
        page.wait_for_selector(".flash-success")
        wiki = get_state(apps[0]).dev_wiki
        assert wiki is not None
        assert wiki.edits[-1]["title"] == "User:Sysop/sandbox"
        screenshot(page, "zeroconf-sandbox")
