"""`DevWiki`: the development wiki's state (users, clients, codes, tokens, pages) and controls."""

from __future__ import annotations

import base64
import collections
import dataclasses
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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

if TYPE_CHECKING:
    import flask
    from werkzeug.serving import BaseWSGIServer

FLAVORS = ("wikimedia", "1.39")
FAULT_ENDPOINTS = ("authorize", "token", "profile", "api", "rest", "initiate", "identify")
FAULT_KINDS = (
    "500",
    "503",
    "429",
    "hang",
    "garbage",
    "badjson",
    "oversized",
    "redirect",
    "wrongtypes",
    "missingfields",
)
PROFILE_ONLY_FAULTS = ("wrongtypes", "missingfields")
#: Faults of OAuth 1.0a's identify JWT (endpoint ``"identify"`` only): a wrong claim, an
#: expired or future token, a wrong signing key, ``alg: none`` or another algorithm.
JWT_FAULTS = (
    "jwt-aud",
    "jwt-iss",
    "jwt-nonce",
    "jwt-expired",
    "jwt-future",
    "jwt-signature",
    "jwt-alg-none",
    "jwt-alg-hs512",
)

#: Owner-only tokens "never" expire (MediaWiki stores ``infinity``; the JWT says now + 1000 years).
OWNER_ONLY_TTL = 1000 * 365.25 * 86400
#: Dead tokens/codes are kept this long after they expire, so reuse reads as "revoked"/"expired".
KEEP_DEAD = 86400.0
#: At most this many dead (revoked) refresh/access tokens are remembered; older ones are dropped.
MAX_DEAD = 10000


class DevWikiError(Exception):
    """The development wiki answered :meth:`DevWiki.approve` with an error page."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"development wiki answered HTTP {status}: {text[:500]}")
        self.status = status
        self.text = text


@dataclass
class AuthCode:
    code: str
    client_id: str
    user: str
    scopes: list[str]
    redirect_uri: str | None
    challenge: str | None
    method: str | None
    expires: float
    used: bool = False


@dataclass
class AccessToken:
    token: str
    jti: str
    client_id: str
    user: str | None  # None: anonymous (client_credentials of a normal client)
    scopes: list[str]
    expires: float
    grant_type: str | None
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    user: str | None
    scopes: list[str]
    access_token: str
    expires: float
    revoked: bool = False
    #: After rotation, the old refresh token may be used again until then (None: hard revoked).
    grace_expires: float | None = None


@dataclass
class Approval:
    user: str
    client_id: str
    scopes: list[str]
    expires: float


@dataclass
class RequestToken:
    """An OAuth 1.0a request token, from initiate until it is traded at Special:OAuth/token."""

    key: str
    secret: str
    client_id: str
    callback: str
    expires: float
    user: str | None = None
    scopes: list[str] = dataclasses.field(default_factory=list)
    verifier: str | None = None
    used: bool = False


@dataclass
class Fault:
    kind: str
    remaining: int
    delay: float


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _opaque() -> str:
    """A long opaque value shaped like League's defuse-encrypted payloads."""
    return "def50200" + secrets.token_hex(348)


