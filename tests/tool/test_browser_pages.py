"""Every page of the tool in English, German and Hebrew, light and dark, desktop and phone width,
in real headless Chromium; error pages with a logged-in user show the account header and the
way out that fits. Screenshots: tests/artifacts/pages-<lang>-<page>-<scheme>-<width>.png.

The three languages arrive three ways: English as the default, German from the browser's
Accept-Language (locale de-DE), Hebrew from the language selector (a cookie).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page
from test_browser import ARTIFACTS, browser  # noqa: F401 - the module-scoped Chromium fixture
from toolkit import CLIENT_ID, CLIENT_SECRET, SECRET_KEY, live_server, register_tool

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.messages import LIBRARY_CATALOG
from template_tool import create_app
from template_tool.i18n import CATALOG

SCHEMES = ("light", "dark")
WIDTHS = {"desktop": (1100, 800), "phone": (390, 844)}
LOCALES = {"en": "en-US", "de": "de-DE", "he": "en-US"}


def tool(lang: str, key: str, *params: object) -> str:
    return CATALOG.text(key, lang, *params)


def lib(lang: str, key: str, *params: object) -> str:
    return LIBRARY_CATALOG.text(key, lang, *params)


@pytest.fixture
def served(clean_env, devwiki: DevWiki, redis_server) -> Iterator[str]:
    register_tool(devwiki, None)

    def make_app(base: str):
        return create_app(
            {
                "SECRET_KEY": SECRET_KEY,
                "WIKIMEDIA_CLIENT_ID": CLIENT_ID,
                "WIKIMEDIA_CLIENT_SECRET": CLIENT_SECRET,
                "WIKIMEDIA_WIKI_URL": devwiki.base_url,
                "WIKIMEDIA_REDIRECT_URI": base + "/auth/callback",
                "REDIS_URL": redis_server.url,
                "REDIS_KEY_PREFIX": secrets.token_hex(16),
                "TOOL_CONTACT": "tests@example.org",
            }
        )

    with live_server(make_app) as base:
        yield base
    devwiki.clear_faults()


def shoot_all(page: Page, lang: str, name: str) -> None:
    """The current page in both colour schemes at both widths."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for width_name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(
                path=str(ARTIFACTS / f"pages-{lang}-{name}-{scheme}-{width_name}.png"),
                full_page=True,
                animations="disabled",  # Codex buttons fade between schemes: finish that first
            )
            # Nothing may stick out sideways at phone width (readable without zooming out).
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{name} ({lang}, {width_name}) is {overflow}px too wide"
    page.set_viewport_size({"width": WIDTHS["desktop"][0], "height": WIDTHS["desktop"][1]})


def consent(page: Page, username: str, allow: bool = True) -> None:
    page.wait_for_selector("#mw-mwoauth-authorize-form")
    page.check(f'input[name="user"][value="{username}"]')
    page.click("button.allow" if allow else 'button[name="cancel"]')


def assert_page_language(page: Page, lang: str) -> None:
    assert page.get_attribute("html", "lang") == lang
    assert page.get_attribute("html", "dir") == ("rtl" if lang == "he" else "ltr")


def assert_account_header(page: Page, lang: str, username: str = "Alice") -> None:
    header = page.inner_text("header .account")
    assert tool(lang, "tool-logged-in-as", username) in header
    assert tool(lang, "tool-logout") in header


def assert_action(page: Page, lang: str, key: str) -> None:
    actions = page.locator(".actions")
    assert lib(lang, key) in actions.inner_text(), (key, actions.inner_text())


def assert_error_page(page: Page, lang: str, action: str, title: str | None = None) -> None:
    """An error page in ``lang`` for a logged-in user: its title (when given) in the heading,
    the account header, and the way out named by the message key ``action``."""
    assert_page_language(page, lang)
    if title is not None:
        assert title in page.inner_text("h1")
    assert_account_header(page, lang)
    assert_action(page, lang, action)


def open_error_page(
    page: Page, url: str, status: int, lang: str, action: str, title: str | None = None
) -> None:
    """Go to ``url``, which must answer ``status`` with the error page ``assert_error_page``
    describes."""
    response = page.goto(url)
    assert response is not None and response.status == status
    assert_error_page(page, lang, action, title)


