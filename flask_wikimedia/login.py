"""The current request's login: load the record, refresh tokens shortly before they expire,
re-read the profile when it is older than ``WIKIMEDIA_PROFILE_MAX_AGE``, start and end logins.

Refreshes and profile re-reads are single-flight across threads, processes and hosts: the first
request takes a short Redis lock, re-reads the record (someone may have just refreshed it) and
does the work; the others wait for the new version, or for the news that the wiki is down. Writes
are compare-and-set, so neither an old token nor a logged-out record can be written back (DESIGN
invariants 3, 4, 8). Tokens live only in the login record, never in the session, so Flask's
whole-session write-back cannot undo a refresh either.

Wikimedia rotates refresh tokens and revokes the old access token at once (protocol §2.4): a lost
update would be a logout, and on a strict server (MediaWiki before the grace period, 1.39) two
refreshes with one refresh token would be one too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from flask import current_app, g, session
from werkzeug.local import LocalProxy

from . import oauth1_login, signals
from .errors import StoreUnavailable, WikiBadResponse, WikiUnavailable
from .failures import wiki_trouble
from .oauth import TokenRejected, TokenSet, WikiRefused
from .state import WikimediaState, current_state
from .store import LoginRecord, Stored, new_reference
from .user import HiddenUser, ProfileError, WikimediaUser

log = logging.getLogger("flask_wikimedia.login")

REF_KEY = "_wikimedia_ref"
#: Refresh this many seconds before the access token expires (security catalogue RT-5).
REFRESH_MARGIN = 60.0
#: Added to the worst case of the two wiki calls a lock holder makes (token, then profile).
LOCK_SLACK = 5.0
#: How many times a compare-and-set write is retried against a record that keeps changing.
CAS_ATTEMPTS = 5

_G_LOGIN = "_wikimedia_login"
_G_ENDED = "_wikimedia_login_ended"
_G_FRESH = "_wikimedia_login_fresh"
_G_BROKEN = "_wikimedia_login_broken"


@dataclass(frozen=True)
class CurrentLogin:
    """The current request's login. ``record`` holds tokens: never render or log it."""

    ref: str
    stored: Stored
    user: WikimediaUser

    @property
    def record(self) -> LoginRecord:
        return self.stored.record


class LoginEnded(Exception):
    """The login went away while we worked.

    ``reason`` is set when this request ended it (refresh refused, token rejected, policy,
    hidden account) and deleted the record; it is None when someone else did (a logout).
    """

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "the login record is gone")
        self.reason = reason


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
            stored = st.store.get(ref)
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


def login_just_ended() -> bool:
    """True if this request found the login dead (refresh refused, user blocked by policy)."""
    return bool(g.get(_G_ENDED, False))


def _forget(ref: str, stored: Stored, ended: LoginEnded) -> None:
    """This request found the login ended: empty the session's reference and say so."""
    session.pop(REF_KEY, None)
    setattr(g, _G_ENDED, True)
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


def _needs_tokens(record: LoginRecord, now: float) -> bool:
    return record.expires_at - now < REFRESH_MARGIN


def _needs_profile(st: WikimediaState, record: LoginRecord, now: float) -> bool:
    return now - record.profile_at >= st.profile_max_age


def _satisfied(st: WikimediaState, record: LoginRecord, fresh_since: float | None) -> bool:
    now = time.time()
    return (
        not _needs_tokens(record, now)
        and not _needs_profile(st, record, now)
        and (fresh_since is None or record.profile_at >= fresh_since)
    )


def lock_ttl(st: WikimediaState) -> float:
    """How long a refresh lock lives: longer than the holder's two wiki calls can take, so a
    slow wiki cannot let a second request in (and a second refresh out) mid-refresh."""
    # connect + read is each call's *total* deadline (outbound.CallDeadline: connect, status
    # line, headers and body together, enforced by a watchdog), so two calls end within
    # 2 * (connect + read) whatever the wiki trickles, and the TTL is strictly longer than that
    # (pinned by test_outbound_calls.py::test_refresh_lock_outlives_the_holders_two_calls).
    connect, read = st.oauth.timeout
    return 2 * (connect + read) + LOCK_SLACK