class DevWiki:
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

    # ------------------------------------------------------------------ faults

    def inject_fault(self, endpoint: str, kind: str, times: int = 1, delay: float = 30.0) -> None:
        """Make the next ``times`` requests to ``endpoint`` fail in the way ``kind`` says.

        ``endpoint`` is ``"authorize"``, ``"token"``, ``"profile"`` (the profile and scopes
        resources), ``"api"`` (api.php) or ``"rest"`` (the core REST API, ``rest.php/v1``).
        ``kind`` is one of ``"500"``, ``"503"``, ``"429"`` (both with :attr:`retry_after`), ``"hang"`` (wait ``delay`` seconds, then answer
        normally; :meth:`clear_faults` and shutdown wake it), ``"garbage"``, ``"badjson"``,
        ``"oversized"``, ``"redirect"``, and for ``"profile"`` only ``"wrongtypes"`` and
        ``"missingfields"``. OAuth 1.0a adds the endpoints ``"initiate"`` and ``"identify"``
        (its token endpoint shares ``"token"``), and for ``"identify"`` the kinds in
        :data:`JWT_FAULTS`. Faults queue up in the order they were injected.
        """
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {FAULT_ENDPOINTS}, not {endpoint!r}")
        if kind in JWT_FAULTS and endpoint != "identify":
            raise ValueError(f"fault {kind!r} only applies to the identify endpoint")
        if kind not in FAULT_KINDS and kind not in JWT_FAULTS:
            raise ValueError(f"kind must be one of {FAULT_KINDS + JWT_FAULTS}, not {kind!r}")
        if kind in PROFILE_ONLY_FAULTS and endpoint != "profile":
            raise ValueError(f"fault {kind!r} only applies to the profile endpoint")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self.faults.setdefault(endpoint, []).append(Fault(kind, times, delay))

    def clear_faults(self) -> None:
        """Remove every pending fault and wake requests that are hanging."""
        with self.lock:
            self.faults.clear()
            self._wake.set()
            self._wake = threading.Event()

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume one pending fault for ``endpoint`` (used by the views)."""
        with self.lock:
            queue = self.faults.get(endpoint)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return Fault(fault.kind, 1, fault.delay)

    def hang(self, delay: float) -> None:
        """Sleep up to ``delay`` seconds, or until :meth:`clear_faults` / shutdown."""
        with self.lock:
            event = self._wake
        event.wait(delay)

    # ------------------------------------------------------------------ tokens

    def revoke_tokens(self, username: str) -> None:
        """The user revoked the app(s): all their access and refresh tokens die at once."""
        with self.lock:
            for access in self.access_tokens.values():
                if access.user == username:
                    access.revoked = True
            for refresh in self.refresh_tokens.values():
                if refresh.user == username:
                    refresh.revoked = True
                    refresh.grace_expires = None
            for client_id, token in list(self.owner_tokens.items()):
                record = self.access_tokens.get(token)
                if record is not None and record.revoked:
                    del self.owner_tokens[client_id]

    def expire_access_tokens(self, username: str | None = None) -> None:
        """Make the current access tokens (of ``username``, or everyone's) expired now.

        Refresh tokens keep working, so clients can test their refresh path.
        """
        with self.lock:
            past = self.now() - 1
            for access in self.access_tokens.values():
                if (username is None or access.user == username) and access.expires > past:
                    access.expires = past

    def owner_only_token(self, client_id: str) -> str:
        """The ready access token an owner-only client's owner is shown (it never expires)."""
        with self.lock:
            client = self.clients[client_id]
            if not client.owner_only:
                raise ValueError(f"client {client_id!r} is not owner-only")
            token = self.owner_tokens.get(client_id)
            if token is not None and token in self.access_tokens:
                return token
            iss = self._origin(self.base_url) if self.base_url else "http://devwiki.invalid"
            record = self.issue_access_token(
                client,
                client.owner,
                list(client.grants),
                grant_type=None,
                iss=iss,
                ttl=OWNER_ONLY_TTL,
            )
            self.owner_tokens[client_id] = record.token
            return record.token

    @staticmethod
    def _origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def _sub(self, user: DevUser | None, *, prefixed: bool) -> str:
        if user is None:
            return "0"
        if prefixed and self.flavor == "wikimedia":
            return f"mw:local:devwiki:{user.id}"
        return str(user.id)

    def issue_access_token(
        self,
        client: DevClient,
        username: str | None,
        scopes: list[str],
        *,
        grant_type: str | None,
        iss: str,
        ttl: float | None = None,
    ) -> AccessToken:
        """Create an access token (a JWT-shaped string whose signature is random bytes)."""
        with self.lock:
            self.prune()
            now = self.now()
            expires = now + (self.access_token_ttl if ttl is None else ttl)
            jti = secrets.token_hex(40)
            user = self.users.get(username) if username is not None else None
            claims: dict[str, Any] = {"aud": client.client_id, "jti": jti}
            if self.flavor == "1.39":
                claims.update(iat=now, nbf=now, exp=expires)
            else:
                claims.update(iat=int(now), nbf=int(now), exp=int(expires))
            claims["sub"] = self._sub(user, prefixed=grant_type is not None)
            claims["iss"] = iss
            claims["scopes"] = list(scopes)
            if self.flavor == "wikimedia":
                if grant_type is not None:
                    claims["grant_type"] = grant_type
                claims["ratelimit"] = {"requests_per_unit": 5000, "unit": "HOUR"}
            header = b64url(
                json.dumps({"typ": "JWT", "alg": "RS256"}, separators=(",", ":")).encode()
            )
            payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
            token = f"{header}.{payload}.{b64url(secrets.token_bytes(256))}"
            record = AccessToken(
                token=token,
                jti=jti,
                client_id=client.client_id,
                user=username,
                scopes=list(scopes),
                expires=expires,
                grant_type=grant_type,
            )
            self.access_tokens[token] = record
            return record

    def issue_refresh_token(self, access: AccessToken) -> RefreshToken:
        with self.lock:
            record = RefreshToken(
                token=_opaque(),
                client_id=access.client_id,
                user=access.user,
                scopes=list(access.scopes),
                access_token=access.token,
                expires=self.now() + self.refresh_token_ttl,
            )
            self.refresh_tokens[record.token] = record
            return record

    def issue_code(
        self,
        client: DevClient,
        username: str,
        scopes: list[str],
        redirect_uri: str | None,
        challenge: str | None,
        method: str | None,
    ) -> AuthCode:
        with self.lock:
            self.prune()
            record = AuthCode(
                code=_opaque(),
                client_id=client.client_id,
                user=username,
                scopes=list(scopes),
                redirect_uri=redirect_uri,
                challenge=challenge,
                method=method,
                expires=self.now() + self.code_ttl,
            )
            self.codes[record.code] = record
            return record

    def new_approval(self, username: str, client_id: str, scopes: list[str]) -> str:
        with self.lock:
            approval_id = secrets.token_urlsafe(24)
            self.approvals[approval_id] = Approval(
                username, client_id, list(scopes), self.now() + 600
            )
            return approval_id

    def take_approval(self, approval_id: str) -> Approval | None:
        with self.lock:
            approval = self.approvals.pop(approval_id, None)
            if approval is None or approval.expires < self.now():
                return None
            return approval

    def lookup_access_token(self, token: str) -> tuple[AccessToken | None, str]:
        """Find a live access token: ``(record, "")`` or ``(None, reason)``.

        Reasons: ``"malformed"`` (not three dot-separated parts), ``"unknown"`` (bad signature
        or never issued), ``"expired"``, ``"revoked"``, ``"nouser"`` (its user was removed).
        """
        if token.count(".") != 2:
            return None, "malformed"
        with self.lock:
            record = self.access_tokens.get(token)
            if record is None:
                return None, "unknown"
            if record.revoked:
                return None, "revoked"
            if record.expires < self.now():
                return None, "expired"
            if record.user is not None and record.user not in self.users:
                return None, "nouser"
            return record, ""

    def csrf_for(self, access: AccessToken | None) -> str:
        """The api.php CSRF token of an access token's session (``+\\`` for anonymous)."""
        if access is None or access.user is None:
            return "+\\"
        digest = hmac.new(self._secret, access.token.encode(), "sha256").hexdigest()[:40]
        return digest + "+\\"

    def prune(self, force: bool = False) -> None:
        """Forget codes, tokens and approvals that are long dead (keeps memory bounded)."""
        with self.lock:
            now = self.now()
            if not force and now - self._last_prune < 1.0:
                return
            self._last_prune = now
            horizon = now - KEEP_DEAD
            for code in [c for c, r in self.codes.items() if r.expires < horizon]:
                del self.codes[code]
            for aid in [a for a, r in self.approvals.items() if r.expires < now]:
                del self.approvals[aid]
            owner = set(self.owner_tokens.values())
            for token in [t for t, r in self.access_tokens.items() if r.expires < horizon]:
                if token not in owner:
                    del self.access_tokens[token]
            dead_access = [t for t, r in self.access_tokens.items() if r.revoked or r.expires < now]
            for token in dead_access[: max(0, len(dead_access) - MAX_DEAD)]:
                del self.access_tokens[token]
            for token in [t for t, r in self.refresh_tokens.items() if r.expires < horizon]:
                del self.refresh_tokens[token]
            dead_refresh = [
                t
                for t, r in self.refresh_tokens.items()
                if r.revoked and (r.grace_expires is None or r.grace_expires < now)
            ]
            for token in dead_refresh[: max(0, len(dead_refresh) - MAX_DEAD)]:
                del self.refresh_tokens[token]

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

    # ------------------------------------------------------------------ serving

    def create_app(self) -> flask.Flask:
        """The WSGI app of this wiki (routes under ``/w/...``); mountable under any prefix."""
        from .app import create_app

        return create_app(self)

    def start(self, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> str:
        """Serve in a daemon thread; returns the base URL ``http://HOST:PORT/w``."""
        from werkzeug.serving import WSGIRequestHandler, make_server

        if self._server is not None:
            raise RuntimeError("this development wiki is already being served")

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

        server = make_server(
            host,
            port,
            self.create_app(),
            threaded=True,
            request_handler=QuietHandler if quiet else None,
        )
        netloc_host = f"[{host}]" if ":" in host else host
        self._server = server
        self.base_url = f"http://{netloc_host}:{server.port}/w"
        self._thread = threading.Thread(
            target=server.serve_forever, name="devwiki", kwargs={"poll_interval": 0.5}
        )
        self._thread.daemon = True
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving (wakes hanging requests first)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.clear_faults()
        # shutdown() waits for the serve loop's next poll; a connection wakes it at once.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            with suppress(OSError):
                socket.create_connection(server.socket.getsockname()[:2], timeout=0.2).close()
            stopper.join(0.02)
        server.server_close()
        if thread is not None:
            thread.join(5)
        self._server = None
        self._thread = None
        self.base_url = None

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """``with wiki.serve() as base_url:`` serves over real HTTP on an ephemeral port."""
        base_url = self.start(host, port)
        try:
            yield base_url
        finally:
            self.stop()

    # ------------------------------------------------------------------ browser helper

    def approve(self, authorize_url: str, username: str = "Alice", allow: bool = True) -> str:
        """Play the browser: go through the consent page as ``username`` and Allow (or Cancel).

        Returns the final ``Location`` that points back at the client (with ``code`` and
        ``state``, or an ``error``).

        :raises DevWikiError: the wiki answered with an error page.
        """
        from .approve import approve

        return approve(authorize_url, username, allow)
