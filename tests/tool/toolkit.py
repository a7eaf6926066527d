"""Helpers for the template tool's tests: constants, environments, live servers, logins."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from flask_wikimedia.devwiki import DevClient, DevWiki

TOOL = "fw-template"
CLIENT_ID = "5eed" * 8
CLIENT_SECRET = "0ddba11" * 6
SECRET_KEY = "tool-tests-" + "k" * 48
KEY_PREFIX = "3c0ffee1d0d0cafe" * 2
TOOLFORGE_CALLBACK = f"https://{TOOL}.toolforge.org/auth/callback"
SESSION_COOKIE = "__Host-session"

#: Environment variables the tool reads besides FLASK_*.
TOOL_ENV = ("TOOLFORGE", "TOOL_DATA_DIR", "TOOL_CONFIG", "REDIS_URL", "REDIS_KEY_PREFIX", "PORT")


def scrubbed_environ() -> dict[str, str]:
    """This process's environment without anything the tool would read (for subprocesses)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_") and k not in TOOL_ENV}
    env["TOOLFORGE"] = "0"
    return env


def register_tool(wiki: DevWiki, redirect_uri: str | None, grants: list[str] | None = None) -> None:
    """Register the tool's OAuth 2.0 consumer on the dev wiki (None: any loopback callback)."""
    wiki.add_client(
        DevClient(
            client_id=CLIENT_ID,
            secret=CLIENT_SECRET,
            redirect_uri=redirect_uri,
            grants=grants or ["basic", "editpage", "highvolume"],
            name="Template tool (tests)",
        )
    )


def live_tool_config(base: str, wiki_url: str, redis_url: str) -> dict[str, Any]:
    """``create_app`` settings for the tool served at ``base`` with Redis, against ``wiki_url``."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "WIKIMEDIA_CLIENT_ID": CLIENT_ID,
        "WIKIMEDIA_CLIENT_SECRET": CLIENT_SECRET,
        "WIKIMEDIA_WIKI_URL": wiki_url,
        "WIKIMEDIA_REDIRECT_URI": base + "/auth/callback",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": secrets.token_hex(16),
        "TOOL_CONTACT": "tests@example.org",
    }


def toolforge_environ(wiki_url: str, redis_url: str) -> dict[str, str]:
    """What `toolforge envvars` would hold for the tool (with the dev wiki as the wiki)."""
    return {
        "TOOLFORGE": "1",
        "FLASK_TOOL_NAME": TOOL,
        "FLASK_SECRET_KEY": SECRET_KEY,
        "FLASK_WIKIMEDIA_CLIENT_ID": CLIENT_ID,
        "FLASK_WIKIMEDIA_CLIENT_SECRET": CLIENT_SECRET,
        "FLASK_WIKIMEDIA_WIKI_URL": wiki_url,
        "FLASK_WIKIMEDIA_TIMEOUT": "[1.0, 3.0]",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": KEY_PREFIX,
    }


def wait_until_serving(process: subprocess.Popen[str], base: str, timeout: float = 30) -> None:
    """Wait until the server ``process`` answers ``/healthz`` at ``base``; fail if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or workers still booting
            pass
        assert time.monotonic() < deadline, f"the server at {base} did not answer"
        time.sleep(0.1)


def redis_keys(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter("*"))


@contextmanager
def live_server(make_app: Callable[[str], Any], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``make_app(base_url)`` with a threaded Werkzeug server; yields the base URL.

    The app is built once the port is known, so its configuration can name its own URL.
    """
    holder: dict[str, Any] = {}

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server = make_server(host, 0, dispatch, threaded=True, request_handler=QuietHandler)
    base = f"http://{host}:{server.port}"
    holder["app"] = make_app(base)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def http_login(base: str, wiki: DevWiki, username: str = "Alice") -> requests.Session:
    """Log a requests session in on a served tool through the dev wiki's consent page."""
    http = requests.Session()
    start = http.get(base + "/auth/login", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    callback = wiki.approve(start.headers["Location"], username=username)
    done = http.get(callback, allow_redirects=False, timeout=10)
    assert done.status_code == 303, done.text
    return http
