"""The OAuth 2.0 server: authorize, the consent page, the token endpoint and the resources.

Behaviour follows Extension:OAuth on top of League OAuth2 Server 9 (flavor ``"wikimedia"``)
or the older fork as MediaWiki 1.39 answered (flavor ``"1.39"``); see
``reference/wikimedia-oauth-protocol.md`` and ``reference/real-mediawiki-1.39-observed.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, request, url_for

from .common import count, fault_response, get_wiki, html_page, json_response, rest_error
from .models import (
    GRANT_DESCRIPTIONS,
    IRREVOCABLE_GRANTS,
    KNOWN_SCOPES,
    DevClient,
    grant_rights,
    normalize_grant,
)
from .records import AccessToken, b64url

if TYPE_CHECKING:
    from .wiki import DevWiki

bp = Blueprint("oauth", __name__)

PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
INTERNAL_PARAMS = frozenset({"approval_pass", "approval_cancel", "devwiki_approval"})

DESC_INVALID_REQUEST = (
    "The request is missing a required parameter, includes an invalid parameter value, "
    "includes a parameter more than once, or is otherwise malformed."
)
DESC_INVALID_CLIENT = "Client authentication failed"
DESC_INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed"
DESC_INVALID_GRANT = (
    "The provided authorization grant (e.g., authorization code, resource owner credentials) "
    "or refresh token is invalid, expired, revoked, does not match the redirection URI used in "
    "the authorization request, or was issued to another client."
)
DESC_ACCESS_DENIED = "The resource owner or authorization server denied the request."
DESC_REJECTED = "User has rejected the request from client application"
DESC_REFRESH = "The refresh token is invalid."


class OAuthError(Exception):
    """An OAuth error: JSON on the token endpoint, a page or redirect on authorize."""

    def __init__(self, error: str, description: str, status: int, hint: str | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.hint = hint

    def payload(self, flavor: str) -> dict[str, str]:
        body = {"error": self.error, "error_description": self.description}
        if self.hint is not None:
            body["hint"] = self.hint
        if flavor == "1.39":
            body["message"] = self.description
        return body


def invalid_request(param: str | None = None, hint: str | None = None) -> OAuthError:
    if hint is None and param is not None:
        hint = f"Check the `{param}` parameter"
    return OAuthError("invalid_request", DESC_INVALID_REQUEST, 400, hint)


def invalid_client() -> OAuthError:
    return OAuthError("invalid_client", DESC_INVALID_CLIENT, 401)


def invalid_scope(scope: str) -> OAuthError:
    return OAuthError("invalid_scope", DESC_INVALID_SCOPE, 400, f"Check the `{scope}` scope")


def invalid_grant(hint: str) -> OAuthError:
    return OAuthError("invalid_grant", DESC_INVALID_GRANT, 400, hint)


def code_error(wiki: DevWiki, hint: str) -> OAuthError:
    """Expired/reused codes: ``invalid_grant`` (League 9) or ``invalid_request`` (1.39)."""
    if wiki.flavor == "1.39":
        return invalid_request(hint=hint)
    return invalid_grant(hint)


def refresh_error(wiki: DevWiki, hint: str) -> OAuthError:
    """Bad refresh tokens: ``invalid_grant``/400 (League 9) or ``invalid_request``/401 (1.39)."""
    if wiki.flavor == "1.39":
        return OAuthError("invalid_request", DESC_REFRESH, 401, hint)
    return OAuthError("invalid_grant", DESC_REFRESH, 400, hint)


# ---------------------------------------------------------------------------- helpers


def parse_scopes(raw: str | None) -> list[str]:
    """Split a space-separated scope string (old grant names mapped to current ones)."""
    scopes: list[str] = []
    for part in (raw or "").split(" "):
        if part:
            scope = normalize_grant(part)
            if scope not in scopes:
                scopes.append(scope)
    return scopes


def first_unknown_scope(scopes: list[str]) -> str | None:
    for scope in scopes:
        if scope not in KNOWN_SCOPES:
            return scope
    return None


def narrow_scopes(client: DevClient, requested: list[str]) -> list[str]:
    """Requested ∩ registered, plus the registered irrevocable grants; all if none requested."""
    wanted = [s for s in requested if s != "#default"]
    if not wanted:
        return list(client.grants)
    return [g for g in client.grants if g in wanted or g in IRREVOCABLE_GRANTS]


def is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and hostname in LOOPBACK_HOSTS
        and "@" not in parts.netloc
        and not parts.fragment
    )


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return parts._replace(netloc=netloc).geturl()


def redirect_uri_matches(wiki: DevWiki, client: DevClient, uri: str) -> bool:
    """Exact match with the registered callback; loopback IPs match on any port (League 9)."""
    registered = client.redirect_uri
    if registered is None:
        return is_loopback_url(uri)
    if uri == registered:
        return True
    if wiki.flavor == "1.39":
        return False
    try:
        reg, given = urlsplit(registered), urlsplit(uri)
        reg_host, given_host = reg.hostname, given.hostname
    except ValueError:
        return False
    if reg.scheme == "http" and reg_host in ("127.0.0.1", "::1") and given_host == reg_host:
        return _without_port(registered) == _without_port(uri)
    return False


def add_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def redirect(location: str, status: int = 302) -> Response:
    response = Response("", status)
    response.headers["Location"] = location
    return response


def authorize_error_page(wiki: DevWiki, error: OAuthError) -> Response:
    """Authorize errors without a redirect: HTML with the error's status (1.39: always 200)."""
    status = 200 if wiki.flavor == "1.39" else error.status
    return html_page(
        "error.html",
        status,
        heading="Application Connection Error",
        error=error.error,
        description=error.description,
        hint=error.hint,
    )


