"""The development wiki's OAuth 2.0 authorize endpoint and consent page
(``rest.php/oauth2/authorize``, ``Special:OAuth/approve``)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for

from .common import count, fault_response, get_wiki, html_page
from .models import GRANT_DESCRIPTIONS, DevClient
from .oauth import (
    DESC_ACCESS_DENIED,
    DESC_REJECTED,
    PKCE_RE,
    OAuthError,
    add_query,
    authorize_error_page,
    first_unknown_scope,
    internal_query,
    invalid_client,
    invalid_request,
    invalid_scope,
    narrow_scopes,
    parse_scopes,
    redirect,
    redirect_uri_matches,
)

if TYPE_CHECKING:
    from .wiki import DevWiki

__all__ = ["authorize", "bp", "consent"]

bp = Blueprint("oauth", __name__)


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


@dataclass(frozen=True)
class _AuthorizeRequest:
    """An authorize request whose parameters, client and redirect URI checked out."""

    client: DevClient
    given_redirect: str | None  # as sent; the code is bound to it
    target: str  # where the answer goes
    state: str | None
    requested: list[str]
    challenge: str | None
    method: str | None


def _authorize(wiki: DevWiki) -> Response:
    """Extension:OAuth's authorize steps, in its order: parameters, client, redirect URI,
    scopes, PKCE, owner-only, narrowing, then the consent (or its answer)."""
    req = _checked_request(wiki)
    unknown = first_unknown_scope(req.requested)
    if unknown is not None:  # 5. scopes: an error the client hears at its redirect URI
        return _scope_error(wiki, req, invalid_scope(unknown))
    req = _with_pkce(req)
    if req.client.owner_only:  # 7. owner-only clients never go through the dialog
        if wiki.flavor == "1.39":
            raise invalid_client()
        raise OAuthError(
            "access_denied", DESC_ACCESS_DENIED, 401, "mwoauthserver-consumer-owner-only"
        )
    scopes = narrow_scopes(req.client, req.requested)  # 8.
    if "approval_cancel" in request.args:  # 9. the consent page's Cancel
        return _declined(wiki, req)
    username = _approved_user(wiki, req.client, scopes)
    if username is None:
        return _to_consent(req.client, scopes)
    code = wiki.issue_code(
        req.client, username, scopes, req.given_redirect, req.challenge, req.method
    )
    params = {"code": code.code}
    if req.state is not None:
        params["state"] = req.state
    return redirect(add_query(req.target, params))


def _checked_request(wiki: DevWiki) -> _AuthorizeRequest:
    """Steps 1-4: required parameters, the client, the redirect URI."""
    args = request.args
    if args.get("response_type") != "code":
        raise invalid_request("response_type")
    client_id = args.get("client_id")
    if not client_id:
        raise invalid_request("client_id")
    method = args.get("code_challenge_method")
    if method is not None and method not in ("plain", "S256"):
        raise invalid_request("code_challenge_method")
    with wiki.lock:
        client = wiki.clients.get(client_id)
    if client is None:
        raise invalid_client()
    given_redirect = args.get("redirect_uri")
    if given_redirect is not None:
        if not redirect_uri_matches(wiki, client, given_redirect):
            raise invalid_client()
        target = given_redirect
    elif client.redirect_uri is None:
        raise invalid_client()
    else:
        target = client.redirect_uri
    return _AuthorizeRequest(
        client=client,
        given_redirect=given_redirect,
        target=target,
        state=args.get("state"),
        requested=parse_scopes(args.get("scope")),
        challenge=args.get("code_challenge"),
        method=method,
    )


def _scope_error(wiki: DevWiki, req: _AuthorizeRequest, error: OAuthError) -> Response:
    params = {"error": error.error, "error_description": error.description}
    if error.hint:
        params["hint"] = error.hint
    if wiki.flavor == "1.39":
        params["message"] = error.description
    elif req.state is not None:
        params["state"] = req.state
    return redirect(add_query(req.target, params))


def _with_pkce(req: _AuthorizeRequest) -> _AuthorizeRequest:
    """Step 6: a well-formed challenge (method ``plain`` by default); public clients need one."""
    if req.challenge is not None:
        if PKCE_RE.match(req.challenge) is None:
            raise invalid_request(hint="Code challenge must follow the specifications of RFC-7636.")
        return replace(req, method=req.method or "plain")
    if not req.client.is_confidential:
        raise invalid_request(hint="Code challenge must be provided for public clients")
    return replace(req, method=None)


def _declined(wiki: DevWiki, req: _AuthorizeRequest) -> Response:
    """Cancel: MediaWiki answers ``unauthorized_client`` and drops ``state`` (protocol §4.2)."""
    if req.given_redirect is None:
        raise OAuthError("unauthorized_client", DESC_REJECTED, 400)
    params = {"error": "unauthorized_client", "error_description": DESC_REJECTED}
    if wiki.flavor == "1.39":
        params["message"] = DESC_REJECTED
    return redirect(add_query(req.given_redirect, params))


def _approved_user(wiki: DevWiki, client: DevClient, scopes: list[str]) -> str | None:
    """Who allowed this: the consent page's approval, else ``auto_approve``; None: ask."""
    args = request.args
    if "approval_pass" in args and args.get("devwiki_approval"):
        approval = wiki.take_approval(args.get("devwiki_approval", ""))
        if (
            approval is not None
            and approval.client_id == client.client_id
            and set(scopes) <= set(approval.scopes)
        ):
            return approval.user
    if wiki.auto_approve is None:
        return None
    username = wiki.auto_approve
    with wiki.lock:
        known = username in wiki.users
    if not known:
        raise OAuthError(
            "access_denied", DESC_ACCESS_DENIED, 401, f"auto_approve: no user {username!r}"
        )
    return username


def _to_consent(client: DevClient, scopes: list[str]) -> Response:
    query = [
        ("title", "Special:OAuth/approve"),
        ("returnto", url_for("oauth.authorize")),
        ("returntoquery", internal_query(request.query_string.decode("utf-8", "replace"))),
        ("client_id", client.client_id),
        ("oauth_version", "2"),
        ("scope", " ".join(scopes)),
    ]
    if request.args.get("display") not in (None, "page"):
        query.append(("display", "popup"))
    return redirect(url_for("site.index_php") + "?" + urlencode(query), 307)


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
    returntoquery = internal_query(values.get("returntoquery", ""))
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
