"""Keeping a login fresh: refresh tokens shortly before they expire, re-read the profile when it
is older than ``WIKIMEDIA_PROFILE_MAX_AGE``, and write both back without losing an update.

Refreshes and profile re-reads are single-flight across threads, processes and hosts: the first
request takes a short Redis lock, re-reads the record (someone may have just refreshed it) and
does the work; the others wait for the new version, or for the news that the wiki is down. Writes
are compare-and-set, so neither an old token nor a logged-out record can be written back (DESIGN
invariants 3, 4, 8). Tokens live only in the login record, never in the session, so Flask's
whole-session write-back cannot undo a refresh either.

Wikimedia rotates refresh tokens and revokes the old access token at once (protocol §2.4): a lost
update would be a logout, and on a strict server (MediaWiki before the grace period, 1.39) two
refreshes with one refresh token would be one too.

``login`` (the current request's login) calls in here; nothing here reads the session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app

from . import oauth1_login, signals
from .errors import WikiBadResponse, WikiUnavailable
from .failures import wiki_trouble
from .oauth import TokenRejected, TokenSet, WikiRefused
from .state import WikimediaState
from .store import LoginRecord, Summary, VersionedRecord
from .user import HiddenUser, ProfileError, WikimediaUser

__all__ = [
    "CAS_ATTEMPTS",
    "LOCK_SLACK",
    "REFRESH_MARGIN",
    "CurrentLogin",
    "LoginEnded",
    "ensure_fresh",
    "lock_ttl",
    "needs_tokens",
    "refresh_tokens",
    "send_refreshed",
    "single_flight",
    "user_of",
]

log = logging.getLogger("flask_wikimedia.login")

#: Refresh this many seconds before the access token expires (security catalogue RT-5).
REFRESH_MARGIN = 60.0
#: Added to the worst case of the two wiki calls a lock holder makes (token, then profile).
LOCK_SLACK = 5.0
#: How many times a compare-and-set write is retried against a record that keeps changing.
CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class CurrentLogin:
    """The current request's login. ``record`` holds tokens: never render or log it."""

    ref: str
    stored: VersionedRecord
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


def needs_tokens(record: LoginRecord | Summary, now: float) -> bool:
    return record.expires_at - now < REFRESH_MARGIN


def _needs_profile(st: WikimediaState, record: LoginRecord | Summary, now: float) -> bool:
    return now - record.profile_at >= st.profile_max_age


