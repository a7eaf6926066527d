"""Play the browser against the benchmarked app: log in through the development wiki, read
cookies, fire bursts of concurrent requests."""

from __future__ import annotations

import math
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests


class BrowserError(RuntimeError):
    """A route did not answer as a working app would."""


def login(base_url: str, next_path: str = "/private") -> requests.Session:
    """A full "Log in with Wikimedia" (the wiki's ``auto_approve`` must name the user).

    GET /auth/login → the wiki's authorize endpoint → /auth/callback → ``next_path``; raises
    BrowserError unless the login lands on ``next_path`` with a 200.
    """
    browser = requests.Session()
    response = browser.get(f"{base_url}/auth/login", params={"next": next_path}, timeout=30)
    hops = [r.status_code for r in response.history]
    if response.status_code != 200 or hops != [302, 302, 303]:
        raise BrowserError(
            f"login did not complete: hops {hops}, then HTTP {response.status_code}: "
            f"{response.text[:300]}"
        )
    return browser


def session_cookie(browser: requests.Session, name: str = "session") -> str:
    value = browser.cookies.get(name)
    if not value:
        raise BrowserError(f"no {name!r} cookie after logging in")
    return f"{name}={value}"


def expect(url: str, cookie: str | None, contains: str) -> None:
    """One GET must answer 200 with ``contains`` in the body (no redirect to a login)."""
    headers = {"Cookie": cookie} if cookie else {}
    response = requests.get(url, headers=headers, allow_redirects=False, timeout=10)
    if response.status_code != 200 or contains not in response.text:
        raise BrowserError(
            f"GET {url} answered HTTP {response.status_code} {response.text[:200]!r}, "
            f"expected 200 with {contains!r}"
        )


@dataclass(frozen=True)
class Burst:
    latencies_ms: list[float]
    failures: list[str]


def burst(url: str, cookie: str, count: int, contains: str) -> Burst:
    """``count`` requests at once, each on its own connection, opened beforehand and released
    together; a request's latency runs from sending it to the last byte of the answer.

    Raw sockets rather than ``requests``: with a hundred threads, a Python HTTP client's own
    overhead would be most of what we measure.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nCookie: {cookie}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sockets = [socket.create_connection((host, port), timeout=30) for _ in range(count)]
    barrier = threading.Barrier(count, timeout=30)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one(sock: socket.socket) -> None:
        chunks = []
        start = time.perf_counter()
        try:
            barrier.wait()
            start = time.perf_counter()
            sock.sendall(raw)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            problem = None
        except (OSError, threading.BrokenBarrierError) as exc:
            problem = repr(exc)
        elapsed = (time.perf_counter() - start) * 1000
        sock.close()
        answer = b"".join(chunks).decode("utf-8", "replace")
        if problem is None and not (
            answer.startswith("HTTP/1.1 200 ") and contains in answer.partition("\r\n\r\n")[2]
        ):
            problem = answer[:200]
        with lock:
            latencies.append(elapsed)
            if problem is not None:
                failures.append(problem)

    threads = [threading.Thread(target=one, args=(sock,)) for sock in sockets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Burst(latencies, failures)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (what wrk reports too)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]
