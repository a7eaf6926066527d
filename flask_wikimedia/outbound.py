"""The one way we talk to wikis over HTTP (DESIGN invariant 6).

Every outbound request has one total deadline (connect, headers and body together: a watchdog
shuts the socket down when it passes), a cap on the response size, no redirect following, TLS
verification on, and a User-Agent that follows Wikimedia's policy. Failures come out as two
exceptions only: :class:`WikiUnreachable` (timeouts, connection errors, 5xx: try again later)
and :class:`WikiGarbage` (redirects, oversized or unparsable answers).

Also here, because everything that reads a wiki's URLs and numbers must read them one way:
:func:`canonical_origin` (the origin ``requests`` will really connect to, or
:class:`UnsafeURL` when a URL could be read two ways), :func:`check_wiki_url` (the startup
check of ``WIKIMEDIA_WIKI_URL``), :func:`parse_retry_after` and :func:`is_b64token`.

Why one module of this size: the deadline watchdog, the session that uses it and the canonical
reading of URLs are one security boundary (invariant 6); a reviewer should read it in one file.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import ipaddress
import itertools
import json
import math
import os
import re
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from ._version import __version__

DEFAULT_TIMEOUT = (3.05, 10.0)
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
LIBRARY_AGENT = f"Flask-Wikimedia/{__version__} python-requests/{requests.__version__}"


class WikiHTTPError(Exception):
    """Base class: the wiki could not give us a usable answer."""


class WikiUnreachable(WikiHTTPError):
    """Timeout, connection failure or a 5xx: the wiki is having trouble; retry later.

    ``status`` and ``retry_after`` are set when the wiki did answer (a 5xx), so callers can
    honour ``Retry-After``.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class WikiGarbage(WikiHTTPError):
    """The wiki answered, but with a redirect, an oversized body or something unparsable."""


class UnsafeURL(ValueError):
    """A URL we will not send a request to: it has userinfo, a backslash, control or non-ASCII
    characters, a host in a non-canonical spelling, or anything else that the two URL parsers
    ``requests`` uses (``urllib.parse`` and urllib3's ``parse_url``) could read differently."""


# --------------------------------------------------------------------------- URLs

#: Printable ASCII without the space: anything else in a URL is a smuggling attempt.
_URL_CHARS = re.compile(r"[!-~]+")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: A lower-case LDH host name without a trailing dot: the one spelling we compare.
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
#: A last label a WHATWG parser (a browser, some proxies) would read as an IPv4 number.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _canonical_host(host: str) -> str:
    """``host`` if it has exactly one reading (canonical IPv4, bracketed IPv6 without a zone,
    or a lower-case LDH name whose last label is not a number), else UnsafeURL."""
    if host.startswith("[") and host.endswith("]"):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UnsafeURL(f"not a usable IPv6 address: {host!r}") from None
        if address.compressed != host[1:-1] or address.scope_id:
            raise UnsafeURL(f"IPv6 address not in its canonical spelling: {host!r}")
        return host
    if not _HOSTNAME.fullmatch(host):
        raise UnsafeURL(f"not a canonical host name: {host!r}")
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        # 127.1, 0x7f.1, 2130706433: only the dotted quad is read the same by everyone.
        try:
            if str(ipaddress.IPv4Address(host)) == host:
                return host
        except ValueError:
            pass
        raise UnsafeURL(f"not a canonical IPv4 address: {host!r}")
    return host


