"""OAuth 1.0a logins: the steps of /login and /callback, the profile re-read and the API
credentials of a login record made with the OAuth 1.0a consumer.

The views, the login-record code and the API sessions call these at the one place where the
two OAuth versions differ; everything else (pending-login cookie, single use, session
rotation, login records, policies, pages) is shared with OAuth 2.0. The version is stored per
pending login and per login record, so a tool moving from 1.0a to 2.0 keeps its 1.0a users
logged in (docs/migrate.md).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any

from .errors import LoginFailed, WikiBadResponse
from .failures import WikiHTTPError, http_error
from .oauth import TokenRejected, TokenSet, WikiRefused
from .oauth1 import OAuth1Client, OAuth1Credentials, TokenPair
from .pending import PendingLogin

if TYPE_CHECKING:
    from .state import WikimediaState
    from .store import LoginRecord

log = logging.getLogger("flask_wikimedia.oauth1")

VERSION = "1.0a"
#: A request token must fit the pending cookie's state rules (MediaWiki's are 32 hex digits).
_REQUEST_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")


def is_callback(args: Any) -> bool:
    """Does this callback query answer an OAuth 1.0a login (``oauth_token``/``oauth_verifier``)?"""
    return "oauth_token" in args or "oauth_verifier" in args


def _client(st: WikimediaState) -> OAuth1Client:
    if st.oauth1 is None:  # init_app builds one whenever the version is 1.0a
        raise LoginFailed(message="wikimedia-login-failed-no-consumer")
    return st.oauth1


def begin(st: WikimediaState, nxt: str) -> tuple[str, PendingLogin]:
    """Get a request token (a signed call to ``Special:OAuth/initiate``); the URL to send the
    browser to and the pending entry that binds the token to this browser.

    Raises the error pages directly: a refusal is about this tool's consumer, never the user.
    """
    client = _client(st)
    callback = st.redirect_uri()
    try:
        token = client.initiate(st.wiki_base(), callback)
    except WikiRefused as exc:
        log.error(
            "the wiki refused to start an OAuth 1.0a login (%s): check WIKIMEDIA_CLIENT_ID, "
            "WIKIMEDIA_CLIENT_SECRET and WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX",
            exc.description[:200],
        )
        raise LoginFailed(message="wikimedia-login-failed-initiate") from exc
    except WikiHTTPError as exc:
        raise http_error(exc, "OAuth 1.0a initiate") from exc
    if _REQUEST_TOKEN.fullmatch(token.key) is None:
        log.warning("the wiki's OAuth 1.0a request token has an unexpected shape")
        raise WikiBadResponse()
    entry = PendingLogin(
        state=token.key,
        code_verifier="",
        next=nxt,
        redirect_uri=callback,
        created_at=time.time(),
        oauth_version=VERSION,
        token_secret=token.secret,
    )
    return client.authorize_url(st.browser_wiki_base(), token.key), entry


def exchange(
    st: WikimediaState, entry: PendingLogin, verifier: str
) -> tuple[TokenSet, str, dict[str, Any]]:
    """Trade the request token and verifier for the access token, then identify the user:
    ``(tokens, access secret, verified identify claims)``. Raises what ``oauth1`` raises."""
    client = _client(st)
    wiki = st.wiki_base()
    access = client.token(wiki, TokenPair(entry.state, entry.token_secret), verifier)
    profile = client.identify(wiki, access)
    # OAuth 1.0a access tokens do not expire: nothing to refresh, revocation is a refusal.
    return TokenSet(access.key, None, math.inf), access.secret, profile


def identify(st: WikimediaState, wiki_url: str, record: LoginRecord) -> dict[str, Any]:
    """Re-read the profile of a 1.0a login (``Special:OAuth/identify``), for fresh rights."""
    if st.oauth1 is None or record.access_secret is None:
        # The operator removed the 1.0a consumer: its logins cannot be used any more.
        raise TokenRejected("no OAuth 1.0a consumer is configured for this login")
    return st.oauth1.identify(wiki_url, TokenPair(record.access_token, record.access_secret))


def credentials(st: WikimediaState, record: LoginRecord) -> OAuth1Credentials | None:
    """What signs API requests for a 1.0a login; None if it cannot be signed any more."""
    if st.oauth1 is None or record.access_secret is None:
        return None
    return st.oauth1.credentials(TokenPair(record.access_token, record.access_secret))