def _internal_query(raw: str) -> str:
    """The original authorize query without our own hop parameters."""
    parts = [p for p in raw.split("&") if p and p.split("=", 1)[0] not in INTERNAL_PARAMS]
    return "&".join(parts)


# ---------------------------------------------------------------------------- authorize


@bp.route("/w/rest.php/oauth2/authorize")
def authorize() -> Response:
    wiki = get_wiki()
    count("authorize")
    fault = fault_response("authorize")
    if fault is not None:
        return fault
    try:
        return _authorize(wiki)
    except OAuthError as error:
        return authorize_error_page(wiki, error)


def _authorize(wiki: DevWiki) -> Response:
    args = request.args
    # 1. parameter validation
    if args.get("response_type") != "code":
        raise invalid_request("response_type")
    client_id = args.get("client_id")
    if not client_id:
        raise invalid_request("client_id")
    method = args.get("code_challenge_method")
    if method is not None and method not in ("plain", "S256"):
        raise invalid_request("code_challenge_method")
    # 3. client lookup
    with wiki.lock:
        client = wiki.clients.get(client_id)
    if client is None:
        raise invalid_client()
    # 4. redirect_uri
    given_redirect = args.get("redirect_uri")
    if given_redirect is not None:
        if not redirect_uri_matches(wiki, client, given_redirect):
            raise invalid_client()
        target = given_redirect
    elif client.redirect_uri is None:
        raise invalid_client()
    else:
        target = client.redirect_uri
    state = args.get("state")
    # 5. scopes
    requested = parse_scopes(args.get("scope"))
    unknown = first_unknown_scope(requested)
    if unknown is not None:
        error = invalid_scope(unknown)
        params = {"error": error.error, "error_description": error.description}
        if error.hint:
            params["hint"] = error.hint
        if wiki.flavor == "1.39":
            params["message"] = error.description
        elif state is not None:
            params["state"] = state
        return redirect(add_query(target, params))
    # 6. PKCE
    challenge = args.get("code_challenge")
    if challenge is not None:
        if PKCE_RE.match(challenge) is None:
            raise invalid_request(hint="Code challenge must follow the specifications of RFC-7636.")
        method = method or "plain"
    elif not client.is_confidential:
        raise invalid_request(hint="Code challenge must be provided for public clients")
    else:
        method = None
    # 7. usable by this user? Owner-only clients never go through the dialog.
    if client.owner_only:
        if wiki.flavor == "1.39":
            raise invalid_client()
        raise OAuthError(
            "access_denied", DESC_ACCESS_DENIED, 401, "mwoauthserver-consumer-owner-only"
        )
    # 8. narrow
    scopes = narrow_scopes(client, requested)
    # 9. consent
    if "approval_cancel" in args:
        if given_redirect is None:
            raise OAuthError("unauthorized_client", DESC_REJECTED, 400)
        params = {"error": "unauthorized_client", "error_description": DESC_REJECTED}
        if wiki.flavor == "1.39":
            params["message"] = DESC_REJECTED
        return redirect(add_query(given_redirect, params))
    username: str | None = None
    if "approval_pass" in args and args.get("devwiki_approval"):
        approval = wiki.take_approval(args.get("devwiki_approval", ""))
        if (
            approval is not None
            and approval.client_id == client.client_id
            and set(scopes) <= set(approval.scopes)
        ):
            username = approval.user
    if username is None and wiki.auto_approve is not None:
        username = wiki.auto_approve
        with wiki.lock:
            known = username in wiki.users
        if not known:
            raise OAuthError(
                "access_denied", DESC_ACCESS_DENIED, 401, f"auto_approve: no user {username!r}"
            )
    if username is None:
        return _to_consent(client, scopes)
    code = wiki.issue_code(client, username, scopes, given_redirect, challenge, method)
    params = {"code": code.code}
    if state is not None:
        params["state"] = state
    return redirect(add_query(target, params))


