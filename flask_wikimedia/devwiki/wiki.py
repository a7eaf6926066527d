"""`DevWiki`: the development wiki's state (users, clients, pages, the clock) and its controls.

Its other concerns live next door and are mixed in: ``tokens.py`` (codes and tokens),
``faults.py`` (fault injection), ``server.py`` (serving over HTTP, the browser stand-in);
``records.py`` has the data shapes, ``app.py`` and its endpoint modules the HTTP side.
"""

from __future__ import annotations

import collections
import dataclasses
import secrets
import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer

from .faults import Fault, FaultInjection
from .models import (
    ANONYMOUS_RIGHTS,
    DEV_CLIENT_ID,
    DEV_OAUTH1_KEY,
    DEV_OAUTH1_SECRET,
    PLAIN_USER_RIGHTS,
    SYSOP_EXTRA_RIGHTS,
    DevClient,
    DevUser,
    grant_rights,
)
from .records import AccessToken, Approval, AuthCode, RefreshToken, RequestToken
from .server import Serving
from .tokens import TokenIssuing

__all__ = ["FLAVORS", "DevWiki"]

FLAVORS = ("wikimedia", "1.39")


class DevWiki(FaultInjection, TokenIssuing, Serving):
    """A local fake of MediaWiki's OAuth 2.0 server (Extension:OAuth) plus a bit of ``api.php``.

    All state lives in this object; :meth:`create_app` builds the WSGI app and :meth:`serve`
    runs it on an ephemeral port. ``flavor`` chooses the quirks: ``"wikimedia"`` (current
    Wikimedia production: League OAuth2 9, refresh grace period, edge-style 401 for bad tokens)
    or ``"1.39"`` (MediaWiki 1.39 as observed: ``message`` in errors, 401 ``invalid_request`` on
    refresh errors, 200 error pages, profile served as ``text/html``).

    It is for development and tests only: every page says it is not a real login.
    """

    def __init__(self, flavor: str = "wikimedia") -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}, not {flavor!r}")
        self.flavor: str = flavor
        self.users: dict[str, DevUser] = {}
        self.clients: dict[str, DevClient] = {}
        self.access_token_ttl: int = 14400
        self.refresh_token_ttl: int = 365 * 86400
        self.refresh_grace: int = 600 if flavor == "wikimedia" else 0
        self.code_ttl: int = 600
        self.auto_approve: str | None = None
        self.pages: dict[str, str] = {
            "Main Page": "Welcome to the '''development wiki'''. This is not a real wiki.",
            "Sandbox": "Feel free to try your editing skills here.",
        }
        self.edits: list[dict[str, Any]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        #: Replication lag in seconds reported to ``maxlag`` checks on api.php.
        self.lag: float = 0.0
        #: The ``Retry-After`` sent with ``maxlag``, 429 and 503 answers: set it to anything
        #: (``"nan"``, a date, garbage) to see how a client copes with a hostile value.
        self.retry_after: str = "5"
        self.base_url: str | None = None

        self.lock = threading.RLock()
        self.csrf_token = secrets.token_hex(16) + "+\\"
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.approvals: dict[str, Approval] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.owner_tokens: dict[str, str] = {}
        #: OAuth 1.0a: request tokens, access token secrets (the tokens themselves live in
        #: ``access_tokens``, grant type ``"oauth1"``) and the nonces seen (key -> expiry).
        self.request_tokens: dict[str, RequestToken] = {}
        self.oauth1_secrets: dict[str, str] = {}
        self.oauth1_nonces: dict[str, float] = {}
        self.page_ids: dict[str, int] = {}
        self.page_revs: dict[str, int] = {}
        self.edit_times: list[str] = []
        self._secret = secrets.token_bytes(32)
        self._time_offset = 0.0
        self._wake = threading.Event()
        self._next_user_id = 1
        self._next_page_id = 1
        self._last_prune = 0.0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

        self.add_client(DevClient(client_id=DEV_CLIENT_ID))
        self.add_client(
            DevClient(
                client_id=DEV_OAUTH1_KEY,
                secret=DEV_OAUTH1_SECRET,
                oauth_version="1.0a",
                callback_is_prefix=True,
            )
        )
        self.add_user(DevUser("Alice", editcount=42, realname="Alice Example"))
        self.add_user(
            DevUser(
                "Sysop",
                groups=["*", "user", "autoconfirmed", "sysop"],
                rights=[*PLAIN_USER_RIGHTS, *SYSOP_EXTRA_RIGHTS],
                editcount=12345,
                realname="Sysop Example",
                registered="20100101000000",
            )
        )
        self.add_user(DevUser("Blocked", blocked=True, editcount=7))
        no_email = self.add_user(DevUser("NoEmail", confirmed_email=False, editcount=3))
        no_email.email = ""
        self.add_user(DevUser("Hidden", hidden=True, editcount=99))
        self.add_user(
            DevUser(
                "Newbie",
                groups=["*", "user"],
                rights=[
                    r for r in PLAIN_USER_RIGHTS if r not in ("autoconfirmed", "editsemiprotected")
                ],
                editcount=0,
                registered=time.strftime("%Y%m%d%H%M%S", time.gmtime()),
            )
        )

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        """The wiki's clock: real time plus whatever :meth:`advance_time` added."""
        return time.time() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        """Pretend ``seconds`` have passed (codes, tokens and grace periods age accordingly)."""
        with self.lock:
            self._time_offset += seconds

    # ------------------------------------------------------------------ accounts

    def add_user(self, user: DevUser) -> DevUser:
        """Register (or replace) a test account; assigns ``user.id`` when it is 0."""
        with self.lock:
            old = self.users.get(user.name)
            if user.id == 0:
                if old is not None:
                    user.id = old.id
                else:
                    user.id = self._next_user_id
            self._next_user_id = max(self._next_user_id, user.id + 1)
            self.users[user.name] = user
            return user

    def add_client(self, client: DevClient) -> DevClient:
        """Register (or replace) a client."""
        with self.lock:
            self.clients[client.client_id] = client
            self.owner_tokens.pop(client.client_id, None)
            return client

    def set_user(self, name: str, **changes: Any) -> None:
        """Change a test account, e.g. ``set_user("Alice", blocked=True)``.

        Later profile reads and API calls reflect the change at once.

        :raises KeyError: no such user.
        :raises TypeError: unknown field.
        """
        allowed = {f.name for f in dataclasses.fields(DevUser)} - {"name", "id"}
        with self.lock:
            user = self.users[name]
            for key, value in changes.items():
                if key not in allowed:
                    raise TypeError(f"DevUser field {key!r} cannot be set")
                setattr(user, key, value)

    def user_rights(self, user: DevUser | None, scopes: list[str]) -> list[str]:
        """Effective rights of a token: the user's rights limited to what the grants confer."""
        rights = list(user.rights) if user is not None else list(ANONYMOUS_RIGHTS)
        allowed = grant_rights(scopes)
        return [r for r in rights if r in allowed]

    # ------------------------------------------------------------------ pages

    @staticmethod
    def normalize_title(title: str) -> str:
        title = title.replace("_", " ").strip()
        title = " ".join(title.split())
        return title[:1].upper() + title[1:]

    def find_page(self, title: str) -> str | None:
        """The key of an existing page in :attr:`pages`, or None."""
        if title in self.pages:
            return title
        norm = self.normalize_title(title)
        if norm in self.pages:
            return norm
        return None

    def page_id(self, title: str) -> int:
        with self.lock:
            if title not in self.page_ids:
                self.page_ids[title] = self._next_page_id
                self._next_page_id += 1
            return self.page_ids[title]

    def save_page(self, title: str, text: str, username: str, summary: str) -> tuple[int, int]:
        """Store an edit; returns ``(old revid, new revid)``."""
        with self.lock:
            self.page_id(title)
            old = self.page_revs.get(title, 0)
            self.pages[title] = text
            self.edits.append({"title": title, "user": username, "summary": summary, "text": text})
            self.edit_times.append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now())))
            revid = len(self.edits)
            self.page_revs[title] = revid
            user = self.users.get(username)
            if user is not None:
                user.editcount += 1
            return old, revid