def _ensure_fresh(
    st: WikimediaState, ref: str, stored: Stored, fresh_since: float | None
) -> CurrentLogin:
    if _satisfied(st, stored.record, fresh_since):
        return CurrentLogin(ref, stored, _user_of(stored.record))
    return _single_flight(
        st,
        ref,
        stored.failures,
        done=lambda record: _satisfied(st, record, fresh_since),
        work=lambda current: _update(st, ref, current, fresh_since),
    )


def _user_of(record: LoginRecord) -> WikimediaUser:
    try:
        return record.user()
    except ProfileError as exc:  # only if someone changed the code's idea of a profile
        raise LoginEnded("unreadable") from exc


def _single_flight(
    st: WikimediaState,
    ref: str,
    failures: int,
    *,
    done: Callable[[LoginRecord], bool],
    work: Callable[[Stored], CurrentLogin],
) -> CurrentLogin:
    """Run ``work`` on the freshest record under the lock, unless ``done`` says another request
    already did it. Waiters re-read the record until it is done, the wiki failed for the lock
    holder (``failures``, as this request first read it, went up: one failure answers everyone
    waiting), or the lock's lifetime has passed."""
    ttl = lock_ttl(st)
    deadline = time.monotonic() + ttl
    delay = 0.01
    while True:
        token = st.store.acquire_lock(ref, ttl)
        if token is not None:
            try:
                # Re-read under the lock: whoever held it before us may have done the work.
                current = st.store.get(ref)
                if current is None:
                    raise LoginEnded()
                if done(current.record):
                    return CurrentLogin(ref, current, _user_of(current.record))
                try:
                    return work(current)
                except (WikiUnavailable, WikiBadResponse):
                    st.store.note_failure(ref)
                    raise
            finally:
                st.store.release_lock(ref, token)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        current = st.store.get(ref)
        if current is None:
            raise LoginEnded()
        if done(current.record):
            return CurrentLogin(ref, current, _user_of(current.record))
        if current.failures != failures:
            raise WikiUnavailable()
        if time.monotonic() > deadline:
            raise WikiUnavailable("Your login is being refreshed; please try again in a moment.")


def _update(
    st: WikimediaState, ref: str, current: Stored, fresh_since: float | None
) -> CurrentLogin:
    """Under the lock: refresh the tokens and/or re-read the profile, as the record needs."""
    wiki_url = st.wiki_base()
    refreshed = False
    if _needs_tokens(current.record, time.time()):
        current = _refresh_tokens(st, ref, current, wiki_url)
        refreshed = True
    if fresh_since is not None or _needs_profile(st, current.record, time.time()):
        try:
            profile = _profile(st, wiki_url, current.record)
        except TokenRejected:
            if refreshed or current.record.refresh_token is None:
                _end(st, ref, "token_rejected")
            # The token died before its time (the user revoked and re-granted the app, or the
            # wiki was restored from a backup): one refresh, then one more try.
            current = _refresh_tokens(st, ref, current, wiki_url)
            refreshed = True
            try:
                profile = _profile(st, wiki_url, current.record)
            except TokenRejected:
                _end(st, ref, "token_rejected")
        user = _user_from_profile(st, ref, profile)
        refusal = st.check_policies(user)
        if refusal is not None:
            log.info("login ended by a login policy: %s", refusal)
            _end(st, ref, "policy")
        profile_fields = user.to_profile()
        profile_at = time.time()
        current = _write(
            st,
            ref,
            current,
            lambda record: replace(record, profile=profile_fields, profile_at=profile_at),
        )
    login = CurrentLogin(ref, current, _user_of(current.record))
    if refreshed:
        _send_refreshed(login)
    return login


def _send_refreshed(login: CurrentLogin) -> None:
    signals.token_refreshed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user=login.user,
    )


