"""Test accounts, clients and the grant/right tables of the development wiki.

The grant → rights table is an approximation of MediaWiki core's ``$wgGrantPermissions`` (enough
for the effective-rights rules of the OAuth session provider: user rights ∩ grant rights).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The client every development wiki knows: public (PKCE, no secret), any loopback redirect URI.
DEV_CLIENT_ID = "dec0dedec0dedec0dedec0dedec0de00"
#: The OAuth 1.0a consumer every development wiki knows ("callback is prefix", any loopback
#: callback). Its secret is public: the development wiki is not a real login.
DEV_OAUTH1_KEY = "dec0de1adec0de1adec0de1adec0de1a"
DEV_OAUTH1_SECRET = "dec0de1a" * 5

#: Rights of a plain autoconfirmed user (as MediaWiki 1.39 listed them for a fresh account).
PLAIN_USER_RIGHTS: tuple[str, ...] = (
    "read",
    "edit",
    "createpage",
    "writeapi",
    "minoredit",
    "purge",
    "applychangetags",
    "changetags",
    "editcontentmodel",
    "autoconfirmed",
    "editsemiprotected",
)

#: What the ``sysop`` group adds on a typical wiki.
SYSOP_EXTRA_RIGHTS: tuple[str, ...] = (
    "block",
    "blockemail",
    "delete",
    "bigdelete",
    "deletedhistory",
    "deletedtext",
    "deletelogentry",
    "deleterevision",
    "undelete",
    "browsearchive",
    "protect",
    "editprotected",
    "editinterface",
    "editsitecss",
    "editsitejson",
    "editsitejs",
    "editusercss",
    "edituserjson",
    "edituserjs",
    "import",
    "importupload",
    "move",
    "move-subpages",
    "move-rootuserpages",
    "move-categorypages",
    "movefile",
    "suppressredirect",
    "patrol",
    "autopatrol",
    "rollback",
    "mergehistory",
    "ipblock-exempt",
    "nominornewtalk",
    "noratelimit",
    "apihighlimits",
    "unwatchedpages",
    "markbotedits",
    "upload",
    "reupload",
    "createaccount",
)

#: Rights of the anonymous user (``*`` only) on the development wiki. Anonymous editing is off.
ANONYMOUS_RIGHTS: tuple[str, ...] = ("read", "writeapi", "createaccount")

#: Grant → the rights it confers (approximately MediaWiki core's ``$wgGrantPermissions``).
GRANT_RIGHTS: dict[str, tuple[str, ...]] = {
    "basic": (
        "autocreateaccount",
        "autoconfirmed",
        "autopatrol",
        "editsemiprotected",
        "ipblock-exempt",
        "nominornewtalk",
        "patrolmarks",
        "purge",
        "read",
        "unwatchedpages",
        "writeapi",
    ),
    "highvolume": ("apihighlimits", "bot", "markbotedits", "noratelimit"),
    "editpage": ("applychangetags", "changetags", "edit", "editcontentmodel", "minoredit"),
    "editprotected": ("editprotected",),
    "editmycssjs": ("editmyusercss", "editmyuserjson", "editmyuserjs"),
    "editmyoptions": ("editmyoptions", "editmyuserjson"),
    "editinterface": ("editinterface", "edituserjson", "editsitejson"),
    "editsiteconfig": (
        "editinterface",
        "editsitecss",
        "editsitejs",
        "editsitejson",
        "editusercss",
        "edituserjs",
        "edituserjson",
    ),
    "createeditmovepage": (
        "createpage",
        "createtalk",
        "delete-redirect",
        "move",
        "move-categorypages",
        "move-rootuserpages",
        "move-subpages",
        "suppressredirect",
    ),
    "uploadfile": ("upload", "reupload-own"),
    "uploadeditmovefile": ("upload", "reupload", "reupload-own", "movefile", "upload_by_url"),
    "patrol": ("patrol",),
    "rollback": ("rollback",),
    "blockusers": ("block", "blockemail"),
    "viewdeleted": ("browsearchive", "deletedhistory", "deletedtext"),
    "viewrestrictedlogs": ("suppressionlog",),
    "delete": (
        "bigdelete",
        "browsearchive",
        "delete",
        "deletedhistory",
        "deletedtext",
        "deletelogentry",
        "deleterevision",
        "undelete",
    ),
    "oversight": ("hideuser", "suppressrevision", "viewsuppressed"),
    "protect": ("editprotected", "protect"),
    "viewmywatchlist": ("viewmywatchlist",),
    "editmywatchlist": ("editmywatchlist",),
    "sendemail": ("sendemail",),
    "createaccount": ("createaccount",),
    "privateinfo": ("viewmyprivateinfo",),
    "mergehistory": ("mergehistory",),
    "import": ("import", "importupload"),
    "checkuser": ("checkuser", "checkuser-log"),
    "globalblock": ("globalblock",),
    "oath": ("oathauth-enable",),
    "shortenurls": ("urlshortener-create-url",),
    "oauthmanageownclient": (),
    "mwoauth-authonly": (),
    "mwoauth-authonlyprivate": (),
}

#: Scope strings the authorize endpoint accepts (anything else is ``invalid_scope``).
KNOWN_SCOPES: frozenset[str] = frozenset(GRANT_RIGHTS) | {"#default"}

#: Grants that identify only; a client registered with one of them gets no implied ``basic``.
AUTH_ONLY_GRANTS: frozenset[str] = frozenset({"mwoauth-authonly", "mwoauth-authonlyprivate"})

#: Grants an approval always keeps (core hidden grants plus the identity grants).
IRREVOCABLE_GRANTS: frozenset[str] = frozenset({"basic"}) | AUTH_ONLY_GRANTS

#: Old grant names MediaWiki still maps to the current ones.
BACKCOMPAT_GRANTS: dict[str, str] = {
    "useoauth": "basic",
    "authonly": "mwoauth-authonly",
    "authonlyprivate": "mwoauth-authonlyprivate",
}

#: Short descriptions for the consent page.
GRANT_DESCRIPTIONS: dict[str, str] = {
    "basic": "Basic rights",
    "highvolume": "High-volume (bot) access",
    "editpage": "Edit existing pages",
    "createeditmovepage": "Create, edit, and move pages",
    "editprotected": "Edit protected pages",
    "privateinfo": "Access your private information (email address, real name)",
    "mwoauth-authonly": "Verify your identity only (no reading or editing on your behalf)",
    "mwoauth-authonlyprivate": (
        "Verify your identity, including your real name and email address (no reading or "
        "editing on your behalf)"
    ),
    "blockusers": "Block and unblock users",
    "delete": "Delete pages, revisions, and log entries",
    "protect": "Protect and unprotect pages",
    "rollback": "Rollback changes to pages",
    "patrol": "Patrol changes to pages",
    "uploadfile": "Upload new files",
    "sendemail": "Send email to other users",
}


def grant_rights(grants: list[str] | tuple[str, ...] | set[str]) -> set[str]:
    """The rights conferred by a set of grants."""
    rights: set[str] = set()
    for grant in grants:
        rights.update(GRANT_RIGHTS.get(grant, ()))
    return rights


def normalize_grant(grant: str) -> str:
    """Map an old grant name (``useoauth``, ``authonly``...) to its current name."""
    return BACKCOMPAT_GRANTS.get(grant, grant)


def _default_groups() -> list[str]:
    return ["*", "user", "autoconfirmed"]


def _default_rights() -> list[str]:
    return list(PLAIN_USER_RIGHTS)


def _default_grants() -> list[str]:
    return ["basic", "editpage", "highvolume"]


@dataclass
class DevUser:
    """A test account on the development wiki.

    ``email`` is derived from the name (``alice@example.org``) when left empty; ``id`` is assigned
    by :meth:`DevWiki.add_user` when 0. A ``hidden`` (suppressed) user's profile holds only
    ``sub`` and ``blocked=True``. ``description`` is the one-line text on the consent page
    (derived from the other fields when empty).
    """

    name: str
    groups: list[str] = field(default_factory=_default_groups)
    rights: list[str] = field(default_factory=_default_rights)
    blocked: bool = False
    email: str = ""
    confirmed_email: bool = True
    realname: str = ""
    editcount: int = 0
    registered: str | None = "20200101000000"
    hidden: bool = False
    id: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a DevUser needs a name")
        if not self.email:
            self.email = self.name.lower().replace(" ", ".") + "@example.org"

    def describe(self) -> str:
        """One line for the consent page: "plain user", "sysop", "blocked"..."""
        if self.description:
            return self.description
        parts: list[str] = []
        if self.hidden:
            parts.append("hidden (suppressed) user")
        if "sysop" in self.groups:
            parts.append("sysop")
        if self.blocked:
            parts.append("blocked")
        if not self.confirmed_email:
            parts.append("no confirmed email")
        if "autoconfirmed" not in self.groups:
            parts.append("new user, not autoconfirmed")
        return ", ".join(parts) or "plain user"


@dataclass
class DevClient:
    """An OAuth 2.0 client (consumer) registered on the development wiki.

    ``secret=None`` makes a non-confidential (public) client, which must use PKCE.
    ``redirect_uri=None`` accepts any http(s) URL on ``127.0.0.1``, ``localhost`` or ``[::1]``
    (a development convenience; real wikis always have one registered callback).
    ``basic`` is added to ``grants`` unless the client is identity-only (``mwoauth-authonly`` or
    ``mwoauth-authonlyprivate``), as MediaWiki's registration does. Owner-only clients are
    limited to the ``client_credentials`` grant type.

    ``confidential`` defaults to "has a secret"; set it to False with a secret to model a
    MediaWiki 1.39 public client, which has a secret it must send when refreshing.

    ``oauth_version="1.0a"`` makes an OAuth 1.0a consumer (key ``client_id``, a ``secret`` is
    required): it speaks ``Special:OAuth/initiate|authorize|token|identify`` only. With
    ``callback_is_prefix`` the callback given at initiate must start with ``redirect_uri``;
    without it, initiate must say ``oob`` and the user goes back to ``redirect_uri``.
    """

    client_id: str
    secret: str | None = None
    redirect_uri: str | None = None
    grants: list[str] = field(default_factory=_default_grants)
    owner_only: bool = False
    owner: str | None = None
    allowed_grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    name: str = ""
    confidential: bool | None = None
    oauth_version: str = "2.0"
    callback_is_prefix: bool = False

    def __post_init__(self) -> None:
        if self.oauth_version not in ("2.0", "1.0a"):
            raise ValueError("oauth_version must be '2.0' or '1.0a'")
        if self.oauth_version == "1.0a" and not self.secret:
            raise ValueError("an OAuth 1.0a consumer needs a secret")
        grants: list[str] = []
        for grant in self.grants:
            grant = normalize_grant(grant)
            if grant not in grants:
                grants.append(grant)
        if not AUTH_ONLY_GRANTS.intersection(grants) and "basic" not in grants:
            grants.insert(0, "basic")
        self.grants = grants
        if self.owner_only:
            self.allowed_grant_types = ("client_credentials",)
        else:
            self.allowed_grant_types = tuple(self.allowed_grant_types)
        if self.confidential is None:
            self.confidential = self.secret is not None
        if not self.name:
            self.name = {
                DEV_CLIENT_ID: "Development client",
                DEV_OAUTH1_KEY: "Development OAuth 1.0a consumer",
            }.get(self.client_id, f"Client {self.client_id}")

    @property
    def is_confidential(self) -> bool:
        """True for a confidential client (one that authenticates with its secret)."""
        return bool(self.confidential)
