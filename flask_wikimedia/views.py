"""The ``wikimedia`` blueprint: ``GET /login``, ``GET /callback``, ``POST /logout``."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time

from flask import Blueprint, current_app, redirect, request, session, url_for
from werkzeug.wrappers import Response

from . import oauth1_login, pages, pending, signals
from .errors import (
    LoginDeclined,
    LoginFailed,
    LoginRefused,
    LogoutFailed,
    WikiBadResponse,
    WikimediaError,
    WikiUnavailable,
    wants_json,
)
from .failures import WikiHTTPError, http_error
from .login import end_login, start_login
from .oauth import TokenRejected, WikiRefused, new_code_verifier
from .oauth1 import IdentityRejected
from .redirects import safe_next
from .state import get_state
from .user import HiddenUser, ProfileError, WikimediaUser

log = logging.getLogger("flask_wikimedia.views")

bp = Blueprint("wikimedia", __name__, template_folder="templates", static_folder="static")
pages.register(bp)

CSRF_KEY = "_wikimedia_csrf"
#: The failed login that ``/failed`` shows (set by the callback, cleared by the next login).
FAILURE_KEY = "_wikimedia_failure"
# MediaWiki answers Cancel with error=unauthorized_client and no state (protocol §4.2); a
# standards-following server would say access_denied.
_DECLINED = {"unauthorized_client", "access_denied"}
# A central user id as MediaWiki's CentralIdLookup gives it: a positive decimal integer.
_CENTRAL_ID = re.compile(r"[1-9][0-9]{0,19}")


def _pending_place() -> tuple[str, str, bool]:
    st = get_state(current_app)
    # Per mount point: a tool mounted at /a gets its own cookie (by path on http, by name
    # on https, where it is a __Host- cookie), and a neighbour at /b never sees it.
    secure = request.is_secure or bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    name, path = pending.place(request.script_root + st.url_prefix, secure)
    return name, path, secure


def _get_pending() -> list[pending.PendingLogin]:
    name = _pending_place()[0]
    return pending.read(get_state(current_app).pending_sealer, request.cookies.get(name), name)


def _set_pending(response: Response, items: list[pending.PendingLogin]) -> None:
    st = get_state(current_app)
    name, path, secure = _pending_place()
    if not items:
        response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="Lax")
        return
    response.set_cookie(
        name,
        pending.write(st.pending_sealer, items, name),
        max_age=pending.PENDING_TTL,
        path=path,
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


@bp.get("/login")
def login() -> Response:
    """Start a login: a fresh state and PKCE verifier, then off to the wiki's consent page."""
    st = get_state(current_app)
    # An over-long next would overflow the cookie: the default instead (pending.MAX_NEXT).
    nxt = pending.bounded_next(
        safe_next(request.args.get("next"), st.default_next(), request.script_root),
        st.default_next(),
    )
    items = _get_pending()
    session.pop(FAILURE_KEY, None)
    if st.oauth_version == oauth1_login.VERSION:
        url, entry = oauth1_login.begin(st, nxt)
        return _to_wiki(url, [*items, entry])
    entry = pending.PendingLogin(
        state=secrets.token_urlsafe(32),
        code_verifier=new_code_verifier(),
        next=nxt,
        redirect_uri=st.redirect_uri(),
        created_at=time.time(),
    )
    url = st.oauth.authorization_url(
        st.browser_wiki_base(),
        redirect_uri=entry.redirect_uri,
        state=entry.state,
        code_verifier=entry.code_verifier,
    )
    return _to_wiki(url, [*items, entry])


def _to_wiki(url: str, items: list[pending.PendingLogin]) -> Response:
    response = redirect(url)
    response.headers["Cache-Control"] = "no-store"
    _set_pending(response, items)
    return response


# Reasons that point at an attack or a broken client rather than at the user or the wiki:
# logged as warnings, so that they can be told apart from people pressing Cancel.
_SUSPICIOUS = {"state", "code", "identity"}