def _profile(st: WikimediaState, wiki_url: str, record: LoginRecord) -> dict[str, Any]:
    with wiki_trouble("a profile re-read"):
        if record.oauth_version == oauth1_login.VERSION:
            return oauth1_login.identify(st, wiki_url, record)
        return st.oauth.profile(wiki_url, record.access_token)


def _user_from_profile(st: WikimediaState, ref: str, profile: dict[str, Any]) -> WikimediaUser:
    try:
        return WikimediaUser.from_profile(profile)
    except HiddenUser:
        _end(st, ref, "hidden")
        raise  # unreachable: _end raises
    except ProfileError as exc:
        raise WikiBadResponse(f"The wiki sent an unusable profile: {exc}.") from exc


def _refresh_tokens(st: WikimediaState, ref: str, current: Stored, wiki_url: str) -> Stored:
    """Refresh with the record's refresh token and store the new pair at once (the old refresh
    token and access token are dead at the wiki from this moment)."""
    record = current.record
    if record.refresh_token is None:
        # OAuth 1.0a tokens never expire: if one needs replacing, the wiki refused it.
        _end(st, ref, "token_rejected" if record.oauth_version == "1.0a" else "expired")
    assert record.refresh_token is not None
    try:
        with wiki_trouble("a token refresh"):
            tokens = st.oauth.refresh(wiki_url, record.refresh_token)
    except WikiRefused as exc:
        latest = st.store.get(ref)
        if latest is not None and latest.record.refresh_token != record.refresh_token:
            # Someone refreshed meanwhile (only possible if our lock outlived its TTL): on a
            # strict server our reuse of the old refresh token is refused. A race, not a logout.
            return latest
        if exc.error == "invalid_client":
            log.warning(
                "the wiki refused this consumer at refresh (invalid_client): check "
                "WIKIMEDIA_CLIENT_ID and WIKIMEDIA_CLIENT_SECRET (MediaWiki before 1.46 needs "
                "the secret even for public clients, T323855)"
            )
        log.info("refresh refused by the wiki (%s); logging the user out", exc.error)
        _end(st, ref, "refresh_refused")
    return _write(st, ref, current, lambda latest: _with_tokens(latest, tokens))


def _write(
    st: WikimediaState, ref: str, current: Stored, change: Callable[[LoginRecord], LoginRecord]
) -> Stored:
    """Compare-and-set ``change(record)``; if the record moved on meanwhile, apply the change
    to the newer version instead (our fields are ours: new tokens, or a fresh profile). A
    deleted record (logged out meanwhile) stays deleted."""
    for _ in range(CAS_ATTEMPTS):
        written = st.store.replace(ref, current.version, change(current.record))
        if written is not None:
            return written
        latest = st.store.get(ref)
        if latest is None:
            raise LoginEnded()
        current = latest
    raise WikiUnavailable("Your login is being updated elsewhere; please try again.")


def _with_tokens(record: LoginRecord, tokens: TokenSet) -> LoginRecord:
    return replace(
        record,
        access_token=tokens.access_token,
        # Keep the old refresh token if the answer had none (RFC 6749 §6; catalogue RT-1).
        refresh_token=tokens.refresh_token or record.refresh_token,
        expires_at=tokens.expires_at,
    )


def _end(st: WikimediaState, ref: str, reason: str) -> None:
    st.store.delete(ref)
    log.info("login ended: %s", reason)
    raise LoginEnded(reason)


def _regenerate_session() -> None:
    """New session id (Flask-Session) and empty contents: no fixation across a login change."""
    interface = current_app.session_interface
    regenerate = getattr(interface, "regenerate", None)
    if callable(regenerate):
        regenerate(session)
    session.clear()


def _reset_request_state() -> None:
    for name in (_G_ENDED, _G_FRESH, _G_BROKEN):
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
    ref = new_reference()
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

    def work(current: Stored) -> CurrentLogin:
        written = _refresh_tokens(st, seen.ref, current, st.wiki_base())
        login = CurrentLogin(seen.ref, written, _user_of(written.record))
        if written.record.access_token != stale:
            _send_refreshed(login)
        return login

    try:
        login = _single_flight(
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
    if _needs_tokens(login.record, time.time()):
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
