"""Errors the extension raises, as Werkzeug HTTP exceptions with pages that say what happened.

Each one renders ``wikimedia/error.html`` for browsers and a small JSON object for clients that
ask for JSON, so an app can restyle any of them with ``@app.errorhandler(LoginFailed)`` or by
shipping its own ``templates/wikimedia/error.html``. None of them ever carries a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import json, render_template, request
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
    """

    code = 500
    title = "Something went wrong"
    reason = "error"
    #: What the page says when the raiser gives no description of its own.
    default_description: str | None = None

    def __init__(self, description: str | None = None, *, reason: str | None = None) -> None:
        super().__init__(description or self.default_description)
        if reason is not None:
            self.reason = reason

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
    reason = "login_failed"


class LoginDeclined(WikimediaError, Forbidden):
    """The user pressed Cancel on the wiki's consent page."""

    code = 403
    title = "You declined"
    reason = "declined"

    default_description = (
        "You chose not to allow this tool to use your Wikimedia account, so you are "
        "not logged in. You can try again whenever you like."
    )


class LoginRefused(WikimediaError, Forbidden):
    """A login policy refused this account (blocked, no confirmed email, missing rights...)."""

    code = 403
    title = "Login refused"
    reason = "refused"


class LoginRequired(WikimediaError, Unauthorized):
    """A protected endpoint was asked for without a login (non-browser request)."""

    code = 401
    title = "Login required"
    reason = "login_required"

    default_description = "You need to log in with Wikimedia first."

    def extra_headers(self) -> list[tuple[str, str]]:
        # Not a Bearer/Basic resource: the login is a browser redirect flow.
        return [("WWW-Authenticate", 'OAuth realm="wikimedia"')]


class MissingPermissions(WikimediaError, Forbidden):
    """A logged-in user lacks rights, grants or groups a view requires (or is blocked)."""

    code = 403
    title = "Not allowed"
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
        parts = []
        if blocked:
            parts.append("your account is blocked")
        if self.missing_rights:
            parts.append("you need the right(s): " + ", ".join(self.missing_rights))
        if self.missing_groups:
            parts.append("you need to be in the group(s): " + ", ".join(self.missing_groups))
        if self.missing_grants:
            parts.append(
                "this tool needs your permission for: "
                + ", ".join(self.missing_grants)
                + " (log out and log in again to grant it)"
            )
        text = "; ".join(parts) or "you are not allowed to see this page"
        super().__init__(text[0].upper() + text[1:] + ".")

    @property
    def missing(self) -> tuple[str, ...]:
        """Everything missing, rights first, then groups, then grants."""
        return self.missing_rights + self.missing_groups + self.missing_grants


class WikiBadResponse(WikimediaError, BadGateway):
    """The wiki answered, but not with something we can use (5xx, garbage, oversized...)."""

    code = 502
    title = "The wiki gave an unexpected answer"
    reason = "wiki_bad_response"

    default_description = (
        "The wiki answered in a way this tool did not understand. Nothing was stored; "
        "please try again in a moment."
    )


class WikiUnavailable(WikimediaError, ServiceUnavailable):
    """The wiki did not answer in time or could not be reached. Logins are kept."""

    code = 503
    title = "The wiki is not answering"
    reason = "wiki_unavailable"

    default_description = (
        "The wiki could not be reached in time. You are still logged in; please try "
        "again in a moment."
    )

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", "30")]


class StoreUnavailable(WikimediaError, ServiceUnavailable):
    """The session store (Redis) is down, hung or refused us."""

    code = 503
    title = "Temporarily unavailable"
    reason = "store_unavailable"

    default_description = (
        "This tool cannot reach its session store right now. Please try again in a minute."
    )

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("Retry-After", "10")]


class ConfigurationError(RuntimeError):
    """Raised at startup when a setting is missing or unsafe; the message says what to set."""
