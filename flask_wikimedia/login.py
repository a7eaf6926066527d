"""The current request's login: load the record (kept fresh by ``refresh``), start and end
logins, ``current_user``.

The login record (tokens, profile) lives in the login store, reached from the session by an
opaque reference (``REF_KEY``); the session id rotates at every login change. Tokens never enter
the session, so Flask's whole-session write-back cannot undo a refresh (DESIGN invariant 4).
"""

from __future__ import annotations

import logging
import time
from typing import cast

from flask import current_app, g, session
from werkzeug.local import LocalProxy

from . import signals
from .errors import StoreUnavailable, WikiBadResponse, WikiUnavailable
from .oauth import TokenSet
from .refresh import (
    CurrentLogin,
    LoginEnded,
    needs_tokens,
    refresh_tokens,
    send_refreshed,
    single_flight,
    user_of,
)
from .refresh import ensure_fresh as _ensure_fresh
from .sessions import SafeRedisSession
from .state import WikimediaState, current_state
from .store import LoginRecord, VersionedRecord, new_reference, session_reference
from .user import ProfileError, WikimediaUser

__all__ = [
    "REF_KEY",
    "CurrentLogin",
    "LoginEnded",
    "current_login",
    "current_user",
    "end_login",
    "force_refresh",
    "start_login",
    "usable_login",
]

log = logging.getLogger("flask_wikimedia.login")

REF_KEY = "_wikimedia_ref"
_G_LOGIN = "_wikimedia_login"
_G_FRESH = "_wikimedia_login_fresh"
_G_BROKEN = "_wikimedia_login_broken"


def state() -> WikimediaState:
    """The extension's state on the current app."""
    return current_state()


def current_login(*, fresh: bool = False) -> CurrentLogin | None:
    """The login of the current request, refreshed as needed; None when logged out.

    ``fresh=True`` re-reads the profile from the wiki now, whatever its age (for sensitive
    routes; once per request). Raises WikiUnavailable/WikiBadResponse when the wiki cannot
    refresh a token or profile that needs it (the login is kept), StoreUnavailable when Redis
    is in trouble. After such a failure the rest of the request (the error page's template,
    say) sees nobody logged in rather than calling the failing wiki again.
    """
    if g.get(_G_BROKEN, False):
        return None
    if _G_LOGIN in g:
        cached: CurrentLogin | None = g.get(_G_LOGIN)
        if cached is None or not fresh or g.get(_G_FRESH, False):
            return cached
    st = state()
    ref = session.get(REF_KEY)
    result: CurrentLogin | None = None
    try:
        if isinstance(ref, str) and ref:
            # Our session interface may have read the record already, in its round trip.
            take = getattr(session, "take_prefetched", None)
            stored = st.store.get(ref, take() if take is not None else None)
            if stored is None:
                session.pop(REF_KEY, None)
            else:
                fresh_since = time.time() if fresh else None
                try:
                    result = _ensure_fresh(st, ref, stored, fresh_since)
                except LoginEnded as ended:
                    _forget(ref, stored, ended)
                    return None
                if fresh:
                    setattr(g, _G_FRESH, True)
    except (WikiUnavailable, WikiBadResponse, StoreUnavailable):
        setattr(g, _G_BROKEN, True)
        raise
    setattr(g, _G_LOGIN, result)
    return result


def _forget(ref: str, stored: VersionedRecord, ended: LoginEnded) -> None:
    """This request found the login ended: empty the session's reference and say so."""
    session.pop(REF_KEY, None)
    setattr(g, _G_LOGIN, None)
    if ended.reason is None:
        return  # ended by someone else (a logout), who already sent logged_out
    state().store.delete(ref)  # (already gone, unless the record itself was unreadable)
    try:
        user: WikimediaUser | None = stored.record.user()
    except ProfileError:
        user = None
    signals.logged_out.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user=user,
        reason=ended.reason,
    )