def _fail(
    error: WikimediaError,
    reason: str,
    items: list[pending.PendingLogin],
    *,
    in_place: bool = False,
) -> Response:
    """Send ``login_failed`` and answer with the error page, keeping other tabs' pending logins.

    A person whose browser came back from the wiki (a top-level navigation, as every current
    browser labels it with ``Sec-Fetch-Mode: navigate``) and whose login was declined, refused
    or hit a failing wiki is redirected to ``/failed``, off the URL with the code. A callback
    that is not the answer to this browser's login (bad state, replay: ``in_place`` or a
    suspicious reason), and any other client (scripts, test clients, JSON), gets its page in
    place. The header only chooses between two equally safe answers (invariant 12).
    The log line says why, never what was sent: no code, state or description from the query.
    """
    log.log(
        logging.WARNING if reason in _SUSPICIOUS else logging.INFO,
        "login callback refused (%s): %s",
        reason,
        type(error).__name__,
    )
    signals.login_failed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        reason=reason,
        description=error.description or "",
    )
    navigating = request.headers.get("Sec-Fetch-Mode") == "navigate"
    if in_place or reason in _SUSPICIOUS or wants_json() or not navigating:
        response = error.get_response()
        assert isinstance(response, Response)
    else:
        # A person gets the page at a clean URL: the code and state leave the address bar (no
        # reload replays them, no bookmark or shared link carries them). The page itself is
        # kept in the session; only the error's class, message key and texts are stored.
        session[FAILURE_KEY] = {
            "kind": type(error).__name__,
            "message": error.message,
            "params": list(error.params),
            "description": error.description or "",
        }
        response = redirect(url_for("wikimedia.failed"), 303)
        response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    _set_pending(response, items)
    return response


# What /failed may rebuild from the session: the errors the callback raises, nothing else.
_FAILURES: dict[str, type[WikimediaError]] = {
    cls.__name__: cls
    for cls in (LoginFailed, LoginDeclined, LoginRefused, WikiBadResponse, WikiUnavailable)
}


@bp.get("/failed")
def failed() -> Response:
    """The page of the login that just failed, at a URL that carries no code or state.

    It stays readable on reload until the next login starts; opened with nothing to show, it
    is a plain "login failed" page that offers to start again.
    """
    stored = session.get(FAILURE_KEY)
    error: WikimediaError = LoginFailed(message="wikimedia-login-failed-gone")
    if isinstance(stored, dict) and stored.get("kind") in _FAILURES:
        cls = _FAILURES[stored["kind"]]
        if isinstance(stored.get("message"), str):
            params = tuple(str(p) for p in stored.get("params") or ())
            error = cls(message=stored["message"], params=params)
        else:
            error = cls(str(stored.get("description") or "") or None)
    response = error.get_response()
    assert isinstance(response, Response)
    return response


