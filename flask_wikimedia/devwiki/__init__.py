"""The development wiki: a local fake of MediaWiki's OAuth 2.0 server plus a bit of ``api.php``.

For zero-configuration local runs, the project's own tests and users' tests. It is not a real
wiki and logging in to it is not a real login: every HTML page shows a banner saying so and every
response carries ``X-Devwiki: not a real login``.

::

    from flask_wikimedia.devwiki import DevWiki, DevUser, DevClient, DEV_CLIENT_ID

    wiki = DevWiki()                         # or DevWiki(flavor="1.39")
    with wiki.serve() as base_url:           # "http://127.0.0.1:PORT/w"
        callback = wiki.approve(authorize_url, username="Alice")

Choices worth knowing (the real servers differ or are unknown here):

- There is no login: the consent page lets one pick any test user. ``DEV_CLIENT_ID`` (and any
  client registered with ``redirect_uri=None``) accepts any http(s) redirect URI on
  ``127.0.0.1``, ``localhost`` or ``[::1]``.
- Token lifetimes are Wikimedia's (4 h access, 365 d refresh) in both flavors; MediaWiki 1.39's
  extension defaults were 1 h and 1 min. Set ``access_token_ttl`` / ``refresh_token_ttl``, or
  move the wiki's clock with :meth:`DevWiki.advance_time`.
- A bad Bearer token on the OAuth resources gets the Wikimedia edge's 401 with
  ``WWW-Authenticate: Bearer ... error="invalid_token"`` (flavor ``"wikimedia"``) or League's
  401 ``access_denied`` JSON (``"1.39"``). A missing header is a 401 (``"wikimedia"``) or,
  as the real 1.39 answers, a 500 (``"1.39"``). On ``api.php`` a bad token is always MediaWiki's HTTP 200
  ``mwoauth-invalid-authorization`` error.
- Access tokens are JWT-shaped but signed with random bytes: treat them as opaque.
- It speaks OAuth 1.0a too (``DEV_OAUTH1_KEY``/``DEV_OAUTH1_SECRET``, or any
  ``DevClient(oauth_version="1.0a")``): ``index.php?title=Special:OAuth/initiate``,
  ``/authorize`` (or ``/authenticate``, the same consent page), ``/token`` and ``/identify``,
  and ``api.php`` takes HMAC-SHA1 signed requests (see ``devwiki/oauth1.py``).
"""

from __future__ import annotations

from .models import DEV_CLIENT_ID, DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET, DevClient, DevUser
from .records import DevWikiError
from .wiki import DevWiki

__all__ = [
    "DEV_CLIENT_ID",
    "DEV_OAUTH1_KEY",
    "DEV_OAUTH1_SECRET",
    "DevClient",
    "DevUser",
    "DevWiki",
    "DevWikiError",
]
