"""WikimediaUser: who is logged in, as the wiki's profile endpoint describes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "HiddenUser",
    "ProfileError",
    "WikimediaUser",
    "parse_mw_timestamp",
]


class ProfileError(ValueError):
    """The profile the wiki sent is missing fields or has fields of the wrong type."""


class HiddenUser(ProfileError):
    """The wiki says this account is hidden (suppressed): it answers only ``sub`` and ``blocked``."""


def _str_list(profile: Mapping[str, Any], key: str) -> frozenset[str]:
    value = profile.get(key, [])
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"profile field {key!r} is not a list of strings")
    return frozenset(value)


def _bool(profile: Mapping[str, Any], key: str, default: bool) -> bool:
    value = profile.get(key, default)
    if not isinstance(value, bool):
        raise ProfileError(f"profile field {key!r} is not a boolean")
    return value


def _text(profile: Mapping[str, Any], key: str) -> str:
    value = profile.get(key)
    if value is None:
        return ""  # MediaWiki sent null for an unconfirmed email before Oct 2023
    if not isinstance(value, str):
        raise ProfileError(f"profile field {key!r} is not a string")
    return value


def parse_mw_timestamp(value: object) -> datetime | None:
    """MediaWiki's TS_MW ``YYYYMMDDHHMMSS`` (UTC); ``None`` when unknown (very old accounts)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        raise ProfileError("profile field 'registered' is not a 14-digit MediaWiki timestamp")
    try:
        # Not strptime: it is ~7x slower, and this runs on every protected request.
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise ProfileError("profile field 'registered' is not a valid timestamp") from exc


@dataclass(frozen=True, slots=True)
class WikimediaUser:
    """The logged-in user, immutable, built from ``/oauth2/resource/profile``.

    ``sub`` is the central (global) user id as a string; MediaWiki sent it as a number before
    December 2024, so both are accepted. ``rights`` are all the user's rights on the wiki that
    answered (not limited by the grants); ``grants`` are what this tool was allowed to do.
    ``realname`` and ``email`` are empty unless the ``mwoauth-authonlyprivate`` or
    ``privateinfo`` grant was given. ``blocked`` is true for any block, partial or sitewide.
    """

    sub: str
    username: str
    editcount: int = 0
    confirmed_email: bool = False
    blocked: bool = False
    registered: datetime | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    rights: frozenset[str] = field(default_factory=frozenset)
    grants: frozenset[str] = field(default_factory=frozenset)
    realname: str = ""
    email: str = ""

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> WikimediaUser:
        """Map a profile answer, accepting both the Wikimedia and the MediaWiki 1.39 shapes.

        Raises :class:`HiddenUser` for a suppressed account and :class:`ProfileError` when a
        field is missing or has the wrong type (the caller turns that into a 502 page).
        """
        if not isinstance(profile, Mapping):
            raise ProfileError("profile is not a JSON object")
        sub = profile.get("sub")
        if isinstance(sub, bool) or not isinstance(sub, str | int):
            raise ProfileError("profile field 'sub' is missing or not a string")
        sub = str(sub)
        if not sub:
            raise ProfileError("profile field 'sub' is empty")
        username = profile.get("username")
        if (
            username is None
            and profile.get("blocked") is True
            and set(profile) <= {"sub", "blocked"}
        ):
            raise HiddenUser("this account is hidden")
        if not isinstance(username, str) or not username:
            raise ProfileError("profile field 'username' is missing or not a string")
        editcount = profile.get("editcount", 0)
        if isinstance(editcount, bool) or not isinstance(editcount, int):
            raise ProfileError("profile field 'editcount' is not an integer")
        confirmed = profile.get("confirmed_email", profile.get("email_verified", False))
        if not isinstance(confirmed, bool):
            raise ProfileError("profile field 'confirmed_email' is not a boolean")
        return cls(
            sub=sub,
            username=username,
            editcount=editcount,
            confirmed_email=confirmed,
            blocked=_bool(profile, "blocked", False),
            registered=parse_mw_timestamp(profile.get("registered")),
            groups=_str_list(profile, "groups"),
            rights=_str_list(profile, "rights"),
            grants=_str_list(profile, "grants"),
            realname=_text(profile, "realname"),
            email=_text(profile, "email"),
        )

    def to_profile(self) -> dict[str, Any]:
        """The normalised profile, as stored in the login record (no tokens)."""
        return {
            "sub": self.sub,
            "username": self.username,
            "editcount": self.editcount,
            "confirmed_email": self.confirmed_email,
            "blocked": self.blocked,
            "registered": self.registered.strftime("%Y%m%d%H%M%S") if self.registered else None,
            "groups": sorted(self.groups),
            "rights": sorted(self.rights),
            "grants": sorted(self.grants),
            "realname": self.realname,
            "email": self.email,
        }

    def has_right(self, *rights: str) -> bool:
        """True if the user has every one of ``rights``."""
        return self.rights.issuperset(rights)

    def has_grant(self, *grants: str) -> bool:
        """True if the user granted this tool every one of ``grants``."""
        return self.grants.issuperset(grants)

    def in_group(self, *groups: str) -> bool:
        """True if the user is in every one of ``groups``."""
        return self.groups.issuperset(groups)

    def __str__(self) -> str:
        return self.username
