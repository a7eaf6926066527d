"""The one way we talk to wikis over HTTP (DESIGN invariant 6).

Every outbound request has connect and read timeouts, a cap on the response size, no redirect
following, TLS verification on, and a User-Agent that follows Wikimedia's policy. Failures come
out as two exceptions only: :class:`WikiUnreachable` (timeouts, connection errors, 5xx: try
again later) and :class:`WikiGarbage` (redirects, oversized or unparsable answers).
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from . import __version__

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


def full_user_agent(app_agent: str) -> str:
    """The app's own agent followed by ours, as the User-Agent policy suggests."""
    return f"{app_agent} {LIBRARY_AGENT}"


class LimitsMixin(requests.Session):
    """Applies the outbound limits to every request made through the session."""

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

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:  # some libraries pass timeout=None: never wait forever
            kwargs["timeout"] = self.timeout
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        kwargs["verify"] = True
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.Timeout as exc:
            raise WikiUnreachable("the wiki did not answer in time") from exc
        except requests.RequestException as exc:
            raise WikiUnreachable("the wiki could not be reached") from exc
        try:
            body = self._read_body(response)
        except WikiHTTPError:
            raise
        except Exception as exc:  # urllib3 raises a zoo of read errors, timeouts included
            raise WikiUnreachable("the wiki's answer was cut off or stalled") from exc
        finally:
            response.close()
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

    def _read_body(self, response: requests.Response) -> bytes:
        """Read at most ``max_bytes``, within a wall-clock deadline of connect + read timeout.

        Per-socket timeouts alone let a wiki trickling a byte at a time hold a worker forever
        (security catalogue PE-5), so the body is read in pieces against a total deadline.
        """
        deadline = time.monotonic() + sum(self.timeout)
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
            if time.monotonic() > deadline:
                raise WikiUnreachable("the wiki's answer took too long")


class WikiSession(LimitsMixin):
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