def _regenerate_session() -> None:
    """New session id (Flask-Session) and empty contents: no fixation across a login change."""
    interface = current_app.session_interface
    regenerate = getattr(interface, "regenerate", None)
    if callable(regenerate):
        regenerate(session)
    session.clear()


def _reset_request_state() -> None:
    for name in (_G_FRESH, _G_BROKEN):
        g.pop(name, None)


def start_login(
    user: WikimediaUser,
    tokens: TokenSet,
    *,
    oauth_version: str = "2.0",
    access_secret: str | None = None,
) -> CurrentLogin:
    """Store a new login record and point a fresh session at it (session id rotates).

    ``oauth_version="1.0a"`` with the access token's ``access_secret`` for an OAuth 1.0a login.
    """
    st = state()
    old = session.get(REF_KEY)
    if isinstance(old, str) and old:
        st.store.delete(old)
    _regenerate_session()
    now = time.time()
    record = LoginRecord(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        profile=user.to_profile(),
        profile_at=now,
        created_at=now,
        oauth_version=oauth_version,
        access_secret=access_secret,
    )
    # On our server-side sessions the login is bound to the (just rotated) session id, so the
    # session interface can read both in one round trip; elsewhere a random reference.
    raw = session._get_current_object()  # type: ignore[attr-defined]
    ref = session_reference(raw.sid) if isinstance(raw, SafeRedisSession) else new_reference()
    stored = st.store.create(ref, record)
    session[REF_KEY] = ref
    login = CurrentLogin(ref, stored, user)
    _reset_request_state()
    setattr(g, _G_LOGIN, login)
    return login


def end_login() -> WikimediaUser | None:
    """Delete the login record (atomically, in one command) and empty the session."""
    st = state()
    user = None
    ref = session.get(REF_KEY)
    if isinstance(ref, str) and ref:
        stored = st.store.get(ref)
        if stored is not None:
            try:
                user = stored.record.user()
            except ProfileError:
                user = None
        st.store.delete(ref)
    _regenerate_session()
    _reset_request_state()
    setattr(g, _G_LOGIN, None)
    return user


def force_refresh(seen: CurrentLogin) -> CurrentLogin | None:
    """Refresh now because the wiki refused ``seen``'s access token; None if the login ended.

    Single-flight like any refresh: if another request already replaced that token (the usual
    case for a request that loaded the record just before someone else refreshed it), its
    tokens are used and the wiki sees no second refresh.
    """
    st = state()
    stale = seen.record.access_token

    def work(current: VersionedRecord) -> CurrentLogin:
        written = refresh_tokens(st, seen.ref, current, st.wiki_base())
        login = CurrentLogin(seen.ref, written, user_of(written.record))
        if written.record.access_token != stale:
            send_refreshed(login)
        return login

    try:
        login = single_flight(
            st,
            seen.ref,
            seen.stored.failures,
            done=lambda record: record.access_token != stale,
            work=work,
        )
    except LoginEnded as ended:
        _forget(seen.ref, seen.stored, ended)
        return None
    setattr(g, _G_LOGIN, login)
    return login


def usable_login(stale_token: str | None = None) -> CurrentLogin | None:
    """The current login with an access token worth sending: refreshed first if it is about to
    expire (a long request may outlive it) or if the wiki just refused ``stale_token``."""
    login = current_login()
    if login is None:
        return None
    if stale_token is not None and login.record.access_token == stale_token:
        return force_refresh(login)
    if needs_tokens(login.record, time.time()):
        try:
            login = _ensure_fresh(state(), login.ref, login.stored, None)
        except LoginEnded as ended:
            _forget(login.ref, login.stored, ended)
            return None
        setattr(g, _G_LOGIN, login)
    return login


def _current_user() -> WikimediaUser | None:
    login = current_login()
    return login.user if login is not None else None


#: The logged-in :class:`WikimediaUser`, or a falsy proxy of ``None`` when logged out:
#: test it with ``if current_user:``. Available in templates too.
current_user = cast("WikimediaUser | None", LocalProxy(_current_user))
