"""Translations: every message used exists and is documented, no English is left in templates,
the language is chosen as documented, and the extension's pages follow the tool's language."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flask_wikimedia.messages import LIBRARY_CATALOG
from flask_wikimedia.testing import login
from template_tool.errors import OWN_MESSAGES
from template_tool.i18n import CATALOG

ROOT = Path(__file__).resolve().parents[2]
TOOL_TEMPLATES = ROOT / "template_tool" / "templates"
LIBRARY_TEMPLATES = ROOT / "flask_wikimedia" / "templates"
TOOL_CODE = ROOT / "template_tool"
LIBRARY_CODE = ROOT / "flask_wikimedia"

# msg("key"...), text("key"...), wikimedia_msg("key"...), message="key", "tool-..." literals.
TOOL_KEY = re.compile(r"""["'](tool-[a-z0-9-]+)["']""")
LIBRARY_KEY = re.compile(r"""["'](wikimedia-[a-z0-9-]+)["']""")
DYNAMIC = re.compile(r"""["'](tool-error-)%s(-title|-text)["']""")


def files(directory: Path, pattern: str) -> list[Path]:
    return sorted(p for p in directory.rglob(pattern) if "devwiki" not in p.parts)


def used_keys(paths: list[Path], pattern: re.Pattern[str]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def dynamic_tool_keys() -> set[str]:
    """error.html builds tool-error-<key>-title/-text; errors.error_key says which keys."""
    keys = {str(code) for code in OWN_MESSAGES} | {"csrf", "generic"}
    return {f"tool-error-{key}-{part}" for key in keys for part in ("title", "text")}


def test_every_tool_message_used_exists_in_en_and_qqq():
    used = used_keys(files(TOOL_TEMPLATES, "*.html") + files(TOOL_CODE, "*.py"), TOOL_KEY)
    assert DYNAMIC.search((TOOL_TEMPLATES / "error.html").read_text())
    used |= dynamic_tool_keys()
    assert len(used) > 50
    assert used - set(CATALOG.texts["en"]) == set()
    assert used - set(CATALOG.documentation) == set()


def test_every_library_message_used_exists_in_en_and_qqq():
    paths = (
        files(TOOL_TEMPLATES, "*.html")
        + files(LIBRARY_TEMPLATES, "*.html")
        + files(LIBRARY_CODE, "*.py")
    )
    used = used_keys(paths, LIBRARY_KEY)
    # Keys built from a kind and a count (errors.MissingPermissions).
    used |= {f"wikimedia-forbidden-{k}{s}" for k in ("right", "group", "grant") for s in ("", "s")}
    used -= {"wikimedia-forbidden-"}
    assert len(used) > 30
    assert used - set(LIBRARY_CATALOG.texts["en"]) == set()
    assert used - set(LIBRARY_CATALOG.documentation) == set()


@pytest.mark.parametrize("catalog", [CATALOG, LIBRARY_CATALOG], ids=["tool", "library"])
def test_catalogs_are_translatewiki_files(catalog):
    english = set(catalog.texts["en"])
    # Nothing unused lingers, every message is documented, German is complete.
    assert set(catalog.documentation) == english
    assert set(catalog.texts["de"]) == english
    # Translations only translate: no keys English lacks, the same parameters.
    for language, texts in catalog.texts.items():
        assert set(texts) <= english, language
        for key, text in texts.items():
            wanted = set(re.findall(r"\$\d", catalog.texts["en"][key]))
            assert set(re.findall(r"\$\d", text)) == wanted, (language, key)
    for path in catalog.directory.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert "authors" in data["@metadata"], path


def test_hebrew_covers_the_header_the_front_page_and_error_pages():
    he = set(CATALOG.texts["he"])
    for prefix in ("tool-nav-", "tool-logged-in-as", "tool-logout", "tool-index-", "tool-error-"):
        wanted = {k for k in CATALOG.texts["en"] if k.startswith(prefix)}
        assert wanted <= he, wanted - he


class TextCollector(HTMLParser):
    """The text a person would read (and attributes they would hear or see)."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("alt", "title", "placeholder", "aria-label") and value:
                self.words += re.findall(r"[A-Za-z]{2,}", value)

    def handle_data(self, data: str) -> None:
        self.words += re.findall(r"[A-Za-z]{2,}", data)


def visible_words(template: str) -> list[str]:
    text = re.sub(r"\{#.*?#\}", " ", template, flags=re.S)  # comments
    text = re.sub(r"\{%.*?%\}", " ", text, flags=re.S)  # statements
    text = re.sub(r"\{\{.*?\}\}", " ", text, flags=re.S)  # expressions (messages among them)
    text = re.sub(r"<(code|style|script)\b.*?</\1>", " ", text, flags=re.S)  # code is code
    collector = TextCollector()
    collector.feed(text)
    return collector.words


@pytest.mark.parametrize(
    "template",
    files(TOOL_TEMPLATES, "*.html") + files(LIBRARY_TEMPLATES, "*.html"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_english_left_in_templates(template):
    assert visible_words(template.read_text(encoding="utf-8")) == []


def test_the_english_check_catches_english():
    assert visible_words('<p>Hello {{ msg("x") }}</p><img alt="A logo">') == ["Hello", "logo"]
    assert visible_words("<p>{{ msg('x') }} <code>block</code></p>") == []


# -------------------------------------------------------------------- choosing the language


def test_accept_language_picks_german(client):
    page = client.get("/", headers={"Accept-Language": "fr;q=0.9, de;q=0.8"})
    assert '<html lang="de" dir="ltr">' in page.text
    assert "Mit Wikimedia anmelden" in page.text


def test_uselang_beats_the_cookie_which_beats_accept_language(client):
    client.set_cookie("uselang", "he")
    page = client.get("/", headers={"Accept-Language": "de"})
    assert '<html lang="he" dir="rtl">' in page.text
    page = client.get("/?uselang=de", headers={"Accept-Language": "en"})
    assert '<html lang="de" dir="ltr">' in page.text


@pytest.mark.parametrize("value", ["xx", "<script>", 'de"onload=x', "", "../../etc"])
def test_unknown_or_hostile_languages_fall_back_to_english(client, value):
    client.set_cookie("uselang", value)
    page = client.get("/", query_string={"uselang": value})
    assert page.status_code == 200
    assert '<html lang="en" dir="ltr">' in page.text


def test_language_selector_remembers_the_choice_without_a_session(client, redis_client):
    before = len(list(redis_client.scan_iter("*")))
    response = client.get("/language?uselang=de&next=/profile")
    assert response.status_code == 303
    assert response.location == "/profile"
    cookie = client.get_cookie("uselang")
    assert cookie is not None and cookie.value == "de" and cookie.http_only
    assert "Mit Wikimedia anmelden" in client.get("/").text
    assert len(list(redis_client.scan_iter("*"))) == before  # no session was created


def test_language_selector_refuses_foreign_next(client):
    response = client.get("/language?uselang=de&next=https://evil.example/")
    assert response.location == "/"


def test_the_extension_403_page_follows_the_tool_language(client, devwiki):
    login(client, devwiki, "Alice")
    page = client.get("/admin-tools?uselang=de")
    assert page.status_code == 403
    for german in (
        "Nicht erlaubt",  # the title
        "Diese Seite erfordert das Recht <code>block</code>",  # what is missing
        "Angemeldet als <bdi>Alice</bdi>",  # the tool's account header
        "Mit einem anderen Benutzerkonto anmelden",  # the way out
    ):
        assert german in page.text, german
    # JSON clients keep the stable English text.
    answer = client.get("/admin-tools?uselang=de", headers={"Accept": "application/json"})
    assert answer.json["message"] == (
        "This page needs the block right, which your account does not have."
    )


def test_the_tool_404_is_its_own_and_translated(client):
    page = client.get("/nowhere?uselang=he")
    assert page.status_code == 404
    assert '<html lang="he" dir="rtl">' in page.text
    assert "הדף לא נמצא" in page.text
    assert "Not Found" not in page.text
