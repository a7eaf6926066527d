"""The development wiki's OAuth 2.0 resources (``rest.php/oauth2/resource/profile|scopes``) and
the Bearer token checks the Action API shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, request

from .common import count, fault_response, get_wiki, json_response
from .models import grant_rights
from .oauth import DESC_ACCESS_DENIED, OAuthError
from .records import AccessToken

if TYPE_CHECKING:
    from .wiki import DevWiki

__all__ = ["bad_token_response", "bearer_token", "bp", "gapped", "resource", "user_profile"]

bp = Blueprint("oauth_resource", __name__)


def bad_token_response(wiki: DevWiki, reason: str) -> Response:
    """A rejected Bearer token on the OAuth resources (edge 401 or League's 401 JSON)."""
    if wiki.flavor == "wikimedia":
        return json_response(
            {
                "error": "invalid_token",
                "error_description": "The access token is invalid, expired or revoked.",
            },
            401,
            headers={"WWW-Authenticate": 'Bearer realm="devwiki", error="invalid_token"'},
        )
    hint = {
        "malformed": "The JWT string must have two dots",
        "revoked": "Access token has been revoked",
    }.get(reason, "Access token could not be verified")
    error = OAuthError("access_denied", DESC_ACCESS_DENIED, 401, hint)
    return json_response(error.payload(wiki.flavor), 401)


def bearer_token() -> str | None:
    """The token of an ``Authorization`` header (anything not ``Bearer …`` is taken whole)."""
    header = request.headers.get("Authorization")
    if not header:
        return None
    return header[7:] if header.startswith("Bearer ") else header


def gapped(grants: list[str]) -> dict[str, str]:
    """A PHP array with holes in its keys, as MediaWiki 1.39 serialised the scopes."""
    return {str(i if i == 0 else i + 1): grant for i, grant in enumerate(grants)}


@bp.route("/w/rest.php/oauth2/resource/<rtype>")
def resource(rtype: str) -> Response:
    wiki = get_wiki()
    if rtype in ("profile", "scopes"):
        count(rtype)
        fault = fault_response("profile")
        if fault is not None:
            return fault
    else:
        return json_response(_bad_resource_type(wiki, rtype), 400)
    token = bearer_token()
    if token is None and wiki.flavor == "1.39":
        # The real 1.39 crashes here (Resource.php passes [] to guzzle's withHeader), as the
        # conformance suite shows; a client never sends no header, but the fake stays honest.
        return json_response(
            {
                "message": "Error: exception of type InvalidArgumentException: "
                "Header value can not be an empty array.",
                "httpCode": 500,
                "httpReason": "Internal Server Error",
            },
            500,
        )
    if token is None:
        error = OAuthError(
            "access_denied", DESC_ACCESS_DENIED, 401, 'Missing "Authorization" header'
        )
        return json_response(error.payload(wiki.flavor), 401)
    access, reason = wiki.lookup_access_token(token)
    if access is None:
        return bad_token_response(wiki, reason)
    with wiki.lock:
        if rtype == "scopes":
            client = wiki.clients.get(access.client_id)
            grants = list(client.grants) if client is not None else list(access.scopes)
            body: object = {"scopes": gapped(grants) if wiki.flavor == "1.39" else grants}
        else:
            body = user_profile(wiki, access)
    content_type = "application/json" if wiki.flavor == "wikimedia" else "text/html; charset=UTF-8"
    return json_response(body, content_type=content_type, escape_html=True)


def _bad_resource_type(wiki: DevWiki, rtype: str) -> dict[str, object]:
    """MediaWiki REST's parameter validation error for an unknown resource type."""
    if wiki.flavor == "1.39":  # as the real 1.39 answered (conformance suite)
        return {
            "error": "parameter-validation-failed",
            "name": "type",
            "value": rtype,
            "failureCode": "badvalue",
            "failureData": [],
            "messageTranslations": {"en": f'Unrecognized value for parameter "type": {rtype}.'},
            "httpCode": 400,
            "httpReason": "Bad Request",
        }
    return {
        "error": "parameter-validation-failed",
        "name": "type",
        "value": rtype,
        "failureCode": "badvalue",
        "failureData": None,
        "messageTranslations": {
            "en": f'Invalid value "{rtype}" for parameter "type". Expected one of: profile, scopes.'
        },
    }


def user_profile(
    wiki: DevWiki, access: AccessToken, *, all_rights: bool = False
) -> dict[str, object]:
    """The profile of ``access``'s user. ``rights``: all of the user's rights on the wikimedia
    flavour and in OAuth 1.0a's identify (``all_rights``); 1.39's REST profile limits them to
    what the token's grants confer (both as a real 1.39 answers)."""
    user = wiki.users.get(access.user) if access.user is not None else None
    scopes = list(access.scopes)
    if user is not None and user.hidden:
        return {"sub": str(user.id), "blocked": True}
    profile: dict[str, object] = {}
    if user is None:  # anonymous client_credentials token
        profile.update(
            sub="0",
            username=request.remote_addr or "127.0.0.1",
            editcount=0,
            confirmed_email=False,
        )
        if wiki.flavor == "wikimedia":
            profile["email_verified"] = False
        profile.update(
            blocked=False,
            registered=None,
            groups=["*"],
            rights=wiki.user_rights(None, scopes),
            grants=scopes,
        )
        return profile
    profile.update(
        sub=str(user.id),
        username=user.name,
        editcount=user.editcount,
        confirmed_email=user.confirmed_email,
    )
    if wiki.flavor == "wikimedia":
        profile["email_verified"] = user.confirmed_email
    grant_limited = wiki.flavor != "wikimedia" and not all_rights
    rights = wiki.user_rights(user, scopes) if grant_limited else list(user.rights)
    profile.update(
        blocked=user.blocked,
        registered=user.registered,
        groups=list(user.groups),
        rights=rights,
        grants=scopes,
    )
    if "mwoauth-authonlyprivate" in scopes or "viewmyprivateinfo" in grant_rights(scopes):
        profile["realname"] = user.realname
        profile["email"] = user.email if user.confirmed_email else ""
    return profile
