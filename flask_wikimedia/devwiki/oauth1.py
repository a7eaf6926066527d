"""The OAuth 1.0a server: ``index.php?title=Special:OAuth/initiate|authorize|authenticate|token|
identify`` and the check of signed ``api.php`` requests.

As Extension:OAuth answers (reference/wikimedia-oauth-protocol.md §7, and MediaWiki 1.39 as
observed, shared/mediawiki/README.md point 8): HMAC-SHA1 only, the signature checked for real
with Authlib's server-side helpers, timestamps within ±300 s, each nonce used once; errors on
initiate and token are HTTP 200 ``Error: …`` text, on identify HTTP 200 JSON
``{"error", "message"}``; request tokens live 600 s and are single use; Cancel shows the wiki's
own page and sends nothing back; the identify JWT is HS256 with the consumer secret, ``iss`` the
wiki's server, ``aud`` the consumer key, ``exp - iat = 100``, the request's nonce echoed and
``grants`` a JSON object. The authorize dialog is the OAuth 2.0 consent page.

Why one module of this size: OAuth 1.0a's three endpoints share one signature check (HMAC-SHA1
over the base string, nonces, timestamps); splitting them would split that check.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth1.rfc5849.errors import OAuth1Error
from authlib.oauth1.rfc5849.signature import verify_hmac_sha1
from authlib.oauth1.rfc5849.wrapper import OAuth1Request
from flask import Response, request, url_for
from joserfc import jwt
from joserfc.jwk import OctKey

from .common import count, get_wiki, html_page, json_response, respond_to_fault
from .models import DevClient
from .oauth import add_query, is_loopback_url, redirect
from .records import AccessToken, RequestToken
from .resource import gapped, user_profile

if TYPE_CHECKING:
    from .wiki import DevWiki

SUBPAGES = ("initiate", "authorize", "authenticate", "token", "identify")
#: Extension:OAuth's window for ``oauth_timestamp`` (OAuthServer::$timestamp_threshold).
TIMESTAMP_WINDOW = 300
REQUEST_TOKEN_TTL = 600
IDENTIFY_TTL = 100
GRANT_TYPE = "oauth1"


class SignatureProblem(Exception):
    """A signed request that must be refused; the text is what MediaWiki would say."""


class _Secret:
    """What Authlib's verifier asks a client or a credential for."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def get_client_secret(self) -> str:
        return self.secret

    def get_oauth_token_secret(self) -> str:
        return self.secret


def subpage(title: str) -> str | None:
    """``initiate`` for ``Special:OAuth/initiate`` (any case of the subpage), else None."""
    name = title.replace("_", " ")
    if not name.startswith("Special:OAuth/"):
        return None
    sub = name.split("/", 1)[1].lower()
    return sub if sub in SUBPAGES else None


def special_oauth(sub: str) -> Response:
    """Answer ``Special:OAuth/<sub>`` for OAuth 1.0a."""
    wiki = get_wiki()
    count(f"oauth1:{sub}")
    if sub in ("authorize", "authenticate"):
        return _authorize(wiki)
    if sub == "identify":
        return _identify(wiki)
    fault = wiki.take_fault("initiate" if sub == "initiate" else "token")
    if fault is not None:
        answer = respond_to_fault(fault)
        if answer is not None:
            return answer
    try:
        if sub == "initiate":
            return _initiate(wiki)
        return _token(wiki)
    except SignatureProblem as problem:
        # MediaWiki's format=raw: every error is HTTP 200 with a body starting "Error: ".
        return Response(f"Error: {problem}", 200, content_type="text/plain; charset=utf-8")


# ---------------------------------------------------------------------------- signatures


