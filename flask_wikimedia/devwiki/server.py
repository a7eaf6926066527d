"""Serving the development wiki over real HTTP (a threaded server on an ephemeral port), and
playing the browser through its consent page."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, cast

import flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .approve import approve

if TYPE_CHECKING:
    from .wiki import DevWiki

__all__ = ["Serving"]


class Serving:
    """Serve a :class:`DevWiki` (a part of it: ``start``, ``stop``, ``serve``, ``approve``)."""

    base_url: str | None
    _server: BaseWSGIServer | None
    _thread: threading.Thread | None

    def clear_faults(self) -> None:
        """Defined by :class:`~flask_wikimedia.devwiki.faults.FaultInjection`."""
        raise NotImplementedError

    def create_app(self) -> flask.Flask:
        """The WSGI app of this wiki (routes under ``/w/...``); mountable under any prefix."""
        return create_app(cast("DevWiki", self))  # a Serving is always part of a DevWiki

    def start(self, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> str:
        """Serve in a daemon thread; returns the base URL ``http://HOST:PORT/w``."""
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

    def approve(self, authorize_url: str, username: str = "Alice", allow: bool = True) -> str:
        """Play the browser: go through the consent page as ``username`` and Allow (or Cancel).

        Returns the final ``Location`` that points back at the client (with ``code`` and
        ``state``, or an ``error``).

        :raises DevWikiError: the wiki answered with an error page.
        """
        return approve(authorize_url, username, allow)
