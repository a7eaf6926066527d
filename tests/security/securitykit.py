"""Tools for the attack-and-fault suite: apps in each session setup, login flows, Redis
inspection, a browser-like URL resolver, and real HTTP servers that misbehave like a wiki can.

Nothing here is a mock: the apps are the extension as tool authors use it, Redis is the
private ``redis-server`` from ``tests/conftest.py``, and the "misbehaving wiki" is a real HTTP
server in front of the development wiki that passes requests through unless a test tells it
to answer otherwise.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
import requests
from apps import make_app
from flask import Flask, session
from flask.testing import FlaskClient
from flask_session import Session
from support import session_ref as session_ref  # re-exported for the security tests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request, Response

from flask_wikimedia import current_user
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.pending import COOKIE_NAME as PENDING_COOKIE
from flask_wikimedia.pending import PendingLogin
from flask_wikimedia.pending import read as read_pending
from flask_wikimedia.sessions import use_redis_sessions
from flask_wikimedia.state import get_state

ORIGIN = "http://localhost"
SESSION_PREFIX = "tests:session:"
LOGIN_PREFIX = "tests:wikimedia:"
SESSION_SETUPS = ("flask-session", "sealed-sessions", "cookie-session")


# --------------------------------------------------------------------------- apps


def build_app(
    wiki: DevWiki,
    client: redis.Redis,
    setup: str,
    *,
    session_prefix: str = SESSION_PREFIX,
    **config: Any,
) -> Flask:
    """The test app (``tests/apps.py``) in one of three session setups.

    ``flask-session``: plain Flask-Session on Redis, as the guide shows. ``sealed-sessions``:
    ``flask_wikimedia.sessions.use_redis_sessions`` (what the sample tool uses).
    ``cookie-session``: Flask's signed cookie, login records in Redis.
    """
    if setup not in SESSION_SETUPS:  # pragma: no cover
        raise ValueError(setup)
    config.setdefault("WIKIMEDIA_REDIS", client)
    config.setdefault("WIKIMEDIA_KEY_PREFIX", LOGIN_PREFIX)
    app = make_app(wiki, None, **config)
    if setup == "flask-session":
        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=client, SESSION_KEY_PREFIX=session_prefix
        )
        Session(app)
    elif setup == "sealed-sessions":
        use_redis_sessions(app, client, session_prefix)
    add_probe_routes(app)
    return app


def add_probe_routes(app: Flask) -> None:
    """Routes the attacks need: a request that stays in flight, one that writes the session."""
    gate = threading.Event()
    loaded = threading.Event()
    app.config["PROBE_GATE"] = gate
    app.config["PROBE_LOADED"] = loaded

    @app.get("/probe/slow")
    def probe_slow() -> str:
        who = str(current_user) if current_user else "anonymous"
        loaded.set()
        gate.wait(10)
        session["last_seen"] = time.time()  # a write-back after the logout happened
        return who

    @app.get("/probe/remember")
    def probe_remember() -> str:
        session["remembered"] = "yes"
        return "remembered"


# --------------------------------------------------------------------------- flows


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def state_of(url: str) -> str:
    return query_of(url)["state"][0]


def begin(client: FlaskClient, next: str | None = "/", **headers: str) -> str:
    """GET /auth/login?next=... (``next`` quoted once, as a browser sends it); the wiki URL."""
    path = "/auth/login" if next is None else f"/auth/login?next={quote(next, safe='')}"
    response = client.get(path, headers=headers)
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return response.headers["Location"]


def deliver(client: FlaskClient, callback_url: str, **kwargs: Any) -> TestResponse:
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}", **kwargs)


def approve(wiki: DevWiki, authorize_url: str, username: str = "Alice", allow: bool = True) -> str:
    """The browser leg on the development wiki (also when the app talks to a ScriptedWiki)."""
    parts = urlsplit(authorize_url)
    direct = f"{wiki.base_url}/rest.php/oauth2/authorize?{parts.query}"
    return wiki.approve(direct, username=username, allow=allow)


def log_in(
    client: FlaskClient, wiki: DevWiki, username: str = "Alice", next: str = "/"
) -> TestResponse:
    return deliver(client, approve(wiki, begin(client, next), username))


def is_logged_in(client: FlaskClient) -> bool:
    response = client.get("/private")
    assert response.status_code in (200, 302), (response.status_code, response.text[:300])
    return response.status_code == 200


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/me").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def log_out(client: FlaskClient, **form: str) -> TestResponse:
    data = {"csrf_token": csrf_token(client), **form}
    return client.post("/auth/logout", data=data)


def pending_of(app: Flask, client: FlaskClient) -> list[PendingLogin]:
    cookie = client.get_cookie(PENDING_COOKIE, path="/auth")
    return read_pending(get_state(app).pending_sealer, cookie.value if cookie else None)


def copy_cookies(source: FlaskClient, target: FlaskClient) -> None:
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def get_in_parallel(app: Flask, client: FlaskClient, path: str, n: int) -> list[int]:
    """GET ``path`` from ``n`` clients carrying ``client``'s cookies, released at once by a
    barrier; their status codes."""
    clients = []
    for _ in range(n):
        other = app.test_client()
        copy_cookies(client, other)
        clients.append(other)
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def hit(c: FlaskClient) -> None:
        barrier.wait()
        statuses.append(c.get(path).status_code)

    threads = [threading.Thread(target=hit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return statuses


def requests_needing_redis(client: FlaskClient, wiki: DevWiki) -> list[Callable[[], Any]]:
    """For a logged-in ``client``: a gated page, a page that reads the session, a login
    callback and a logout, prepared now (while Redis works) to be sent later."""
    token = csrf_token(client)
    callback = approve(wiki, begin(client), "Sysop")
    return [
        lambda: client.get("/private"),
        lambda: client.get("/me"),
        lambda: deliver(client, callback),
        lambda: client.post("/auth/logout", data={"csrf_token": token}),
    ]


def set_cookie_headers(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def cookie_attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """``(name, value, {attribute-lowercase: value})`` of one Set-Cookie header."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        key, _, val = part.partition("=")
        attrs[key.lower()] = val
    return name, value, attrs