def _to_consent(client: DevClient, scopes: list[str]) -> Response:
    query = [
        ("title", "Special:OAuth/approve"),
        ("returnto", url_for("oauth.authorize")),
        ("returntoquery", _internal_query(request.query_string.decode("utf-8", "replace"))),
        ("client_id", client.client_id),
        ("oauth_version", "2"),
        ("scope", " ".join(scopes)),
    ]
    if request.args.get("display") not in (None, "page"):
        query.append(("display", "popup"))
    return redirect(url_for("site.index_php") + "?" + urlencode(query), 307)


# ---------------------------------------------------------------------------- consent page


def consent() -> Response:
    """``Special:OAuth/approve``: pick a test user, then Allow or Cancel."""
    wiki = get_wiki()
    count("consent")
    values = request.values
    client_id = values.get("client_id", "")
    with wiki.lock:
        client = wiki.clients.get(client_id)
        users = [(u.name, u.describe()) for u in wiki.users.values()]
    if client is None:
        return html_page(
            "error.html",
            400,
            heading="Unknown application",
            error="mwoauth-invalid-consumer",
            description="No application with this client_id is registered on this wiki.",
            hint=None,
        )
    scopes = parse_scopes(values.get("scope"))
    returntoquery = _internal_query(values.get("returntoquery", ""))
    returnto = _returnto(values.get("returnto"))
    if request.method == "POST":
        return _consent_submit(wiki, client, scopes, returnto, returntoquery)
    grants = [(s, GRANT_DESCRIPTIONS.get(s, s)) for s in scopes]
    return html_page(
        "consent.html",
        client=client,
        grants=grants,
        users=users,
        selected=next(iter(wiki.users), ""),
        csrf=wiki.csrf_token,
        scope=" ".join(scopes),
        returnto=returnto,
        returntoquery=returntoquery,
        action=url_for("site.index_php"),
        private="privateinfo" in scopes or "mwoauth-authonlyprivate" in scopes,
    )


def _returnto(value: str | None) -> str:
    """Where the consent page sends the browser back: the OAuth 2.0 authorize endpoint, or
    index.php for OAuth 1.0a's ``Special:OAuth/authorize``. Nothing else (no open redirect)."""
    index = url_for("site.index_php")
    return index if value == index else url_for("oauth.authorize")


def _consent_submit(
    wiki: DevWiki, client: DevClient, scopes: list[str], returnto: str, returntoquery: str
) -> Response:
    token = request.form.get("wpEditToken", "")
    if not hmac.compare_digest(token.encode(), wiki.csrf_token.encode()):
        return html_page(
            "error.html",
            400,
            heading="Session failure",
            error="sessionfailure",
            description="The consent form's edit token is wrong; reload the page and retry.",
            hint=None,
        )
    back = returnto + "?" + (returntoquery + "&" if returntoquery else "")
    if "cancel" in request.form:
        return redirect(back + "approval_cancel=1")
    username = request.form.get("user", "")
    with wiki.lock:
        known = username in wiki.users
    if "accept" not in request.form or not known:
        return html_page(
            "error.html",
            400,
            heading="Bad request",
            error="badrequest",
            description="Choose one of the test users, then Allow or Cancel.",
            hint=None,
        )
    approval = wiki.new_approval(username, client.client_id, scopes)
    return redirect(back + urlencode({"approval_pass": "1", "devwiki_approval": approval}))


# ---------------------------------------------------------------------------- token endpoint


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


# ---------------------------------------------------------------------------- resources


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


def _gapped(grants: list[str]) -> dict[str, str]:
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
            body: object = {"scopes": _gapped(grants) if wiki.flavor == "1.39" else grants}
        else:
            body = _profile(wiki, access)
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


def _profile(wiki: DevWiki, access: AccessToken) -> dict[str, object]:
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
    rights = list(user.rights) if wiki.flavor == "wikimedia" else wiki.user_rights(user, scopes)
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