def canonical_origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an absolute http(s) URL as ``requests`` connects to it.

    ``url`` should be the URL ``requests`` will send (``PreparedRequest.url``). Both parsers
    ``requests`` uses must read the same scheme, host and port, with no userinfo, and the host
    must be in its canonical spelling; otherwise :class:`UnsafeURL`. Compare the result
    exactly with an allowed origin: there is no second reading to worry about.
    """
    if not _URL_CHARS.fullmatch(url) or "\\" in url:
        raise UnsafeURL(
            f"URL with whitespace, control, non-ASCII characters or a backslash: {url!r}"
        )
    try:
        ours = parse_url(url)
        theirs = urlsplit(url)
        their_port = theirs.port
    except (LocationParseError, ValueError):
        raise UnsafeURL(f"not a parsable URL: {url!r}") from None
    scheme = (ours.scheme or "").lower()
    if scheme not in DEFAULT_PORTS or theirs.scheme.lower() != scheme:
        raise UnsafeURL(f"not an http(s) URL: {url!r}")
    if ours.auth is not None or "@" in theirs.netloc:
        raise UnsafeURL(f"URL with userinfo: {url!r}")
    host = _canonical_host(ours.host or "")
    port = DEFAULT_PORTS[scheme] if ours.port is None else ours.port
    their_host = theirs.hostname or ""
    if host.strip("[]") != their_host or port != (their_port or DEFAULT_PORTS[scheme]):
        raise UnsafeURL(f"URL that parsers read differently: {url!r}")
    if theirs.netloc not in (host, f"{host}:{port}"):
        raise UnsafeURL(f"URL with an unusual authority: {url!r}")
    return (scheme, host, port)


_RAW_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def request_origin(url: str) -> tuple[str, str, int]:
    """The origin a request for ``url`` (as a caller gave it) will really go to, or UnsafeURL.

    On top of :func:`canonical_origin` of the prepared URL: the caller's URL has an explicit
    ``scheme://`` (no ``https:evil``, no ``//evil``), no whitespace, control characters or
    backslashes anywhere, a printable-ASCII authority (no IDNA look-alikes) and the same host
    and port as the prepared URL.
    """
    match = _RAW_AUTHORITY.match(url)
    if match is None or re.search(r"[\x00-\x20\x7f\\\\]", url):
        raise UnsafeURL(f"not a plain absolute URL: {url!r}")
    authority = match.group(1)
    if not _URL_CHARS.fullmatch(authority):
        raise UnsafeURL(f"URL with a non-ASCII or empty authority: {url!r}")
    origin = canonical_origin(prepared_url(url))
    scheme, host, port = origin
    if authority.lower() not in (host, f"{host}:{port}") or url[: len(scheme) + 3].lower() != (
        scheme + "://"
    ):
        raise UnsafeURL(f"URL that requests would send elsewhere: {url!r}")
    return origin


def prepared_url(url: str) -> str:
    """The URL ``requests`` would send for ``url`` (host lower-cased and IDNA-encoded, path
    quoted), or UnsafeURL if it cannot prepare one."""
    try:
        prepared = requests.Request("GET", url).prepare().url
    except (requests.RequestException, ValueError, UnicodeError):
        raise UnsafeURL(f"not a usable URL: {url!r}") from None
    return str(prepared)


def check_wiki_url(url: str, *, allow_http: bool) -> str:
    """Validate ``WIKIMEDIA_WIKI_URL`` with the parser ``requests`` uses; the URL, or an error
    message saying what is wrong.

    https (plain http only to loopback, or anywhere when ``allow_http``: debug and testing), a
    canonical host, no userinfo, query or fragment.
    """
    try:
        scheme, host, _ = request_origin(url)
    except UnsafeURL as exc:
        raise UnsafeURL(
            f"WIKIMEDIA_WIKI_URL {url!r} is not a plain wiki URL ({exc}); use the wiki's "
            "script path over https, e.g. 'https://meta.wikimedia.org/w'."
        ) from None
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise UnsafeURL(
            f"WIKIMEDIA_WIKI_URL {url!r} has a query or fragment: give the script path."
        )
    if scheme != "https" and not allow_http and host.strip("[]") not in LOOPBACK_HOSTS:
        raise UnsafeURL(
            f"WIKIMEDIA_WIKI_URL {url!r} is not https: tokens and the client secret "
            "would cross the network in clear. Use the wiki's https URL."
        )
    return url


# --------------------------------------------------------------------------- numbers and tokens

#: RFC 6750 §2.1 b64token: what may follow ``Bearer `` in a header.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: RFC 6749 appendix A.17: a refresh token is 1*VSCHAR.
_VSCHARS = re.compile(r"[ -~]+")
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


def is_b64token(value: object) -> bool:
    """Is ``value`` a string usable as a Bearer token (RFC 6750 b64token)?"""
    return isinstance(value, str) and _B64TOKEN.fullmatch(value) is not None


def is_vschar_token(value: object) -> bool:
    """Is ``value`` a string of printable ASCII (RFC 6749's refresh token syntax)?"""
    return isinstance(value, str) and _VSCHARS.fullmatch(value) is not None


def parse_retry_after(value: object, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date, RFC 9110
    §10.2.3), clamped to ``[0, cap]``; None for anything else (``nan``, ``inf``, ``-1``,
    ``1e309``, garbage), which callers treat as absent."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(int(text))
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is still usable
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds) or not math.isfinite(cap):
        return None
    return min(max(seconds, 0.0), max(cap, 0.0))


def full_user_agent(app_agent: str) -> str:
    """The app's own agent followed by ours, as the User-Agent policy suggests."""
    return f"{app_agent} {LIBRARY_AGENT}"


# --------------------------------------------------------------------------- the total deadline