# --------------------------------------------------------------------------- redis


def keys(client: redis.Redis, pattern: str = "*") -> list[bytes]:
    """Every key on the private test server (KEYS is fine here; the code never uses it)."""
    return sorted(client.keys(pattern))


def raw_values(client: redis.Redis) -> bytes:
    """Everything stored, raw, as a neighbour on a shared Redis would read it."""
    out = []
    for key in keys(client):
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            for k, v in client.hgetall(key).items():
                out += [k, v]
        out.append(client.dump(key) or b"")
    return b"\n".join(out)


def login_keys(client: redis.Redis) -> list[bytes]:
    return keys(client, f"{LOGIN_PREFIX}login:*")


def session_key(app: Flask, sid: str) -> str:
    """The Redis key of session ``sid`` (a keyed digest of it, never the id itself)."""
    return str(app.session_interface._get_store_id(sid))  # type: ignore[attr-defined]


def login_key(app: Flask, ref: str) -> str:
    """The Redis key of the login record behind reference ``ref``."""
    return str(get_state(app).store.record_key(ref))  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- browsers


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(.*)", re.S)
_SPECIAL = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


def browser_target(base: str, location: str) -> tuple[str, str, int | None]:
    """Where a browser on ``base`` goes for ``Location: location``: ``(scheme, host, port)``.

    A small model of the WHATWG URL parser, enough for the open-redirect vectors: leading and
    trailing C0/space stripped, tabs and newlines removed, ``\\`` read as ``/`` under special
    schemes, any number of slashes before an authority, userinfo dropped, percent-decoded and
    IDNA-mapped hosts. Non-special schemes (``javascript:``, ``data:``) come back as the
    scheme with an empty host: never the tool's origin.
    """
    base_parts = urlsplit(base)
    here = (
        base_parts.scheme,
        base_parts.hostname or "",
        base_parts.port or _SPECIAL.get(base_parts.scheme),
    )
    value = location.strip("".join(chr(c) for c in range(0x21)))
    value = re.sub(r"[\t\n\r]", "", value)
    scheme = base_parts.scheme
    match = _SCHEME.fullmatch(value)
    if match:
        scheme = match.group(1).lower()
        value = match.group(2)
        if scheme not in _SPECIAL:
            return (scheme, "", None)
        value = value.replace("\\", "/")
        if scheme == base_parts.scheme and not value.startswith("/"):
            return here  # "https:evil.example" on an https page is a relative path
        if scheme != base_parts.scheme or value.startswith("/"):
            return _authority(scheme, value.lstrip("/"))
    value = value.replace("\\", "/")
    if value.startswith("//"):
        return _authority(scheme, value.lstrip("/"))
    return here


