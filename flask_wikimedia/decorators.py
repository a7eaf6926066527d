"""View decorators: ``login_required``, ``requires_right``, ``requires_grant``, ``requires_group``.

All listed names are required. A logged-out browser GET is redirected to the login with
``next`` set to the current path; other requests (POST, JSON clients) get a 401. A logged-in
user who lacks something gets a 403 page naming what is missing. ``requires_right``,
``requires_group`` and ``requires_grant`` all refuse blocked users unless ``allow_blocked=True``
(they guard actions, and a block is the wiki saying this account may not act; one rule for the
three, so swapping one decorator for another never lets a blocked user in). ``login_required``
lets blocked users through: they may still see their own pages. Each decorator
works on sync and async views and takes ``fresh=True`` to re-read the profile from the wiki
before deciding (for sensitive routes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from flask import current_app, redirect, request, url_for
from werkzeug.wrappers import Response

from .errors import LoginRequired, MissingPermissions, wants_json
from .login import current_login
from .state import current_state
from .user import WikimediaUser

__all__ = [
    "login_required",
    "requires_grant",
    "requires_group",
    "requires_right",
    "unauthorized",
]

F = TypeVar("F", bound=Callable[..., Any])


def _is_browser_navigation() -> bool:
    return request.method in ("GET", "HEAD") and not wants_json()


def unauthorized() -> Response:
    """What a logged-out request gets: the app's handler if set, else redirect or 401."""
    handler = current_state().ext.unauthorized_callback
    if handler is not None:
        return current_app.make_response(current_app.ensure_sync(handler)())
    if _is_browser_navigation():
        # With the mount point (SCRIPT_NAME): an app mounted at /a must come back to
        # /a/private, not /private, which is another app's (safe_next refuses it).
        path = request.full_path if request.query_string else request.path
        return redirect(url_for("wikimedia.login", next=request.script_root + path))
    raise LoginRequired()


def _guard(check: Callable[[WikimediaUser], None], fresh: bool) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            login = current_login(fresh=fresh)
            if login is None:
                return unauthorized()
            check(login.user)
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _no_check(user: WikimediaUser) -> None:
    return None


@overload
def login_required(view: F) -> F: ...
@overload
def login_required(*, fresh: bool = False) -> Callable[[F], F]: ...
def login_required(view: F | None = None, *, fresh: bool = False) -> F | Callable[[F], F]:
    """Only logged-in users may see this view. Use bare or as ``@login_required(fresh=True)``."""
    decorator = _guard(_no_check, fresh)
    return decorator(view) if view is not None else decorator


def requires_right(
    *rights: str, allow_blocked: bool = False, fresh: bool = False
) -> Callable[[F], F]:
    """The user must have every one of ``rights`` on the wiki (and not be blocked)."""
    _require_names(rights, "requires_right")

    def check(user: WikimediaUser) -> None:
        missing = set(rights) - user.rights
        blocked = user.blocked and not allow_blocked
        if missing or blocked:
            raise MissingPermissions(rights=missing, blocked=blocked)

    return _guard(check, fresh)


def requires_group(
    *groups: str, allow_blocked: bool = False, fresh: bool = False
) -> Callable[[F], F]:
    """The user must be in every one of ``groups`` (effective groups, e.g. ``sysop``), and not
    be blocked."""
    return _requires_all("groups", groups, "requires_group", allow_blocked, fresh)


def requires_grant(
    *grants: str, allow_blocked: bool = False, fresh: bool = False
) -> Callable[[F], F]:
    """The user must have granted this tool every one of ``grants`` (e.g. ``editpage``), and
    not be blocked."""
    return _requires_all("grants", grants, "requires_grant", allow_blocked, fresh)


def _requires_all(
    field: Literal["groups", "grants"],
    names: tuple[str, ...],
    decorator: str,
    allow_blocked: bool,
    fresh: bool,
) -> Callable[[F], F]:
    _require_names(names, decorator)

    def check(user: WikimediaUser) -> None:
        missing = set(names) - getattr(user, field)
        blocked = user.blocked and not allow_blocked
        if missing or blocked:
            raise MissingPermissions(blocked=blocked, **{field: missing})

    return _guard(check, fresh)


def _require_names(names: tuple[str, ...], decorator: str) -> None:
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"@{decorator}() needs one or more names, e.g. @{decorator}('edit')")
