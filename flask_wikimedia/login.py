"""The current request's login: load the record, refresh tokens shortly before they expire,
re-read the profile when it is older than ``WIKIMEDIA_PROFILE_MAX_AGE``, start and end logins.

Refreshes and profile re-reads are single-flight across threads, processes and hosts: the first
request takes a short Redis lock, re-reads the record (someone may have just refreshed it) and
does the work; the others wait for the new version. Writes are compare-and-set, so neither an
old token nor a logged-out record can be written back (DESIGN invariants 3, 4, 8).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from flask import current_app, g, session

from . import signals
from .errors import WikiBadResponse, WikiUnavailable
from .oauth import TokenRejected, TokenSet, WikiRefused
from .outbound import WikiGarbage, WikiUnreachable
from .store import LoginRecord, Stored, new_reference
from .user import HiddenUser, ProfileError, WikimediaUser

if TYPE_CHECKING:
    from .extension import WikimediaState

log = logging.getLogger("flask_wikimedia.login")

REF_KEY = "_wikimedia_ref"
REFRESH_MARGIN = 60.0  # refresh this many seconds before the access token expires
LOCK_TTL = 15.0  # longer than one token call with default timeouts
LOCK_WAIT = 12.0
_G_LOGIN = "_wikimedia_login"
_G_ENDED = "_wikimedia_login_ended"


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
    """The login went away while we worked (logged out elsewhere, or refresh refused)."""


def state() -> WikimediaState:
    from .extension import get_state

    return get_state(current_app)


def current_login(*, fresh: bool = False) -> CurrentLogin | None:
    """The login of the current request, refreshed as needed; None when logged out.

    ``fresh=True`` re-reads the profile from the wiki now, whatever its age (for sensitive
    routes). Raises WikiUnavailable/WikiBadResponse when the wiki cannot refresh a token or
    profile that needs it (the login is kept), StoreUnavailable when Redis is in trouble.
    """
    cached: CurrentLogin | None = g.get(_G_LOGIN)
    if cached is not None and not fresh:
        return cached
    if cached is None and _G_LOGIN in g and not fresh:
        return None
    st = state()
    ref = session.get(REF_KEY)
    result: CurrentLogin | None = None
    if isinstance(ref, str) and ref:
        stored = st.store.get(ref)
        if stored is None:
            session.pop(REF_KEY, None)
        else:
            try:
                result = _ensure_fresh(st, ref, stored, force_profile=fresh)
            except LoginEnded:
                session.pop(REF_KEY, None)
                setattr(g, _G_ENDED, True)
                result = None
    setattr(g, _G_LOGIN, result)
    return result


def login_just_ended() -> bool:
    """True if this request found the login dead (refresh refused, user blocked by policy)."""
    return bool(g.get(_G_ENDED, False))


def _needs_tokens(record: LoginRecord, now: float) -> bool:
    return record.expires_at - now < REFRESH_MARGIN


def _needs_profile(st: WikimediaState, record: LoginRecord, now: float) -> bool:
    return now - record.profile_at >= st.profile_max_age


def _ensure_fresh(
    st: WikimediaState, ref: str, stored: Stored, *, force_profile: bool
) -> CurrentLogin:
    now = time.time()
    record = stored.record
    if not (force_profile or _needs_tokens(record, now) or _needs_profile(st, record, now)):
        return CurrentLogin(ref, stored, _user_of(record))
    return _update_single_flight(st, ref, stored, force_profile=force_profile)


def _user_of(record: LoginRecord) -> WikimediaUser:
    try:
        return record.user()
    except ProfileError as exc:  # only if someone changed the code's idea of a profile
        raise LoginEnded() from exc


def _update_single_flight(
    st: WikimediaState, ref: str, seen: Stored, *, force_profile: bool
) -> CurrentLogin:
    deadline = time.monotonic() + LOCK_WAIT
    delay = 0.01
    while True:
        token = st.store.acquire_lock(ref, LOCK_TTL)
        if token is not None:
            try:
                current = st.store.get(ref)
                if current is None:
                    raise LoginEnded()
                # Somebody may have refreshed while we waited for the lock.
                if current.version != seen.version:
                    force_profile = False
                return _update(st, ref, current, force_profile=force_profile)
            finally:
                st.store.release_lock(ref, token)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        current = st.store.get(ref)
        if current is None:
            raise LoginEnded()
        now = time.time()
        if current.version != seen.version and not (
            _needs_tokens(current.record, now) or _needs_profile(st, current.record, now)
        ):
            return CurrentLogin(ref, current, _user_of(current.record))
        if time.monotonic() > deadline:
            raise WikiUnavailable("Your login is being refreshed; please try again in a moment.")


def _update(st: WikimediaState, ref: str, current: Stored, *, force_profile: bool) -> CurrentLogin:
    now = time.time()
    record = current.record
    wiki_url = st.wiki_base()
    refreshed = False
    if _needs_tokens(record, now):
        current = _refresh_tokens(st, ref, current, wiki_url)
        record = current.record
        refreshed = True
    if force_profile or _needs_profile(st, record, time.time()):
        try:
            profile = st.oauth.profile(wiki_url, record.access_token)
        except TokenRejected:
            if refreshed or record.refresh_token is None:
                _end(st, ref, "token_rejected")
            # The token died early (the user revoked and re-granted, or a refresh elsewhere
            # raced a lost write): one refresh, then one more try.
            current = _refresh_tokens(st, ref, current, wiki_url)
            record = current.record
            try:
                profile = st.oauth.profile(wiki_url, record.access_token)
            except TokenRejected:
                _end(st, ref, "token_rejected")
        except WikiUnreachable as exc:
            raise WikiUnavailable() from exc
        except WikiGarbage as exc:
            raise WikiBadResponse() from exc
        user = _user_from_profile(st, ref, profile)
        refusal = st.check_policies(user)
        if refusal is not None:
            log.info("login ended by policy: %s", refusal)
            _end(st, ref, "policy")
        new = replace(record, profile=user.to_profile(), profile_at=time.time())
        written = st.store.replace(ref, current.version, new)
        if written is None:
            raise LoginEnded()
        current = written
    user = _user_of(current.record)
    if refreshed:
        signals.token_refreshed.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]
    return CurrentLogin(ref, current, user)


def _user_from_profile(st: WikimediaState, ref: str, profile: dict[str, object]) -> WikimediaUser:
    try:
        return WikimediaUser.from_profile(profile)
    except HiddenUser:
        _end(st, ref, "hidden")
        raise  # unreachable: _end raises
    except ProfileError as exc:
        raise WikiBadResponse(f"The wiki sent an unusable profile: {exc}.") from exc


def _refresh_tokens(st: WikimediaState, ref: str, current: Stored, wiki_url: str) -> Stored:
    record = current.record
    if record.refresh_token is None:
        _end(st, ref, "expired")
    assert record.refresh_token is not None
    try:
        tokens = st.oauth.refresh(wiki_url, record.refresh_token)
    except WikiRefused as exc:
        log.info("refresh refused by the wiki (%s); logging the user out", exc.error)
        _end(st, ref, "refresh_refused")
    except WikiUnreachable as exc:
        raise WikiUnavailable() from exc
    except WikiGarbage as exc:
        raise WikiBadResponse() from exc
    new = _with_tokens(record, tokens)
    # Write at once: the old refresh token and access token are now dead at the wiki.
    written = st.store.replace(ref, current.version, new)
    if written is None:
        raise LoginEnded()
    return written


def _with_tokens(record: LoginRecord, tokens: TokenSet) -> LoginRecord:
    return replace(
        record,
        access_token=tokens.access_token,
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


def start_login(user: WikimediaUser, tokens: TokenSet) -> CurrentLogin:
    """Store a new login record and point a fresh session at it (session id rotates)."""
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
    )
    ref = new_reference()
    stored = st.store.create(ref, record)
    session[REF_KEY] = ref
    login = CurrentLogin(ref, stored, user)
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
    setattr(g, _G_LOGIN, None)
    return user


def force_refresh(seen: CurrentLogin) -> CurrentLogin | None:
    """Refresh now because the wiki refused ``seen``'s access token (single-flight: if another
    request already refreshed, use its tokens). None if the login ended."""
    st = state()
    token = None
    deadline = time.monotonic() + LOCK_WAIT
    while token is None:
        token = st.store.acquire_lock(seen.ref, LOCK_TTL)
        if token is None:
            if time.monotonic() > deadline:
                raise WikiUnavailable("Your login is being refreshed; try again in a moment.")
            time.sleep(0.02)
    try:
        current = st.store.get(seen.ref)
        if current is None:
            return None
        if current.record.access_token == seen.record.access_token:
            try:
                current = _refresh_tokens(st, seen.ref, current, st.wiki_base())
            except LoginEnded:
                session.pop(REF_KEY, None)
                setattr(g, _G_LOGIN, None)
                return None
        login = CurrentLogin(seen.ref, current, _user_of(current.record))
        setattr(g, _G_LOGIN, login)
        return login
    finally:
        st.store.release_lock(seen.ref, token)
