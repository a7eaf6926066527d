"""The pending-login cookie's byte budget in a real browser (issue 9 item 5b, catalogue PC-2).

Headless Debian Chromium, the sample tool on a real WSGI server. Before the budget, visits to
``/auth/login?next=<2000 characters>`` (which any site can make a visitor do) grew the cookie
past the 4 KB Chromium keeps: the browser silently kept the old value, and the visitor's own
logins failed until the entries expired ten minutes later.
"""

from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import Page, Response
from test_browser import browser, log_in_through_consent, page  # noqa: F401 (fixtures)
from toolkit import live_server, live_tool_config, register_tool

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.pending import COOKIE_NAME
from template_tool import create_app


def _pending_value(response: Response) -> str | None:
    """The pending-login cookie value a response sets, if any."""
    header = response.header_value("set-cookie") or ""
    for line in header.split("\n"):
        name, _, rest = line.partition("=")
        if name.strip() == COOKIE_NAME:
            return rest.split(";", 1)[0]
    return None


def test_browser_keeps_every_pending_cookie_and_logs_in_after_long_next_visits(
    page: Page,  # noqa: F811 (the fixture imported above)
    clean_env,
    devwiki: DevWiki,
    redis_server,
    redis_client,
):
    register_tool(devwiki, None)

    def make_app(base: str):
        return create_app(live_tool_config(base, devwiki.base_url, redis_server.url))

    sent: list[str] = []

    def remember(response: Response) -> None:
        if "/auth/login" in response.url:
            value = _pending_value(response)
            if value is not None:
                sent.append(value)

    page.on("response", remember)
    with live_server(make_app) as base:
        for length in (2000, 2000, 1500, 1250, 1250, 900, 2000):
            page.goto(f"{base}/auth/login?next={quote('/' + 'a' * (length - 1), safe='')}")
            held = {c["name"]: c["value"] for c in page.context.cookies(base + "/auth/callback")}
            assert sent, "the login start set no pending cookie"
            # The browser kept what the tool sent: it was small enough to be stored.
            assert held.get(COOKIE_NAME) == sent[-1], f"Chromium dropped the cookie (next={length})"
        log_in_through_consent(page, base, "Alice", "pending-budget")
        assert page.locator("header bdi").inner_text() == "Alice"