def _signed(wiki: DevWiki, *, with_token: bool) -> tuple[DevClient, OAuth1Request]:
    """Check the signature of the current request; the consumer and the parsed request.

    Parameters are read from the query, a form body and the ``Authorization: OAuth`` header,
    as MediaWiki does. The token secret is looked up by the caller through
    :func:`_token_secret` before the signature can be checked.
    """
    try:
        signed = OAuth1Request(request.method, request.url, body=_form(), headers=request.headers)
    except (OAuth1Error, ValueError) as exc:
        raise SignatureProblem(f"The request could not be read: {exc}") from exc
    params = signed.oauth_params
    if params.get("oauth_signature_method") != "HMAC-SHA1":
        raise SignatureProblem("Signature method not supported (only HMAC-SHA1 is).")
    if params.get("oauth_version", "1.0") != "1.0":
        raise SignatureProblem("OAuth version not supported.")
    if not signed.signature or not params.get("oauth_nonce"):
        raise SignatureProblem("Missing required parameter: oauth_signature / oauth_nonce.")
    with wiki.lock:
        client = wiki.clients.get(signed.client_id or "")
    if client is None or client.oauth_version != "1.0a" or client.secret is None:
        raise SignatureProblem("Invalid consumer.")
    token_secret = ""
    if with_token:
        token_secret = _token_secret(wiki, signed.token or "")
    signed.client = _Secret(client.secret)
    signed.credential = _Secret(token_secret) if token_secret else None
    if not verify_hmac_sha1(signed):
        raise SignatureProblem("Invalid signature.")
    _check_timestamp_and_nonce(wiki, client, signed)
    return client, signed


