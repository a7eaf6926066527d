"""Flask-Wikimedia: "Log in with Wikimedia" for Flask.

OAuth 2.0 with PKCE against MediaWiki's OAuth extension (meta.wikimedia.org or any MediaWiki
with the extension), tokens kept server-side and refreshed without the user noticing, rights,
groups and grants checked on views.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import cast

from werkzeug.local import LocalProxy

from .decorators import login_required, requires_grant, requires_group, requires_right
from .extension import Wikimedia
from .user import WikimediaUser


def _current_user() -> WikimediaUser | None:
    from .login import current_login

    login = current_login()
    return login.user if login is not None else None


#: The logged-in :class:`WikimediaUser`, or a falsy proxy of ``None`` when logged out:
#: test it with ``if current_user:``. Available in templates too.
current_user = cast("WikimediaUser | None", LocalProxy(_current_user))

__all__ = [
    "Wikimedia",
    "WikimediaUser",
    "__version__",
    "current_user",
    "login_required",
    "requires_grant",
    "requires_group",
    "requires_right",
]
