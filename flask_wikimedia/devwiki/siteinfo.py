"""``meta=siteinfo`` for the development wiki's ``api.php``: what client libraries read at start.

mwclient's ``Site()`` asks for ``siprop=general|namespaces`` (and reads namespace names from the
``formatversion=1`` key ``*``); pywikibot asks for ``general``, ``namespaces``,
``namespacealiases``, ``specialpagealiases``, ``magicwords``, ``extensions`` and more. The
answers are a small English Wikipedia-like site: the standard namespaces, no interwikis but
``meta`` and ``commons``, and the shapes of MediaWiki's two response format versions.
Unknown ``siprop`` values get MediaWiki's warning, not an error.
"""

from __future__ import annotations

from typing import Any

# (id, name, subpages, content) for the standard namespaces.
NAMESPACES: tuple[tuple[int, str, bool, bool], ...] = (
    (-2, "Media", False, False),
    (-1, "Special", False, False),
    (0, "", False, True),
    (1, "Talk", True, False),
    (2, "User", True, False),
    (3, "User talk", True, False),
    (4, "Project", True, False),
    (5, "Project talk", True, False),
    (6, "File", False, False),
    (7, "File talk", True, False),
    (8, "MediaWiki", False, False),
    (9, "MediaWiki talk", True, False),
    (10, "Template", True, False),
    (11, "Template talk", True, False),
    (12, "Help", True, False),
    (13, "Help talk", True, False),
    (14, "Category", True, False),
    (15, "Category talk", True, False),
)

NAMESPACE_ALIASES = (("Image", 6), ("Image talk", 7), ("WP", 4))

INTERWIKI = (
    ("meta", "https://meta.wikimedia.org/wiki/$1"),
    ("commons", "https://commons.wikimedia.org/wiki/$1"),
)

SPECIAL_PAGE_ALIASES = (
    ("Contributions", ["Contributions", "Contribs"]),
    ("Recentchanges", ["RecentChanges"]),
    ("Search", ["Search"]),
    ("Userlogin", ["UserLogin", "Login"]),
)

MAGIC_WORDS = (
    ("redirect", ["#REDIRECT"], False),
    ("notoc", ["__NOTOC__"], False),
    ("pagename", ["PAGENAME"], True),
)

EXTENSIONS = (("OAuth", "other"), ("OATHAuth", "specialpage"))

KNOWN_PROPS = (
    "general",
    "namespaces",
    "namespacealiases",
    "interwikimap",
    "specialpagealiases",
    "magicwords",
    "statistics",
    "extensions",
    "rightsinfo",
)


def _namespaces(v2: bool) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for ns_id, name, subpages, content in NAMESPACES:
        entry: dict[str, Any] = {"id": ns_id, "case": "first-letter"}
        if v2:
            entry.update(
                name=name, subpages=subpages, canonical=name, content=content, nonincludable=False
            )
        else:
            # formatversion=1 marks booleans by presence with an empty string, and names with "*".
            entry["*"] = name
            if name:
                entry["canonical"] = name
            if subpages:
                entry["subpages"] = ""
            if content:
                entry["content"] = ""
        result[str(ns_id)] = entry
    return result


def _named(name: str, v2: bool, **fields: Any) -> dict[str, Any]:
    return {**fields, ("alias" if v2 else "*"): name}


def siteinfo(
    props: list[str], general: dict[str, Any], *, v2: bool, edits: int, users: int, pages: int
) -> tuple[dict[str, Any], list[str]]:
    """The ``query`` entries for ``siprop=props`` and the names of the unknown ones.

    ``general`` is the ``general`` block (it depends on the request's host); ``v2`` picks
    ``formatversion=2`` shapes; the counts feed ``statistics``.
    """
    query: dict[str, Any] = {}
    unknown: list[str] = []
    for prop in props or ["general"]:
        if prop == "general":
            query["general"] = general
        elif prop == "namespaces":
            query["namespaces"] = _namespaces(v2)
        elif prop == "namespacealiases":
            query["namespacealiases"] = [
                _named(alias, v2, id=ns_id) for alias, ns_id in NAMESPACE_ALIASES
            ]
        elif prop == "interwikimap":
            query["interwikimap"] = [{"prefix": p, "url": url} for p, url in INTERWIKI]
        elif prop == "specialpagealiases":
            query["specialpagealiases"] = [
                {"realname": real, "aliases": aliases} for real, aliases in SPECIAL_PAGE_ALIASES
            ]
        elif prop == "magicwords":
            query["magicwords"] = [
                {"name": name, "aliases": aliases, "case-sensitive": sensitive}
                for name, aliases, sensitive in MAGIC_WORDS
            ]
        elif prop == "statistics":
            query["statistics"] = {
                "pages": pages,
                "articles": pages,
                "edits": edits,
                "images": 0,
                "users": users,
                "activeusers": users,
                "admins": 1,
                "jobs": 0,
            }
        elif prop == "extensions":
            query["extensions"] = [
                {"type": kind, "name": name, "version": "dev"} for name, kind in EXTENSIONS
            ]
        elif prop == "rightsinfo":
            query["rightsinfo"] = {
                "url": "https://creativecommons.org/licenses/by-sa/4.0/",
                "text": "Creative Commons Attribution-Share Alike",
            }
        else:
            unknown.append(prop)
    return query, unknown
