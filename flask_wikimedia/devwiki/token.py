"""The development wiki's OAuth 2.0 token endpoint (``rest.php/oauth2/access_token``): the
authorization code, refresh token and client credentials grants, client authentication, PKCE."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING

from flask import Blueprint, Response, request

from .common import count, fault_response, get_wiki, json_response, rest_error
from .models import KNOWN_SCOPES, DevClient
from .oauth import (
    PKCE_RE,
    OAuthError,
    code_error,
    first_unknown_scope,
    invalid_client,
    invalid_grant,
    invalid_request,
    invalid_scope,
    narrow_scopes,
    parse_scopes,
    redirect_uri_matches,
    refresh_error,
)
from .records import AccessToken, b64url

if TYPE_CHECKING:
    from .wiki import DevWiki

__all__ = ["access_token", "bp", "token_success", "verify_pkce"]

bp = Blueprint("oauth_token", __name__)


def token_error(wiki: DevWiki, error: OAuthError) -> Response:
    headers: dict[str, str] = {}
    auth = request.headers.get("Authorization")
    if error.error == "invalid_client" and auth:
        scheme = "Bearer" if auth.startswith("Bearer") else "Basic"
        headers["WWW-Authenticate"] = f'{scheme} realm="OAuth"'
    return json_response(error.payload(wiki.flavor), error.status, headers=headers)


def _basic_credentials() -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:], validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    if ":" not in decoded:
        return None, None
    user, password = decoded.split(":", 1)
    return user, password


@bp.route(
    "/w/rest.php/oauth2/access_token",
    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
)
def access_token() -> Response:
    wiki = get_wiki()
    count("token")
    if request.method != "POST":
        return rest_error(
            405,
            f"The request method ({request.method}) was not the allowed method for this path "
            "(POST)",
            error_key="rest-wrong-method",
            headers={"Allow": "POST"},
        )
    mimetype = request.mimetype
    has_body = bool(request.content_length) or bool(mimetype)
    if wiki.flavor == "wikimedia" and has_body and mimetype != "application/x-www-form-urlencoded":
        return rest_error(
            415,
            f"Unsupported Content-Type: {mimetype or '(none)'}",
            error_key="rest-unsupported-content-type",
            extra={"content_type": mimetype},
        )
    form = request.form
    grant_type = form.get("grant_type", "")
    if grant_type in ("authorization_code", "refresh_token", "client_credentials"):
        count(f"token:{grant_type}")
    fault = fault_response("token")
    if fault is not None:
        return fault
    try:
        return _token(wiki, grant_type)
    except OAuthError as error:
        return token_error(wiki, error)


def _authenticate(wiki: DevWiki, client: DevClient, secret: str | None, grant_type: str) -> bool:
    """Client authentication; True when the secret was checked (a confidential check)."""
    if grant_type == "client_credentials" and not client.is_confidential:
        raise invalid_client()
    if wiki.flavor == "wikimedia":
        check = client.is_confidential
    else:
        # The 1.39 fork skipped authentication for public clients only in the code exchange.
        check = client.is_confidential or grant_type != "authorization_code"
    if not check:
        return False
    if not secret:
        if wiki.flavor == "wikimedia":
            raise invalid_request("client_secret")
        raise invalid_client()
    if client.secret is None or not hmac.compare_digest(secret.encode(), client.secret.encode()):
        raise invalid_client()
    if grant_type not in client.allowed_grant_types:
        raise invalid_client()
    return True


def _token(wiki: DevWiki, grant_type: str) -> Response:
    form = request.form
    if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
        error = invalid_request("grant_type")
        if wiki.flavor == "wikimedia":  # MediaWiki's parameter validation answers first
            problem = (
                f'Invalid value "{grant_type}" for parameter "grant_type".'
                if grant_type
                else 'Parameter "grant_type" is required.'
            )
            error.description = f"Invalid request: {problem}"
        raise error
    basic_id, basic_secret = _basic_credentials()
    client_id = form.get("client_id", basic_id)
    if client_id is None:
        raise invalid_request("client_id")
    secret = form.get("client_secret", basic_secret)
    with wiki.lock:
        client = wiki.clients.get(client_id)
    if client is None:
        raise invalid_client()
    checked = _authenticate(wiki, client, secret, grant_type)
    if grant_type == "authorization_code":
        return _grant_code(wiki, client, checked)
    if grant_type == "refresh_token":
        return _grant_refresh(wiki, client)
    return _grant_client_credentials(wiki, client)


def _iss() -> str:
    return request.host_url.rstrip("/")


def token_success(access: AccessToken, refresh: str | None, expires_in: int) -> Response:
    body: dict[str, str | int] = {
        "token_type": "Bearer",
        "expires_in": expires_in,
        "access_token": access.token,
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return json_response(
        body,
        content_type="application/json; charset=UTF-8",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def verify_pkce(method: str | None, challenge: str, verifier: str) -> bool:
    if method == "S256":
        computed = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        return hmac.compare_digest(computed, challenge)
    return hmac.compare_digest(verifier.encode(), challenge.encode())


def _grant_code(wiki: DevWiki, client: DevClient, checked: bool) -> Response:
    form = request.form
    redirect_uri = form.get("redirect_uri")
    if (
        checked
        and redirect_uri is not None
        and not redirect_uri_matches(wiki, client, redirect_uri)
    ):
        raise invalid_client()
    code_value = form.get("code")
    if code_value is None:
        raise invalid_request("code")
    verifier = form.get("code_verifier")
    with wiki.lock:
        code = wiki.codes.get(code_value)
        if code is None:
            raise invalid_request(hint="Cannot decrypt the authorization code")
        if code.expires < wiki.now():
            raise code_error(wiki, "Authorization code has expired")
        if code.used:
            raise code_error(wiki, "Authorization code has been revoked")
        if code.client_id != client.client_id:
            raise invalid_request(hint="Authorization code was not issued to this client")
        if code.redirect_uri is not None and redirect_uri is None:
            raise invalid_request("redirect_uri")
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise invalid_request(hint="Invalid redirect URI")
        if code.challenge is None:
            if verifier is not None and wiki.flavor == "wikimedia":
                raise invalid_request(
                    hint="code_verifier received when no code_challenge is present"
                )
        else:
            if verifier is None:
                raise invalid_request("code_verifier")
            if PKCE_RE.match(verifier) is None:
                raise invalid_request(
                    hint="Code Verifier must follow the specifications of RFC-7636."
                )
            if not verify_pkce(code.method, code.challenge, verifier):
                raise invalid_grant("Failed to verify `code_verifier`.")
        if code.user not in wiki.users:
            raise code_error(wiki, "Authorization code has been revoked")
        code.used = True
        access = wiki.issue_access_token(
            client, code.user, code.scopes, grant_type="authorization_code", iss=_iss()
        )
        refresh = wiki.issue_refresh_token(access)
        return token_success(access, refresh.token, wiki.access_token_ttl)


def _grant_refresh(wiki: DevWiki, client: DevClient) -> Response:
    form = request.form
    value = form.get("refresh_token")
    if value is None:
        raise invalid_request("refresh_token")
    with wiki.lock:
        now = wiki.now()
        old = wiki.refresh_tokens.get(value)
        if old is None:
            raise refresh_error(wiki, "Cannot decrypt the refresh token")
        if old.client_id != client.client_id:
            raise refresh_error(wiki, "Token is not linked to client")
        if old.expires < now:
            raise refresh_error(wiki, "Token has expired")
        if old.revoked and (old.grace_expires is None or now > old.grace_expires):
            raise refresh_error(wiki, "Token has been revoked")
        if old.user is not None and old.user not in wiki.users:
            raise refresh_error(wiki, "Token has been revoked")
        requested = [s for s in parse_scopes(form.get("scope")) if s != "#default"]
        for scope in requested:
            if scope not in KNOWN_SCOPES or scope not in old.scopes:
                raise invalid_scope(scope)
        scopes = [s for s in old.scopes if s in requested] if requested else list(old.scopes)
        previous = wiki.access_tokens.get(old.access_token)
        if previous is not None:
            previous.revoked = True
        if not old.revoked:
            old.revoked = True
            old.grace_expires = now + wiki.refresh_grace if wiki.refresh_grace > 0 else None
        access = wiki.issue_access_token(
            client, old.user, scopes, grant_type="refresh_token", iss=_iss()
        )
        refresh = wiki.issue_refresh_token(access)
        return token_success(access, refresh.token, wiki.access_token_ttl)


def _grant_client_credentials(wiki: DevWiki, client: DevClient) -> Response:
    requested = parse_scopes(request.form.get("scope"))
    unknown = first_unknown_scope(requested)
    if unknown is not None:
        raise invalid_scope(unknown)
    scopes = narrow_scopes(client, requested)
    with wiki.lock:
        owner = client.owner if client.owner_only and client.owner in wiki.users else None
    access = wiki.issue_access_token(
        client, owner, scopes, grant_type="client_credentials", iss=_iss()
    )
    return token_success(access, None, wiki.access_token_ttl)
