"""The tool's languages: messages from ``i18n/*.json`` (translatewiki.net's format), the choice
of language for each request, and the language selector.

The language is, in order: ``?uselang=`` (as on the wikis), then the preference the language
selector stored in a cookie, then the browser's ``Accept-Language``, then English. The same
choice is handed to Flask-Wikimedia (``use_language_selector``), so the extension's own pages
(a 403, a declined login) speak the tool's language.

Templates get ``msg(key, *params)`` (safe HTML: translations cannot add markup), ``lang``,
``dir`` and ``languages`` (code, autonym) for the selector.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app, g, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from flask_wikimedia.messages import Catalog, direction, normalize, use_language_selector
from flask_wikimedia.redirects import safe_next

#: translatewiki.net expects the message files at the repository's top level.
CATALOG = Catalog(Path(__file__).resolve().parent.parent / "i18n")

#: The cookie that keeps the language chosen in the selector (a preference, not a secret).
COOKIE = "uselang"
COOKIE_MAX_AGE = 365 * 24 * 3600

#: Each shipped language's name in itself, for the selector.
AUTONYMS = {"en": "English", "de": "Deutsch", "he": "עברית"}

bp = Blueprint("i18n", __name__)


def _pick(code: str | None) -> str | None:
    """``code`` if the tool has that language (or its base language), else None."""
    code = normalize(code)
    if code is None:
        return None
    if code in CATALOG.texts:
        return code
    base = code.split("-")[0]
    return base if base in CATALOG.texts else None


def language() -> str:
    """The language of the current request (worked out once per request)."""
    chosen: str | None = g.get("_tool_language")
    if chosen is None:
        chosen = (
            _pick(request.args.get("uselang"))
            or _pick(request.cookies.get(COOKIE))
            or request.accept_languages.best_match(CATALOG.languages)
            or "en"
        )
        g._tool_language = chosen
    return chosen


def msg(key: str, *params: object) -> Markup:
    """A message of the tool in the request's language, as safe HTML."""
    return CATALOG.html(key, language(), *params)


def text(key: str, *params: object) -> str:
    """A message as plain text (for flash messages and form labels, escaped when shown)."""
    return CATALOG.text(key, language(), *params)


def bdi(value: object) -> Markup:
    """``value`` isolated for bidirectional text (a user name inside a right-to-left sentence)."""
    return Markup("<bdi>{}</bdi>").format(value)


def number(value: int) -> str:
    """An integer with the language's digit grouping (12,345 / 12.345)."""
    grouped = f"{value:,}"
    return grouped.replace(",", ".") if language() == "de" else grouped


def template_context() -> dict[str, object]:
    code = language()
    return {
        "msg": msg,
        "lang": code,
        "dir": direction(code),
        "languages": [(c, AUTONYMS.get(c, c)) for c in CATALOG.languages],
    }


@bp.get("/language")
def choose() -> ResponseReturnValue:
    """The language selector's form: remember the choice in a cookie, go back.

    A GET without CSRF protection on purpose: anonymous visitors must not get a session just
    to pick a language, and a forged request can only change the display language, which
    any link with ``?uselang=`` does anyway.
    """
    code = _pick(request.args.get("uselang"))
    target = safe_next(request.args.get("next"), "/")
    response = redirect(target, 303)
    if code is not None:
        response.set_cookie(
            COOKIE,
            code,
            max_age=COOKIE_MAX_AGE,
            secure=request.is_secure or bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            httponly=True,
            samesite="Lax",
        )
    return response


def init_app(app: Flask) -> None:
    # Read the message files now: a missing or broken i18n/en.json stops startup, not a page.
    CATALOG.texts  # noqa: B018
    app.context_processor(template_context)
    app.add_template_filter(bdi)
    app.add_template_filter(number)
    use_language_selector(app, language)
    app.register_blueprint(bp)
