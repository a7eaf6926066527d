"""Errors the extension raises, as Werkzeug HTTP exceptions with pages that say what happened.

Each one renders ``wikimedia/error.html`` for browsers and a small JSON object for clients that
ask for JSON, so an app can restyle any of them with ``@app.errorhandler(LoginFailed)`` or by
shipping its own ``templates/wikimedia/error.html``. None of them ever carries a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import json, render_template, request
from markupsafe import Markup
from werkzeug.exceptions import (
    BadGateway,
    BadRequest,
    Forbidden,
    HTTPException,
    ServiceUnavailable,
    Unauthorized,
)
from werkzeug.sansio.response import Response as SansIOResponse
from werkzeug.wrappers import Response

from .messages import LIBRARY_CATALOG, msg

__all__ = [
    "ConfigurationError",
    "LoginDeclined",
    "LoginFailed",
    "LoginRefused",
    "LoginRequired",
    "LogoutFailed",
    "MissingPermissions",
    "StoreUnavailable",
    "WikiBadResponse",
    "WikiUnavailable",
    "WikimediaError",
    "wants_json",
]


def wants_json() -> bool:
    """True when the client prefers JSON to HTML (API clients, fetch() with Accept: JSON)."""
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


class WikimediaError(HTTPException):
    """Base class of every error page the extension serves.

    ``title`` is a short heading for people; ``description`` says what happened and what to do.
    ``reason`` is a stable machine-readable word for JSON clients and the ``login_failed`` signal.

    Pages are translated: ``title_key`` and ``message`` name messages in the extension's catalog
    (``flask_wikimedia/i18n/``), shown in the request's language (see ``messages``), while
    ``title`` and ``description`` stay English for logs, signals and JSON clients. A raiser that
    passes its own ``description`` text (a login policy's, say) gets it shown as it is.
    """

    code = 500
    title = "Something went wrong"
    title_key = "wikimedia-error-title"
    reason = "error"
    #: The message shown when the raiser gives no description of its own.
    default_message: str | None = None

    def __init__(
        self,
        description: str | None = None,
        *,
        reason: str | None = None,
        message: str | None = None,
        params: tuple[str, ...] = (),
    ) -> None:
        # The raiser's own text wins over any message key.
        self.message = (message or self.default_message) if description is None else None
        message = self.message
        self.params = params
        if message is not None:
            description = LIBRARY_CATALOG.text(message, "en", *params)
        super().__init__(description)
        if reason is not None:
            self.reason = reason

    @property
    def default_description(self) -> str | None:
        """The English text of ``default_message`` (kept for apps that read it)."""
        if self.default_message is None:
            return None
        return LIBRARY_CATALOG.text(self.default_message, "en")

    def page_title(self) -> Markup:
        """The heading, in the request's language."""
        return msg(self.title_key)

    def page_text(self) -> Markup:
        """What happened and what to do, in the request's language (HTML-safe)."""
        if self.message is not None:
            return msg(self.message, *self.params)
        return Markup.escape(self.description or "")

    def get_response(  # type: ignore[override]
        self,
        environ: Any = None,
        scope: Any = None,
    ) -> SansIOResponse:
        headers = [("Cache-Control", "no-store")]
        headers.extend(self.extra_headers())
        if wants_json():
            body = json.dumps(
                {"error": self.reason, "status": self.code, "message": self.description}
            )
            return Response(body, self.code, headers, mimetype="application/json")
        html = render_template("wikimedia/error.html", error=self)
        return Response(html, self.code, headers, mimetype="text/html")

    def extra_headers(self) -> list[tuple[str, str]]:
        return []


class LoginFailed(WikimediaError, BadRequest):
    """The callback could not complete a login: state missing, forged, expired or replayed,
    or the wiki refused the code. Nothing was stored."""

    code = 400
    title = "Login failed"
    title_key = "wikimedia-login-failed-title"
    reason = "login_failed"


class LogoutFailed(WikimediaError, BadRequest):
    """A logout POST without this session's CSRF token (an old form, or another site's): the
    user is still logged in."""

    code = 400
    title = "Logout failed"
    title_key = "wikimedia-logout-failed-title"
    reason = "logout_failed"
    default_message = "wikimedia-logout-failed-csrf"


class LoginDeclined(WikimediaError, Forbidden):
    """The user pressed Cancel on the wiki's consent page."""

    code = 403
    title = "You declined"
    title_key = "wikimedia-declined-title"
    reason = "declined"
    default_message = "wikimedia-declined-text"


class LoginRefused(WikimediaError, Forbidden):
    """A login policy refused this account (blocked, no confirmed email, missing rights...)."""

    code = 403
    title = "Login refused"
    title_key = "wikimedia-refused-title"
    reason = "refused"


class LoginRequired(WikimediaError, Unauthorized):
    """A protected endpoint was asked for without a login (non-browser request)."""

    code = 401
    title = "Login required"
    title_key = "wikimedia-login-required-title"
    reason = "login_required"
    default_message = "wikimedia-login-required-text"

    def extra_headers(self) -> list[tuple[str, str]]:
        # Not a Bearer/Basic resource: the login is a browser redirect flow.
        return [("WWW-Authenticate", 'OAuth realm="wikimedia"')]


class MissingPermissions(WikimediaError, Forbidden):
    """A logged-in user lacks rights, grants or groups a view requires (or is blocked)."""

    code = 403
    title = "Not allowed"
    title_key = "wikimedia-forbidden-title"
    reason = "forbidden"

    def __init__(
        self,
        *,
        rights: Iterable[str] = (),
        grants: Iterable[str] = (),
        groups: Iterable[str] = (),
        blocked: bool = False,
    ) -> None:
        self.missing_rights = tuple(sorted(rights))
        self.missing_grants = tuple(sorted(grants))
        self.missing_groups = tuple(sorted(groups))
        self.blocked = blocked
        #: One sentence per kind of thing missing: (message key, names).
        self.sentences: list[tuple[str, tuple[str, ...]]] = []
        if blocked:
            self.sentences.append(("wikimedia-forbidden-blocked", ()))
        for kind, names in (
            ("right", self.missing_rights),
            ("group", self.missing_groups),
            ("grant", self.missing_grants),
        ):
            if names:
                plural = "s" if len(names) > 1 else ""
                self.sentences.append((f"wikimedia-forbidden-{kind}{plural}", names))
        if not self.sentences:
            self.sentences.append(("wikimedia-forbidden-other", ()))
        english = " ".join(
            LIBRARY_CATALOG.text(key, "en", ", ".join(names)) for key, names in self.sentences
        )
        super().__init__(english)

    def page_text(self) -> Markup:
        """The sentences in the request's language, each missing name as ``<code>``."""
        parts = []
        for key, names in self.sentences:
            listed = Markup(", ").join(Markup("<code>{}</code>").format(n) for n in names)
            parts.append(msg(key, listed))
        return Markup(" ").join(parts)

    @property
    def missing(self) -> tuple[str, ...]:
        """Everything missing, rights first, then groups, then grants."""
        return self.missing_rights + self.missing_groups + self.missing_grants


class WikiBadResponse(WikimediaError, BadGateway):
    """The wiki answered, but not with something we can use (5xx, garbage, oversized...)."""

    code = 502
    title = "The wiki gave an unexpected answer"
    title_key = "wikimedia-wiki-bad-response-title"
    reason = "wiki_bad_response"
    default_message = "wikimedia-wiki-bad-response-text"


class WikiUnavailable(WikimediaError, ServiceUnavailable):
    """The wiki did not answer in time or could not be reached. Logins are kept."""

    code = 503
    title = "The wiki is not answering"
    title_key = "wikimedia-wiki-unavailable-title"
    reason = "wiki_unavailable"
    default_message = "wikimedia-wiki-unavailable-text"

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", "30")]


class StoreUnavailable(WikimediaError, ServiceUnavailable):
    """The session store (Redis) is down, hung or refused us."""

    code = 503
    title = "Temporarily unavailable"
    title_key = "wikimedia-store-unavailable-title"
    reason = "store_unavailable"
    default_message = "wikimedia-store-unavailable-text"

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", "10")]


class ConfigurationError(RuntimeError):
    """Raised at startup when a setting is missing or unsafe; the message says what to set."""