def _authority(scheme: str, rest: str) -> tuple[str, str, int | None]:
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    hostport = authority.rpartition("@")[2]
    host, _, port = hostport.partition(":")
    host = unquote(host).lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return (scheme, "<invalid host>", None)
    return (scheme, host.rstrip("."), int(port) if port.isdigit() else _SPECIAL.get(scheme))


def same_origin(base: str, location: str) -> bool:
    parts = urlsplit(base)
    port = parts.port or _SPECIAL.get(parts.scheme)
    return browser_target(base, location) == (parts.scheme, parts.hostname or "", port)


# --------------------------------------------------------------------------- servers


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        pass


class _Served:
    """A WSGI app on an ephemeral loopback port, in a daemon thread."""

    def __init__(self, app: Callable[..., Any], ssl_context: Any = None) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_Quiet, ssl_context=ssl_context
        )
        scheme = "https" if ssl_context else "http"
        self.root = f"{scheme}://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Seen:
    """One request as the wiki received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    endpoint: str

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("latin-1"), keep_blank_values=True)


Handler = Callable[[Seen, Callable[[Seen], Response]], Response]


def endpoint_of(path: str) -> str:
    for suffix, name in (
        ("/oauth2/access_token", "token"),
        ("/oauth2/resource/profile", "profile"),
        ("/oauth2/authorize", "authorize"),
        ("/api.php", "api"),
    ):
        if path.endswith(suffix):
            return name
    return "other"


@dataclass
class ScriptedWiki:
    """A real HTTP server in front of the development wiki.

    It passes every request through to ``upstream`` and records it in :attr:`seen`, unless a
    test told it (:meth:`on`) to answer an endpoint (``"token"``, ``"profile"``, ``"api"``)
    the way a broken or hostile wiki would. Point the app's ``WIKIMEDIA_WIKI_URL`` at
    :attr:`base_url`.
    """

    upstream: DevWiki
    seen: list[Seen] = field(default_factory=list)
    rules: dict[str, list[list[Any]]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _served: _Served | None = None

    @property
    def base_url(self) -> str:
        assert self._served is not None
        return self._served.root + "/w"

    def start(self) -> ScriptedWiki:
        self._served = _Served(self._wsgi)
        return self

    def stop(self) -> None:
        self.release.set()
        if self._served is not None:
            self._served.stop()

    def on(self, endpoint: str, handler: Handler, times: int | None = None) -> None:
        """Answer ``endpoint`` with ``handler`` (``times`` times, or until :meth:`reset`)."""
        with self._lock:
            self.rules.setdefault(endpoint, []).append([handler, times])

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()

    def calls(self, endpoint: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.endpoint == endpoint]

    def _rule(self, endpoint: str) -> Handler | None:
        with self._lock:
            queue = self.rules.get(endpoint)
            if not queue:
                return None
            handler, times = queue[0]
            if times is not None:
                queue[0][1] = times - 1
                if times - 1 <= 0:
                    queue.pop(0)
            return handler  # type: ignore[no-any-return]

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        seen = Seen(
            method=request.method,
            path=request.path,
            query=request.query_string.decode("latin-1"),
            headers=dict(request.headers),
            body=request.get_data(),
            endpoint=endpoint_of(request.path),
        )
        with self._lock:
            self.seen.append(seen)
        handler = self._rule(seen.endpoint)
        response = handler(seen, self.forward) if handler else self.forward(seen)
        return response(environ, start_response)  # type: ignore[no-any-return]

    def forward(self, seen: Seen) -> Response:
        root = self.upstream.base_url.rsplit("/w", 1)[0]  # type: ignore[union-attr]
        url = root + seen.path + (f"?{seen.query}" if seen.query else "")
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {k: v for k, v in seen.headers.items() if k.lower() not in skip}
        answer = requests.request(
            seen.method, url, headers=headers, data=seen.body, allow_redirects=False, timeout=30
        )
        response = Response(answer.content, answer.status_code)
        for key in ("Content-Type", "WWW-Authenticate", "Location", "Retry-After"):
            if key in answer.headers:
                response.headers[key] = answer.headers[key]
        return response


def answer_json(body: Any, status: int = 200, **headers: str) -> Handler:
    def handler(seen: Seen, forward: Callable[[Seen], Response]) -> Response:
        text = body if isinstance(body, str | bytes) else json.dumps(body)
        response = Response(text, status, content_type="application/json")
        response.headers.update(headers)
        return response

    return handler


def answer_raw(body: bytes, status: int = 200, content_type: str = "text/html", **headers: str):
    def handler(seen: Seen, forward: Callable[[Seen], Response]) -> Response:
        response = Response(body, status, content_type=content_type)
        for key, value in headers.items():
            response.headers[key.replace("_", "-")] = value
        return response

    return handler


def edit_upstream_json(edit: Callable[[dict[str, Any]], Any]) -> Handler:
    """Pass the request through, then change the wiki's JSON answer with ``edit``."""

    def handler(seen: Seen, forward: Callable[[Seen], Response]) -> Response:
        real = forward(seen)
        data = json.loads(real.get_data())
        changed = edit(data)  # edits in place; a returned dict replaces the answer
        data = changed if isinstance(changed, dict) else data
        return Response(json.dumps(data), real.status_code, content_type="application/json")

    return handler


