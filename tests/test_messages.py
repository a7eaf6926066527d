"""The extension's own pages in the user's language, without any i18n library in the app."""

from __future__ import annotations

import pytest

from flask_wikimedia.messages import (
    LIBRARY_CATALOG,
    Catalog,
    direction,
    normalize,
    use_language_selector,
)
from flask_wikimedia.testing import login


def test_default_403_page_follows_accept_language_with_account_and_actions(app, devwiki):
    client = app.test_client()
    login(client, devwiki, "Alice")
    page = client.get("/block", headers={"Accept-Language": "de-CH, de;q=0.9"})
    assert page.status_code == 403
    assert '<html lang="de" dir="ltr">' in page.text
    assert "<h1>Nicht erlaubt</h1>" in page.text
    assert "Diese Seite erfordert diese Rechte" in page.text
    assert "Angemeldet als Alice" in page.text
    assert "Mit einem anderen Benutzerkonto anmelden" in page.text
    assert "Fehler 403" in page.text


def test_hebrew_page_is_right_to_left(app, devwiki):
    client = app.test_client()
    login(client, devwiki, "Alice")
    page = client.get("/block?uselang=he")
    assert '<html lang="he" dir="rtl">' in page.text
    assert "אין הרשאה" in page.text


def test_the_app_hook_decides(app, devwiki):
    use_language_selector(app, lambda: "de")
    client = app.test_client()
    login(client, devwiki, "Alice")
    page = client.get("/block?uselang=he", headers={"Accept-Language": "en"})
    assert "Nicht erlaubt" in page.text


def test_missing_translations_fall_back_to_english(tmp_path):
    # A catalog of its own: whether a real language misses a message changes as translations
    # arrive from translatewiki.net.
    (tmp_path / "en.json").write_text('{"greeting": "Hello, $1", "bye": "Bye"}')
    (tmp_path / "fr.json").write_text('{"bye": "Au revoir"}')
    catalog = Catalog(tmp_path)
    assert catalog.text("greeting", "fr", "x") == "Hello, x"
    assert catalog.text("bye", "fr-ca") == "Au revoir"
    assert LIBRARY_CATALOG.text("wikimedia-logout", "de-at") == "Abmelden"
    assert LIBRARY_CATALOG.text("no-such-key", "de") == "⧼no-such-key⧽"


def test_the_library_speaks_english_german_and_hebrew_in_full():
    english = set(LIBRARY_CATALOG.texts["en"])
    assert set(LIBRARY_CATALOG.documentation) == english  # qqq: every message explained
    for language in ("de", "he"):
        texts = set(LIBRARY_CATALOG.texts[language])
        assert texts == english, (language, sorted(english ^ texts))


def test_messages_escape_translations_and_parameters(tmp_path):
    (tmp_path / "en.json").write_text('{"k": "<b>$1</b> & $2"}')
    catalog = Catalog(tmp_path)
    assert str(catalog.html("k", "en", "<i>", "x")) == "&lt;b&gt;&lt;i&gt;&lt;/b&gt; &amp; x"


@pytest.mark.parametrize(
    ("raw", "code"),
    [("de", "de"), ("pt_BR", "pt-br"), ("zh-Hant", "zh-hant"), ("<x>", None), ("", None)],
)
def test_language_codes_are_checked(raw, code):
    assert normalize(raw) == code


def test_direction():
    assert direction("he") == "rtl" and direction("ar") == "rtl" and direction("de") == "ltr"