def _satisfied(
    st: WikimediaState, record: LoginRecord | Summary, fresh_since: float | None
) -> bool:
    now = time.time()
    return (
        not needs_tokens(record, now)
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


def ensure_fresh(
    st: WikimediaState, ref: str, stored: VersionedRecord, fresh_since: float | None
) -> CurrentLogin:
    # The summary (user, deadlines) is all a page needs: no token is decrypted for it.
    try:
        summary = stored.summary
    except ProfileError as exc:  # only if someone changed the code's idea of a profile
        raise LoginEnded("unreadable") from exc
    if _satisfied(st, summary, fresh_since):
        return CurrentLogin(ref, stored, summary.user)
    return single_flight(
        st,
        ref,
        stored.failures,
        done=lambda record: _satisfied(st, record, fresh_since),
        work=lambda current: _update(st, ref, current, fresh_since),
    )


def user_of(record: LoginRecord) -> WikimediaUser:
    try:
        return record.user()
    except ProfileError as exc:  # only if someone changed the code's idea of a profile
        raise LoginEnded("unreadable") from exc


def single_flight(
    st: WikimediaState,
    ref: str,
    failures: int,
    *,
    done: Callable[[LoginRecord], bool],
    work: Callable[[VersionedRecord], CurrentLogin],
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
                # Re-read under the lock: whoever held it before us may have done the work, or
                # failed between our last look and our taking the lock: its failure answers us
                # too (no second try at a failing wiki).
                current = st.store.get(ref)
                settled = _settled(ref, current, failures, done)
                if settled is not None:
                    return settled
                assert current is not None  # _settled ends a deleted login
                try:
                    return work(current)
                except (WikiUnavailable, WikiBadResponse):
                    st.store.note_failure(ref)
                    raise
            finally:
                st.store.release_lock(ref, token)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        settled = _settled(ref, st.store.get(ref), failures, done)
        if settled is not None:
            return settled
        if time.monotonic() > deadline:
            raise WikiUnavailable("Your login is being refreshed; please try again in a moment.")


def _settled(
    ref: str,
    current: VersionedRecord | None,
    failures: int,
    done: Callable[[LoginRecord], bool],
) -> CurrentLogin | None:
    """What another request's work means for this one: the login is gone (``LoginEnded``), the
    work is done (the login), the wiki failed for it (``WikiUnavailable``), or None: not yet."""
    if current is None:
        raise LoginEnded()
    if done(current.record):
        return CurrentLogin(ref, current, user_of(current.record))
    if current.failures != failures:
        raise WikiUnavailable()
    return None


def _update(
    st: WikimediaState, ref: str, current: VersionedRecord, fresh_since: float | None
) -> CurrentLogin:
    """Under the lock: refresh the tokens and/or re-read the profile, as the record needs."""
    wiki_url = st.wiki_base()
    refreshed = False
    if needs_tokens(current.record, time.time()):
        current = refresh_tokens(st, ref, current, wiki_url)
        refreshed = True
    if fresh_since is not None or _needs_profile(st, current.record, time.time()):
        try:
            profile = _profile(st, wiki_url, current.record)
        except TokenRejected:
            if refreshed or current.record.refresh_token is None:
                _end(st, ref, "token_rejected")
            # The token died before its time (the user revoked and re-granted the app, or the
            # wiki was restored from a backup): one refresh, then one more try.
            current = refresh_tokens(st, ref, current, wiki_url)
            refreshed = True
            try:
                profile = _profile(st, wiki_url, current.record)
            except TokenRejected:
                _end(st, ref, "token_rejected")
        user = _user_from_profile(st, ref, profile)
        refusal = st.check_policies(user)
        if refusal is not None:
            log.info("login ended by a login policy: %s", refusal.message or refusal.text)
            _end(st, ref, "policy")
        profile_fields = user.to_profile()
        profile_at = time.time()
        current = _write(
            st,
            ref,
            current,
            lambda record: replace(record, profile=profile_fields, profile_at=profile_at),
        )
    login = CurrentLogin(ref, current, user_of(current.record))
    if refreshed:
        send_refreshed(login)
    return login


def send_refreshed(login: CurrentLogin) -> None:
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


def refresh_tokens(
    st: WikimediaState, ref: str, current: VersionedRecord, wiki_url: str
) -> VersionedRecord:
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
            # Someone refreshed meanwhile (only possible if our lock outlived its TTL or was lost
            # in a failover): on a strict server our reuse of the old refresh token is refused.
            # A race, not a logout.
            return latest
        if exc.error == "invalid_client":
            log.warning(
                "the wiki refused this consumer at refresh (invalid_client): check "
                "WIKIMEDIA_CLIENT_ID and WIKIMEDIA_CLIENT_SECRET (MediaWiki before 1.46 needs "
                "the secret even for public clients, T323855)"
            )
        log.info("refresh refused by the wiki (%s); logging the user out", exc.error)
        _end(st, ref, "refresh_refused")
    # Written by compare-and-set on the version this refresh started from. If the record's
    # tokens changed meanwhile, a second refresh ran beside ours: possible only when our lock
    # was lost (a Sentinel or Cluster failover can drop a lock the old primary had not yet
    # replicated). The first to write wins; this refresh's tokens are dropped (at the wiki they
    # stay valid or die, unused either way), so one login is never written by two refreshes.
    return _write(
        st,
        ref,
        current,
        lambda latest: _with_tokens(latest, tokens),
        keep_if=lambda latest: _tokens_changed(record, latest),
    )


def _tokens_changed(before: LoginRecord, latest: LoginRecord) -> bool:
    return (
        latest.access_token != before.access_token or latest.refresh_token != before.refresh_token
    )


def _write(
    st: WikimediaState,
    ref: str,
    current: VersionedRecord,
    change: Callable[[LoginRecord], LoginRecord],
    *,
    keep_if: Callable[[LoginRecord], bool] | None = None,
) -> VersionedRecord:
    """Compare-and-set ``change(record)``; if the record moved on meanwhile, apply the change
    to the newer version instead (our fields are ours: new tokens, or a fresh profile), unless
    ``keep_if(newer)`` says the newer version must stand as it is. A deleted record (logged out
    meanwhile) stays deleted."""
    for _ in range(CAS_ATTEMPTS):
        written = st.store.replace(ref, current.version, change(current.record))
        if written is not None:
            return written
        latest = st.store.get(ref)
        if latest is None:
            raise LoginEnded()
        if keep_if is not None and keep_if(latest.record):
            log.warning("a second refresh of one login ran (its lock was lost); keeping the first")
            return latest
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
