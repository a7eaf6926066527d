"""Translatable messages in translatewiki.net's format, and the language of the request.

A *catalog* is a directory of ``<language>.json`` files (``en.json``, ``de.json``, ...; each an
object of message keys to texts, plus ``@metadata``), with ``qqq.json`` documenting every key:
the layout translatewiki.net imports and exports. Texts take parameters as ``$1``, ``$2``...

The extension ships its own catalog (``flask_wikimedia/i18n/``) for its default pages, so it
depends on no i18n library. Which language a request gets is decided by one hook that an app
sets to agree with its own i18n choice::

    from flask_wikimedia.messages import use_language_selector

    use_language_selector(app, lambda: my_i18n.current_language())

Without a hook: ``?uselang=`` if the catalog has that language, else the best match for the
browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path

from flask import Flask, current_app, has_request_context, request
from markupsafe import Markup, escape

__all__ = [
    "LIBRARY_CATALOG",
    "RTL_LANGUAGES",
    "SELECTOR_KEY",
    "Catalog",
    "current_language",
    "direction",
    "language_from_request",
    "msg",
    "normalize",
    "use_language_selector",
]

log = logging.getLogger("flask_wikimedia.messages")

#: Where an app's language selector is kept: ``app.extensions[SELECTOR_KEY]``.
SELECTOR_KEY = "wikimedia.language"

#: Languages written right to left (MediaWiki's list, cut to those likely to be shipped).
RTL_LANGUAGES = frozenset(
    {"ar", "arc", "arz", "azb", "ckb", "dv", "fa", "glk", "he", "ks", "lrc", "mzn", "ps", "sd"}
    | {"ug", "ur", "yi"}
)

# A language code as MediaWiki and BCP 47 write them: "de", "pt-br", "zh-hant". Anything else
# from a query string or header is ignored rather than echoed into a lang attribute.
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8}){0,3}")
_PARAMETER = re.compile(r"\$([1-9])")


def normalize(code: str | None) -> str | None:
    """``code`` lower-cased if it is a well-formed language code, else None."""
    if not code:
        return None
    code = code.strip().lower().replace("_", "-")
    return code if _LANGUAGE_CODE.fullmatch(code) else None


def direction(language: str) -> str:
    """``"rtl"`` or ``"ltr"``, for the ``dir`` attribute of a page in ``language``."""
    return "rtl" if language.split("-")[0] in RTL_LANGUAGES else "ltr"


class Catalog:
    """The messages in one directory of translatewiki.net JSON files, read once."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @cached_property
    def texts(self) -> dict[str, dict[str, str]]:
        """Every language's messages (without ``@metadata``), keyed by language code."""
        found: dict[str, dict[str, str]] = {}
        for path in sorted(self.directory.glob("*.json")):
            if path.stem == "qqq":
                continue
            with path.open(encoding="utf-8") as file:
                data = json.load(file)
            found[path.stem.lower()] = {
                key: text
                for key, text in data.items()
                if not key.startswith("@") and isinstance(text, str)
            }
        if "en" not in found:
            raise RuntimeError(f"{self.directory}/en.json is missing: English is the fallback")
        return found

    @cached_property
    def documentation(self) -> dict[str, str]:
        """``qqq.json``: what each message is for, for translators."""
        path = self.directory / "qqq.json"
        if not path.exists():
            return {}
        with path.open(encoding="utf-8") as file:
            data = json.load(file)
        return {key: text for key, text in data.items() if not key.startswith("@")}

    @property
    def languages(self) -> list[str]:
        """The languages that have a file, English first."""
        return sorted(self.texts, key=lambda code: (code != "en", code))

    def fallbacks(self, language: str) -> list[str]:
        """``language``, then its base language (``de-at`` → ``de``), then English."""
        chain = [language]
        base = language.split("-")[0]
        if base != language:
            chain.append(base)
        if "en" not in chain:
            chain.append("en")
        return chain

    def text(self, key: str, language: str = "en", *params: object) -> str:
        """The plain text of ``key`` in ``language`` (or its fallbacks), parameters filled in.

        An unknown key gives ``⧼key⧽``, as MediaWiki shows it, and a log line: a page with a
        visible key is easier to report than a 500.
        """
        for code in self.fallbacks(language):
            template = self.texts.get(code, {}).get(key)
            if template is not None:
                return _fill(template, [str(p) for p in params])
        log.warning("unknown message key %r", key)
        return f"⧼{key}⧽"

    def html(self, key: str, language: str = "en", *params: object) -> Markup:
        """``key`` as safe HTML: the text escaped, each parameter escaped unless it is Markup.

        Translations come from volunteers on translatewiki.net, so no text may add markup;
        a parameter such as ``Markup("<code>block</code>")`` comes from the code.
        """
        for code in self.fallbacks(language):
            template = self.texts.get(code, {}).get(key)
            if template is not None:
                filled = _fill(str(escape(template)), [str(escape(p)) for p in params])
                return Markup(filled)  # noqa: S704 - the text and every parameter are escaped
        log.warning("unknown message key %r", key)
        return escape(f"⧼{key}⧽")


def _fill(template: str, params: list[str]) -> str:
    def one(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return params[index] if index < len(params) else match.group(0)

    return _PARAMETER.sub(one, template)


#: The extension's own messages: its default pages and error texts.
LIBRARY_CATALOG = Catalog(Path(__file__).parent / "i18n")


def use_language_selector(app: Flask, selector: Callable[[], str]) -> None:
    """Make ``selector()`` decide the language of every request (the extension's pages too).

    Call it with the same function the app's own i18n uses, so that a tool shown in German
    shows the extension's 403 page in German. It runs inside a request and returns a language
    code; languages the extension has no file for fall back to English.
    """
    app.extensions[SELECTOR_KEY] = selector


def language_from_request(available: Iterable[str]) -> str:
    """The default choice: ``?uselang=``, then ``Accept-Language``, among ``available``."""
    available = list(available)
    asked = normalize(request.args.get("uselang"))
    if asked is not None and (asked in available or asked.split("-")[0] in available):
        return asked
    best = request.accept_languages.best_match(available)
    return best if best is not None else "en"


def current_language() -> str:
    """The language of the current request: the app's selector's, or the default choice."""
    if not has_request_context():
        return "en"
    selector = current_app.extensions.get(SELECTOR_KEY)
    if selector is not None:
        return normalize(selector()) or "en"
    return language_from_request(LIBRARY_CATALOG.languages)


def msg(key: str, *params: object) -> Markup:
    """One of the extension's messages, as safe HTML in the current request's language."""
    return LIBRARY_CATALOG.html(key, current_language(), *params)