def _form() -> list[tuple[str, str]] | None:
    """A form-encoded body's parameters (signed too); other bodies are not (RFC 5849 §3.4.1.3)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return None
    return list(request.form.items(multi=True))


def _token_secret(wiki: DevWiki, key: str) -> str:
    with wiki.lock:
        pending = wiki.request_tokens.get(key)
        if pending is not None:
            return pending.secret
        secret = wiki.oauth1_secrets.get(key)
    if secret is None:
        raise SignatureProblem("Invalid token.")
    return secret


def _check_timestamp_and_nonce(wiki: DevWiki, client: DevClient, signed: OAuth1Request) -> None:
    try:
        stamp = int(signed.timestamp or "")
    except ValueError:
        raise SignatureProblem("Invalid timestamp.") from None
    with wiki.lock:
        now = wiki.now()
        if abs(now - stamp) > TIMESTAMP_WINDOW:
            raise SignatureProblem(
                f"Expired timestamp, yours {stamp}, ours {int(now)} (allowed ±{TIMESTAMP_WINDOW}s)."
            )
        for old in [k for k, until in wiki.oauth1_nonces.items() if until < now]:
            del wiki.oauth1_nonces[old]
        seen = f"{client.client_id}:{signed.token or ''}:{signed.oauth_params['oauth_nonce']}"
        if seen in wiki.oauth1_nonces:
            raise SignatureProblem("Nonce already used.")
        wiki.oauth1_nonces[seen] = stamp + 2 * TIMESTAMP_WINDOW


# ---------------------------------------------------------------------------- initiate


def _callback_allowed(client: DevClient, callback: str) -> bool:
    """MediaWiki's checkCallback: ``oob``, or with "callback is prefix" a URL that starts
    with the registered one (http may become https, host identical, port identical unless the
    registered one is 1). A consumer registered without a URL takes any loopback URL."""
    if callback == "oob":
        return True
    if not client.callback_is_prefix:
        return False
    if client.redirect_uri is None:
        return is_loopback_url(callback)
    try:
        reg, given = urlsplit(client.redirect_uri), urlsplit(callback)
        reg_port, given_port = reg.port, given.port
    except ValueError:
        return False
    if given.username or given.password:
        return False
    schemes_ok = given.scheme == reg.scheme or (reg.scheme, given.scheme) == ("http", "https")
    port_ok = reg_port == 1 or reg_port == given_port
    if reg.query:
        path_ok = given.path == reg.path and given.query.startswith(reg.query)
    else:
        path_ok = given.path.startswith(reg.path)
    return schemes_ok and given.hostname == reg.hostname and port_ok and path_ok


def _initiate(wiki: DevWiki) -> Response:
    client, signed = _signed(wiki, with_token=False)
    callback = signed.redirect_uri
    if not callback:
        raise SignatureProblem("Missing required parameter: oauth_callback.")
    if not _callback_allowed(client, callback):
        raise SignatureProblem(
            "The callback must be 'oob' unless the consumer was registered with "
            "'callback is prefix' and a matching URL (mwoauth-callback-not-oob)."
        )
    if client.owner_only:
        raise SignatureProblem("Owner-only consumers cannot use this (mwoauth-invalid-consumer).")
    with wiki.lock:
        now = wiki.now()
        for old in [k for k, t in wiki.request_tokens.items() if t.expires < now - 86400]:
            del wiki.request_tokens[old]
        token = RequestToken(
            key=secrets.token_hex(16),
            secret=secrets.token_hex(16),
            client_id=client.client_id,
            callback=callback,
            expires=now + REQUEST_TOKEN_TTL,
        )
        wiki.request_tokens[token.key] = token
    return _form_answer(token.key, token.secret, oauth_callback_confirmed="true")


def _form_answer(key: str, secret: str, **extra: str) -> Response:
    body = urlencode({"oauth_token": key, "oauth_token_secret": secret, **extra})
    return Response(body, 200, content_type="text/plain; charset=utf-8")


# ---------------------------------------------------------------------------- authorize


def _page_error(code: str, text: str) -> Response:
    return html_page(
        "error.html",
        200,
        heading="OAuth authorization error",
        error=code,
        description=text,
        hint=None,
    )


def _authorize(wiki: DevWiki) -> Response:
    """The user's browser: on to the consent page, then back to the consumer's callback (or,
    after Cancel, the wiki's own "cancelled" page: nothing goes back to the consumer)."""
    args = request.args
    key = args.get("oauth_token", "")
    with wiki.lock:
        token = wiki.request_tokens.get(key)
        client = wiki.clients.get(token.client_id) if token is not None else None
    if token is None or client is None or token.expires < wiki.now() or token.used:
        return _page_error(
            "mwoauth-invalid-authorization", "The request token is unknown or has expired."
        )
    if "approval_cancel" in args:
        return html_page(
            "error.html",
            200,
            heading="Authorization cancelled",
            error="mwoauth-acceptance-cancelled",
            description=(
                f"You have chosen not to allow {client.name} to access your account. "
                f"{client.name} will not work unless you allow it access."
            ),
            hint=None,
        )
    username: str | None = None
    if "approval_pass" in args:
        approval = wiki.take_approval(args.get("devwiki_approval", ""))
        if approval is not None and approval.client_id == client.client_id:
            username = approval.user
    if username is None and wiki.auto_approve is not None and wiki.auto_approve in wiki.users:
        username = wiki.auto_approve
    if username is None:
        return _to_consent(client, key)
    with wiki.lock:
        token.user = username
        token.scopes = list(client.grants)
        token.verifier = secrets.token_hex(16)
        verifier = token.verifier
    target = token.callback if token.callback != "oob" else client.redirect_uri
    if target is None:  # oob and no registered URL: MediaWiki's display-only landing page
        return _page_error("mwoauth-verified", f"Your verification code is {verifier}.")
    return redirect(add_query(target, {"oauth_verifier": verifier, "oauth_token": key}))


def _to_consent(client: DevClient, key: str) -> Response:
    """The OAuth 2.0 consent page, told to come back to index.php's Special:OAuth/authorize."""
    back = urlencode(
        {
            "title": "Special:OAuth/authorize",
            "oauth_token": key,
            "oauth_consumer_key": client.client_id,
        }
    )
    query = urlencode(
        [
            ("title", "Special:OAuth/approve"),
            ("returnto", url_for("site.index_php")),
            ("returntoquery", back),
            ("client_id", client.client_id),
            ("oauth_version", "1"),
            ("scope", " ".join(client.grants)),
        ]
    )
    return redirect(url_for("site.index_php") + "?" + query, 307)


# ---------------------------------------------------------------------------- token


def _token(wiki: DevWiki) -> Response:
    client, signed = _signed(wiki, with_token=True)
    verifier = signed.oauth_params.get("oauth_verifier", "")
    with wiki.lock:
        token = wiki.request_tokens.get(signed.token or "")
        if token is None or token.client_id != client.client_id:
            raise SignatureProblem("Invalid request token.")
        if token.used:
            raise SignatureProblem(
                "This request has already been completed and cannot be resubmitted."
            )
        if token.expires < wiki.now():
            raise SignatureProblem("The request token has expired.")
        if token.verifier is None or token.user is None:
            raise SignatureProblem("The request token has not been authorized.")
        if not hmac.compare_digest(verifier.encode(), token.verifier.encode()):
            raise SignatureProblem("Verification code is invalid.")
        token.used = True
        access = AccessToken(
            token=secrets.token_hex(16),
            jti=secrets.token_hex(20),
            client_id=client.client_id,
            user=token.user,
            scopes=list(token.scopes),
            expires=float("inf"),  # OAuth 1.0a access tokens last until revoked
            grant_type=GRANT_TYPE,
        )
        secret = secrets.token_hex(20)
        wiki.access_tokens[access.token] = access
        wiki.oauth1_secrets[access.token] = secret
    return _form_answer(access.token, secret)


# ---------------------------------------------------------------------------- access


def signed_access(wiki: DevWiki) -> AccessToken:
    """The live access token of a signed request (identify, api.php); SignatureProblem else."""
    _client, signed = _signed(wiki, with_token=True)
    with wiki.lock:
        access = wiki.access_tokens.get(signed.token or "")
        if access is None or access.grant_type != GRANT_TYPE:
            raise SignatureProblem("Invalid access token.")
        if access.client_id != signed.client_id:
            raise SignatureProblem("The access token was issued to another consumer.")
        if access.revoked or (access.user is not None and access.user not in wiki.users):
            raise SignatureProblem(
                "The access token has been revoked (mwoauth-invalid-authorization)."
            )
        return access


def _identify(wiki: DevWiki) -> Response:
    fault = wiki.take_fault("identify")
    jwt_fault = fault.kind if fault is not None and fault.kind.startswith("jwt-") else None
    if fault is not None and jwt_fault is None:
        answer = respond_to_fault(fault)
        if answer is not None:
            return answer
    try:
        access = signed_access(wiki)
    except SignatureProblem as problem:
        # identify is forced to the json format: errors are HTTP 200 JSON (EXT showError).
        return json_response({"error": "mwoauth-oauth-exception", "message": str(problem)})
    with wiki.lock:
        client = wiki.clients[access.client_id]
        profile = user_profile(wiki, access, all_rights=True)
        now = int(wiki.now())
    assert client.secret is not None
    claims: dict[str, Any] = {
        "iss": request.host_url.rstrip("/"),
        "sub": profile.get("sub"),
        "aud": client.client_id,
        "exp": now + IDENTIFY_TTL,
        "iat": now,
        "nonce": request_nonce(),
    }
    claims.update({k: v for k, v in profile.items() if k != "sub"})
    if "grants" in claims:  # a PHP array with holes: a JSON object, as 1.39 really sends
        claims["grants"] = gapped(list(claims["grants"]))
    return Response(
        _sign_jwt(claims, client.secret, jwt_fault), 200, content_type="application/json"
    )


def request_nonce() -> str:
    header = request.headers.get("Authorization", "")
    signed = OAuth1Request(
        request.method, request.url, body=_form(), headers={"Authorization": header}
    )
    return str(signed.oauth_params.get("oauth_nonce", ""))


def _b64json(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _sign_jwt(claims: dict[str, Any], secret: str, fault: str | None) -> str:
    """The JWT, HS256 with the consumer secret; or broken the way an injected fault says."""
    claims = dict(claims)
    key, alg = secret, "HS256"
    if fault == "jwt-aud":
        claims["aud"] = "someone-else-0123456789abcdef0123"
    elif fault == "jwt-iss":
        claims["iss"] = "https://evil.example"
    elif fault == "jwt-nonce":
        claims["nonce"] = secrets.token_hex(16)
    elif fault == "jwt-expired":
        claims["iat"] -= 3600
        claims["exp"] = claims["iat"] + IDENTIFY_TTL
    elif fault == "jwt-future":
        claims["iat"] += 3600
        claims["exp"] = claims["iat"] + IDENTIFY_TTL
    elif fault == "jwt-signature":
        key = secrets.token_hex(20)
    elif fault == "jwt-alg-none":
        return f"{_b64json({'typ': 'JWT', 'alg': 'none'})}.{_b64json(claims)}."
    elif fault == "jwt-alg-hs512":
        alg = "HS512"
    return jwt.encode({"typ": "JWT", "alg": alg}, claims, OctKey.import_key(key), algorithms=[alg])