@bp.get("/callback")
def callback() -> Response:
    """Finish a login: check state, exchange the code, read the profile, store the record."""
    st = get_state(current_app)
    items = _get_pending()
    # OAuth 1.0a answers with oauth_token (the request token, our state) and oauth_verifier.
    version1 = oauth1_login.is_callback(request.args)
    state_name, code_name = ("oauth_token", "oauth_verifier") if version1 else ("state", "code")
    kind = oauth1_login.VERSION if version1 else "2.0"
    if any(len(request.args.getlist(k)) > 1 for k in (state_name, code_name, "error")):
        # Parameter pollution: never guess which value was meant.
        return _fail(LoginFailed(message="wikimedia-login-failed-malformed"), "state", items)
    # "state" in this module is OAuth's state parameter; the extension's per-app state is ``st``.
    oauth_state = request.args.get(state_name, "")
    # Bytes: compare_digest refuses str with non-ASCII characters (a 500 for state=%C3%A9).
    wanted = oauth_state.encode()
    entry = next(
        (
            p
            for p in items
            if oauth_state
            and p.oauth_version == kind
            and hmac.compare_digest(p.state.encode(), wanted)
        ),
        None,
    )
    others = [p for p in items if p is not entry]
    error = request.args.get("error")
    if error is not None:
        if error in _DECLINED:
            return _fail(LoginDeclined(), "declined", others if entry else items)
        log.info("the wiki answered the login with error %r", error[:100])
        if entry is None:
            # Not the answer to a login this browser started, so possibly somebody's link:
            # show none of its text (content injection, catalogue PE-2).
            return _fail(
                LoginFailed(message="wikimedia-login-failed-wiki-refused"),
                "wiki_refused",
                items,
                in_place=True,
            )
        text = request.args.get("error_description") or request.args.get("message") or error
        return _fail(
            LoginFailed(message="wikimedia-login-failed-wiki-said", params=(text[:300],)),
            "wiki_refused",
            others,
        )
    if not oauth_state:
        return _fail(
            LoginFailed(message="wikimedia-login-failed-no-state"),
            "state",
            items,
        )
    if entry is None:
        return _fail(
            LoginFailed(message="wikimedia-login-failed-unknown-state"),
            "state",
            items,
        )
    code = request.args.get(code_name, "")
    if not code or len(code) > 8192:
        return _fail(LoginFailed(message="wikimedia-login-failed-no-code"), "code", others)
    digest = hashlib.sha256(entry.state.encode()).hexdigest()
    if not st.store.claim_once(f"state:{digest}", pending.PENDING_TTL):
        return _fail(
            LoginFailed(message="wikimedia-login-failed-used"),
            "state",
            others,
        )
    access_secret: str | None = None
    try:
        if version1:
            tokens, access_secret, profile = oauth1_login.exchange(st, entry, code)
        else:
            tokens = st.oauth.exchange_code(
                st.wiki_base(),
                code=code,
                redirect_uri=entry.redirect_uri,
                code_verifier=entry.code_verifier,
            )
            profile = st.oauth.profile(st.wiki_base(), tokens.access_token)
        user = WikimediaUser.from_profile(profile)
    except IdentityRejected as exc:
        # Not this wiki's statement about this request (signature, aud, iss, nonce, time).
        log.warning("the OAuth 1.0a identify answer did not verify: %s", exc)
        return _fail(
            LoginFailed(message="wikimedia-login-failed-identity"),
            "identity",
            others,
        )
    except WikiRefused as exc:
        if exc.error == "invalid_client":
            # Not the user's fault and not the wiki's: this tool's consumer key or secret is
            # wrong (or the consumer was disabled). The operator must hear about it.
            log.error(
                "the wiki refused this tool's credentials (invalid_client): check "
                "WIKIMEDIA_CLIENT_ID and WIKIMEDIA_CLIENT_SECRET"
            )
        else:
            log.info("code exchange refused by the wiki: %r", str(exc.error)[:100])
        return _fail(
            LoginFailed(message="wikimedia-login-failed-exchange"),
            "wiki_refused",
            others,
        )
    except HiddenUser:
        return _fail(LoginRefused(message="wikimedia-refused-hidden"), "refused", others)
    except TokenRejected:
        # The token the wiki issued a moment ago is refused by the same wiki.
        log.warning("the wiki refused its own new access token during login")
        return _fail(WikiBadResponse(), "wiki_bad_response", others)
    except ProfileError as exc:
        log.warning("unusable profile from the wiki during login: %s", exc)
        return _fail(WikiBadResponse(), "wiki_bad_response", others)
    except WikiHTTPError as exc:
        failure = http_error(exc, "login")
        if isinstance(failure, WikiUnavailable):  # the login did not finish: say so
            failure = WikiUnavailable(message="wikimedia-wiki-unavailable-login")
        return _fail(failure, failure.reason, others)
    if _CENTRAL_ID.fullmatch(user.sub) is None:
        # MediaWiki sends "0" for an account without a central (global) id: identity is keyed
        # on the id, so such an account, or a non-numeric id, cannot log in (catalogue SF-4).
        log.warning("the wiki's profile has no usable central user id; login refused")
        return _fail(
            LoginRefused(message="wikimedia-refused-no-central-id"),
            "refused",
            others,
        )
    refusal = st.check_policies(user)
    if refusal is not None:
        refused = LoginRefused(refusal.text, message=refusal.message, params=refusal.params)
        return _fail(refused, "policy", others)
    start_login(user, tokens, oauth_version=kind, access_secret=access_secret)
    signals.logged_in.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]
    # 303 to a clean URL: the code and state leave the address bar and never reach a Referer.
    response = redirect(entry.next, 303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    _set_pending(response, others)
    return response


def csrf_token() -> str:
    """The token the logout form carries (Flask-WTF's when CSRFProtect is on the app)."""
    if "csrf" in current_app.extensions:
        # optional: Flask-WTF is only installed (and only used) when the app turned it on.
        from flask_wtf.csrf import generate_csrf

        return str(generate_csrf())
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    if "csrf" in current_app.extensions:
        # optional: Flask-WTF is only installed (and only used) when the app turned it on.
        from flask_wtf.csrf import ValidationError, validate_csrf

        try:
            validate_csrf(sent)
        except ValidationError:
            return False
        return True
    expected = session.get(CSRF_KEY)
    return (
        isinstance(expected, str)
        and bool(sent)
        and hmac.compare_digest(expected.encode(), sent.encode())
    )


@bp.post("/logout")
def logout() -> Response:
    """Log out: delete the login record and the session. CSRF-protected POST only."""
    st = get_state(current_app)
    if not _csrf_ok():
        raise LogoutFailed()
    user = end_login()
    signals.logged_out.send(current_app._get_current_object(), user=user, reason="logout")  # type: ignore[attr-defined]
    target = safe_next(request.form.get("next"), st.default_next(), request.script_root)
    response = redirect(target, 303)
    response.headers["Cache-Control"] = "no-store"
    return response