def trickle(release: threading.Event, interval: float = 0.2) -> Handler:
    """Headers at once, then one byte of a JSON body every ``interval`` seconds, forever."""

    def handler(seen: Seen, forward: Callable[[Seen], Response]) -> Response:
        def body() -> Iterator[bytes]:
            yield b'{"access_token": "'
            while not release.wait(interval):
                yield b"x"

        response = Response(body(), 200, content_type="application/json")
        response.headers["Content-Length"] = str(10_000_000)
        return response

    return handler


def hang(release: threading.Event, seconds: float = 20.0) -> Handler:
    def handler(seen: Seen, forward: Callable[[Seen], Response]) -> Response:
        release.wait(seconds)
        return forward(seen)

    return handler


class CountingServer:
    """A stand-in for an attacker's host: answers 200 and counts what reached it."""

    def __init__(self, ssl_context: Any = None) -> None:
        self.hits: list[Seen] = []
        self._served = _Served(self._wsgi, ssl_context=ssl_context)
        self.root = self._served.root

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        self.hits.append(
            Seen(
                request.method,
                request.path,
                request.query_string.decode(),
                dict(request.headers),
                request.get_data(),
                endpoint_of(request.path),
            )
        )
        return Response('{"ok": true}', 200, content_type="application/json")(
            environ, start_response
        )

    def stop(self) -> None:
        self._served.stop()


@contextlib.contextmanager
def paused(server: Any) -> Iterator[None]:
    """The redis-server SIGSTOPped (accepting connections, never answering) inside the block."""
    server.pause()
    try:
        yield
    finally:
        server.resume()


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = func()
    return result, time.monotonic() - started


def run_with_deadline(func: Callable[[], Any], seconds: float) -> tuple[bool, Any]:
    """Run ``func`` in a thread; ``(finished in time, result or exception)``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:  # reported to the caller
            box["result"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return (not thread.is_alive(), box.get("result"))


SECRET_WORDS = ("Traceback", 'File "', "redis.exceptions", "werkzeug.exceptions")


def assert_clean_page(response: TestResponse, *secrets: str) -> None:
    """A page for people: no traceback, no internals, none of ``secrets``."""
    body = response.get_data(as_text=True)
    for word in SECRET_WORDS:
        assert word not in body, body[:500]
    for secret in secrets:
        if secret:
            assert secret not in body
            assert all(secret not in v for _, v in response.headers.items())
