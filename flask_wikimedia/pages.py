"""What the extension's pages need besides the error itself: who is logged in, what to offer.

Registered as template globals by the blueprint (so an app's own ``wikimedia/error.html`` can
use them too): ``wikimedia_msg``, ``wikimedia_language``, ``wikimedia_direction``,
``wikimedia_account(error)`` and ``wikimedia_actions(error, user)``.
"""

from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, request, url_for
from redis import RedisError

from .errors import (
    LoginDeclined,
    LoginFailed,
    LoginRefused,
    LoginRequired,
    MissingPermissions,
    StoreUnavailable,
    WikiBadResponse,
    WikimediaError,
    WikiUnavailable,
)
from .failures import WikiHTTPError
from .login import current_login
from .messages import current_language, direction, msg
from .user import WikimediaUser


class Action(NamedTuple):
    """A way out of an error page: a message key, where it goes, and whether it first logs out.

    ``logout_first`` actions are rendered as the logout form with ``next`` set to ``href``
    ("log in as someone else" must end the current login, and logout is a POST).
    """

    key: str
    href: str
    logout_first: bool = False


def account(error: Exception | None = None) -> WikimediaUser | None:
    """The logged-in user for an error page's header, or None when finding out is unsafe.

    With the session store down there is nobody to ask; with the wiki down, asking again
    could repeat the failure (the login module then reports nobody). The page must render
    whatever happened, so trouble here means "no header", never a second error.
    """
    if isinstance(error, StoreUnavailable):
        return None
    try:
        login = current_login()
    except (WikimediaError, RedisError, WikiHTTPError):
        return None
    return login.user if login is not None else None


def actions(error: Exception, user: WikimediaUser | None) -> list[Action]:
    """What the page offers: try again, log in (as someone else), back to the start."""
    here = request.full_path.rstrip("?") if request.method == "GET" else "/"
    login_here = url_for("wikimedia.login", next=here)
    found: list[Action] = []
    if isinstance(error, LoginFailed | LoginDeclined) or (
        isinstance(error, WikiUnavailable | WikiBadResponse)
        and request.endpoint == "wikimedia.failed"
    ):
        found.append(Action("wikimedia-action-try-again", url_for("wikimedia.login")))
    elif isinstance(error, LoginRefused):
        found.append(Action("wikimedia-action-other-account", url_for("wikimedia.login")))
    elif isinstance(error, LoginRequired):
        found.append(Action("wikimedia-action-login-again", login_here))
    elif isinstance(error, WikiUnavailable | WikiBadResponse | StoreUnavailable):
        found.append(Action("wikimedia-action-try-again", here))
    elif isinstance(error, MissingPermissions) and user:
        found.append(Action("wikimedia-action-other-account", login_here, logout_first=True))
    found.append(Action("wikimedia-action-home", (request.script_root or "") + "/"))
    return found


def register(bp: Blueprint) -> None:
    """Make the helpers above template globals of every app that registers ``bp``."""
    bp.add_app_template_global(msg, "wikimedia_msg")
    bp.add_app_template_global(current_language, "wikimedia_language")
    bp.add_app_template_global(lambda: direction(current_language()), "wikimedia_direction")
    bp.add_app_template_global(account, "wikimedia_account")
    bp.add_app_template_global(actions, "wikimedia_actions")