@pytest.mark.parametrize("lang", ["en", "de", "he"])
def test_every_page_in_three_languages_light_dark_desktop_phone(
    browser: Browser,  # noqa: F811
    served: str,
    devwiki: DevWiki,
    lang: str,
) -> None:
    base = served
    context = browser.new_context(locale=LOCALES[lang], viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    csp: list[str] = []
    page.on(
        "console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None
    )
    try:
        page.goto(base + "/")
        if lang == "he":
            # The language selector: a GET form that keeps the choice in a cookie.
            page.select_option("#uselang", "he")
            page.get_by_role("button", name=tool("en", "tool-language-submit")).click()
            page.wait_for_url(base + "/")
        assert_page_language(page, lang)
        assert tool(lang, "tool-login-button") in page.inner_text("main")
        shoot_all(page, lang, "index-logged-out")

        page.get_by_role("link", name=tool(lang, "tool-login-button")).click()
        consent(page, "Alice")
        page.wait_for_url(base + "/")
        assert_page_language(page, lang)
        assert_account_header(page, lang)
        shoot_all(page, lang, "index")

        for path, name in (("/profile", "profile"), ("/sandbox", "sandbox")):
            response = page.goto(base + path)
            assert response is not None and response.status == 200
            assert_account_header(page, lang)
            shoot_all(page, lang, name)

        # 403 for a missing right: who you are, what is missing, log in as someone else.
        other_account = "wikimedia-action-other-account"
        open_error_page(page, base + "/admin-tools", 403, lang, other_account)
        assert page.locator("main code", has_text="block").count() == 1
        shoot_all(page, lang, "error-403-right")

        open_error_page(page, base + "/sysops", 403, lang, other_account)
        assert page.locator("main code", has_text="sysop").count() == 1
        shoot_all(page, lang, "error-403-group")

        # The tool's own 404, not Werkzeug's.
        title = tool(lang, "tool-error-404-title")
        open_error_page(page, base + "/no-such-page", 404, lang, "wikimedia-action-home", title)
        shoot_all(page, lang, "error-404")

        # A stale or forged login link: 400 where it stands, "try again", still logged in.
        forged = base + "/auth/callback?code=x&state=forged"
        title = lib(lang, "wikimedia-login-failed-title")
        open_error_page(page, forged, 400, lang, "wikimedia-action-try-again", title)
        shoot_all(page, lang, "error-400-login-failed")

        # The wiki down while logged in: still logged in, "try again" reloads the page.
        devwiki.inject_fault("api", "500", times=5)
        title = lib(lang, "wikimedia-wiki-unavailable-title")
        open_error_page(page, base + "/sandbox", 503, lang, "wikimedia-action-try-again", title)
        assert page.get_attribute(".actions a >> nth=0", "href") == "/sandbox"
        shoot_all(page, lang, "error-503-wiki")
        devwiki.clear_faults()

        # Cancel on the consent page: the page ends off the callback URL, offers "try again",
        # and the login that was there is untouched.
        page.goto(base + "/auth/login")
        consent(page, "Alice", allow=False)
        page.wait_for_url(base + "/auth/failed")
        assert urlsplit(page.url).query == ""
        title = lib(lang, "wikimedia-declined-title")
        assert_error_page(page, lang, "wikimedia-action-try-again", title)
        shoot_all(page, lang, "error-declined")

        # A refused account (hidden on the wiki): same, with "log in as someone else".
        page.goto(base + "/auth/login")
        consent(page, "Hidden")
        page.wait_for_url(base + "/auth/failed")
        assert "code=" not in page.url and "state=" not in page.url
        title = lib(lang, "wikimedia-refused-title")
        assert_error_page(page, lang, other_account, title)
        shoot_all(page, lang, "error-refused")

        # Log out from the header; the front page again, logged out.
        page.get_by_role("button", name=tool(lang, "tool-logout")).first.click()
        page.wait_for_url(base + "/")
        assert tool(lang, "tool-logged-in-as", "Alice") not in page.inner_text("header")
    finally:
        context.close()
    assert csp == [], "the tool's pages broke its own CSP"