class CallDeadline:
    """One wiki call's wall-clock deadline over every socket it uses.

    Socket timeouts bound each ``recv``, not the call: a wiki trickling its status line,
    headers or body a byte at a time would hold a worker for ever. The watchdog thread shuts
    down (``shutdown(SHUT_RDWR)``) every socket of a call whose deadline passed, which wakes a
    blocked read in any thread at once, TLS handshake included. No signals, so it works in
    threads and in gunicorn's sync and gthread workers alike. Sockets are held as duplicates
    (``dup()``) so a descriptor number reused after a close can never be shut down by mistake.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = math.inf  # the clock starts when the request is sent (see start)
        self.started = False
        self.expired = False
        self._done = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the clock. Called at ``send``, after ``requests`` prepared the request: an
        auth hook may have refreshed the token meanwhile, with wiki calls of its own."""
        self.started = True
        self.at = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def add(self, sock: socket.socket) -> None:
        """Watch ``sock`` (a new connection, or a kept-alive one this call reuses)."""
        with self._lock:
            if self._done:
                return
            try:
                copy = sock.dup()
            except OSError:
                return  # already closed: nothing to wait on
            self._socks.append(copy)
            if self.expired:
                _shut(copy)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._socks:
                _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            for sock in self._socks:
                sock.close()
            self._socks.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected any more: nothing is blocked on it
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread per process that expires calls whose deadline passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, CallDeadline]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: CallDeadline) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                # Started lazily, and again in a forked worker (threads do not survive fork).
                self._thread = threading.Thread(
                    target=self._run, name="flask-wikimedia-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (call.at, next(self._seq), call))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, call = heapq.heappop(self._heap)
            call.expire()  # a finished call ignores this


_watchdog = _Watchdog()
_current = threading.local()


def _reset_after_fork() -> None:
    global _watchdog
    _watchdog = _Watchdog()  # the parent's lock may have been held by a thread that is gone


os.register_at_fork(after_in_child=_reset_after_fork)


def _watch_socket(sock: socket.socket | None) -> None:
    call: CallDeadline | None = getattr(_current, "call", None)
    if call is not None and sock is not None:
        call.add(sock)


class _WatchedSockets(HTTPConnection):
    """Hands every socket a connection opens or reuses to the current call's deadline."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch_socket(sock)  # before the TLS handshake, which a wiki can trickle too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_socket(self.sock)  # a kept-alive connection opened by an earlier call
        super().request(*args, **kwargs)


class _DeadlineConnection(_WatchedSockets):
    pass


class _DeadlineHTTPSConnection(_WatchedSockets, HTTPSConnection):
    pass


class _DeadlinePool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connection pools whose sockets obey :class:`CallDeadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _DeadlinePool,
            "https": _DeadlineHTTPSPool,
        }


class LimitedSession(requests.Session):
    """A ``requests.Session`` that applies the outbound limits to every request made through it
    (the base of every session that talks to a wiki: token calls, profile, API sessions)."""

    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES

    def configure_limits(
        self, user_agent: str, timeout: tuple[float, float], max_bytes: int
    ) -> None:
        self.headers["User-Agent"] = user_agent
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.verify = True
        self.trust_env = False  # no proxies or netrc credentials picked up from the environment
        for prefix in ("https://", "http://"):
            self.mount(prefix, _DeadlineAdapter(max_retries=0))

    @property
    def total_deadline(self) -> float:
        """Seconds one call may take, connect, headers and body together."""
        return sum(self.timeout)

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:  # some libraries pass timeout=None: never wait forever
            kwargs["timeout"] = self.timeout
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        kwargs["verify"] = True
        call = CallDeadline(self.total_deadline)
        outer: CallDeadline | None = getattr(_current, "call", None)
        _current.call = call
        try:
            return self._limited_request(call, method, url, *args, **kwargs)
        finally:
            _current.call = outer
            call.finish()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        call: CallDeadline | None = getattr(_current, "call", None)
        if call is not None and not call.started:
            call.start()
            _watchdog.watch(call)
        return super().send(request, **kwargs)

    def _limited_request(
        self, call: CallDeadline, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            # The cause stays for debugging, without its request: that one holds the headers,
            # Authorization included, for anything that walks the exception chain.
            exc.request = exc.response = None
            if call.expired or isinstance(exc, requests.Timeout):
                raise WikiUnreachable("the wiki did not answer in time") from exc
            raise WikiUnreachable("the wiki could not be reached") from exc
        try:
            body = self._read_body(response, call)
        except WikiHTTPError:
            raise
        except Exception as exc:  # urllib3 raises a zoo of read errors, timeouts included
            if call.expired:
                raise WikiUnreachable("the wiki's answer took too long") from exc
            raise WikiUnreachable("the wiki's answer was cut off or stalled") from exc
        finally:
            response.close()
        if call.expired:  # the watchdog may have cut a body short that still parsed
            raise WikiUnreachable("the wiki's answer took too long")
        response._content = body
        if 300 <= response.status_code < 400:
            raise WikiGarbage(f"the wiki answered with a redirect ({response.status_code})")
        if response.status_code >= 500:
            raise WikiUnreachable(
                f"the wiki answered HTTP {response.status_code}",
                status=response.status_code,
                retry_after=response.headers.get("Retry-After"),
            )
        return response

    def _read_body(self, response: requests.Response, call: CallDeadline) -> bytes:
        """Read at most ``max_bytes`` before the call's deadline (the watchdog enforces it
        while a read blocks; this loop stops a wiki that keeps a trickle just fast enough)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.raw.read1(65536, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise WikiGarbage(f"the wiki's answer was larger than {self.max_bytes} bytes")
            chunks.append(chunk)
            if call.remaining() < 0:
                raise WikiUnreachable("the wiki's answer took too long")


class WikiSession(LimitedSession):
    """A plain requests session with the outbound limits (profile, Action API, REST API)."""

    def __init__(
        self,
        user_agent: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        super().__init__()
        self.configure_limits(user_agent, timeout, max_bytes)


def json_body(response: requests.Response) -> Any:
    """Parse the body as JSON whatever the Content-Type says (MediaWiki 1.39 serves the
    profile as text/html)."""
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise WikiGarbage("the wiki's answer was not JSON") from exc
