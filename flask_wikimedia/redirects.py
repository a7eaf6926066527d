"""The one check for the ``next`` parameter: a same-origin path, by structure (allow-list).

A value is accepted only if it is a plain absolute path on this site: it starts with exactly one
``/``, then contains only characters from a small allow-list (no backslash, no control or space
characters, no ``@``-tricks can matter because there is no scheme or authority), and is not too
long. Everything else falls back to the default. No deny-list, no URL parsing heuristics.

An app mounted below a path (``SCRIPT_NAME``, e.g. ``/a`` behind a dispatcher or a proxy that
serves several tools on one host) owns only that part of the site: ``next`` must then be inside
the mount point (``/a``, ``/a/...``), and dot segments (``/a/../b``), which browsers resolve to
outside it, are refused.
"""

from __future__ import annotations

import re

# RFC 3986 path + query + fragment characters, minus anything a browser might normalise into
# an authority (``\``) or strip (tabs, CR/LF). Percent-escapes are kept as they are.
_SAFE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*")
__all__ = [
    "MAX_NEXT_LENGTH",
    "safe_next",
]

MAX_NEXT_LENGTH = 2000


def safe_next(value: str | None, default: str = "/", root: str = "") -> str:
    """Return ``value`` if it is a same-origin path inside the app's mount point ``root``
    (``request.script_root``; empty for an app at the site's root), otherwise ``default``.

    >>> safe_next("/profile?tab=rights")
    '/profile?tab=rights'
    >>> safe_next("//evil.example/")
    '/'
    >>> safe_next("/a/profile", "/a/", root="/a")
    '/a/profile'
    >>> safe_next("/b/profile", "/a/", root="/a")
    '/a/'
    """
    if not value or len(value) > MAX_NEXT_LENGTH:
        return default
    if _SAFE_PATH.fullmatch(value) is None:
        return default
    # "%2f%2f" or "%5c" right after the first slash decode to an authority in some servers
    # and frameworks: refuse encoded slashes and backslashes anywhere in the path part.
    path = value.split("?", 1)[0].split("#", 1)[0].lower()
    if "%2f" in path or "%5c" in path or "%09" in path or "%0a" in path or "%0d" in path:
        return default
    if "%00" in value:
        return default
    segments = path.split("/")
    if any(s in (".", "..", "%2e", "%2e%2e", ".%2e", "%2e.") for s in segments):
        return default  # a browser resolves dot segments, possibly to outside the mount point
    root = root.rstrip("/")
    if root and value != root and not value.startswith((root + "/", root + "?", root + "#")):
        return default
    return value
