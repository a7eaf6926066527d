"""Flask-Wikimedia: "Log in with Wikimedia" for Flask.

OAuth 2.0 with PKCE against MediaWiki's OAuth extension (meta.wikimedia.org or any MediaWiki
with the extension), tokens kept server-side and refreshed without the user noticing, rights,
groups and grants checked on views.

The public API is these names plus the public modules listed in docs/public-api.md
(``errors``, ``signals``, ``api``, ``sessions``, ``settings``, ``state``, ``testing``, ...).
"""

from __future__ import annotations

from ._version import __version__
from .decorators import login_required, requires_grant, requires_group, requires_right
from .extension import Wikimedia
from .login import current_user
from .user import WikimediaUser

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
