"""Test support that is not a fixture, importable from any test module as ``support``: the
private redis-server, free ports, and the helpers the login, refresh, API and policy tests share
(the one helpers module; users' helpers such as ``login``/``logout`` are in
``flask_wikimedia.testing``)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.login import REF_KEY
from flask_wikimedia.refresh import REFRESH_MARGIN
from flask_wikimedia.state import get_state
from flask_wikimedia.store import VersionedRecord
from flask_wikimedia.testing import login


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server this test session started; `stop()`/`start()` simulate outages."""

    port: int
    workdir: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client(socket_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        """Hang Redis: it keeps accepting connections but never answers (SIGSTOP)."""
        assert self.process is not None
        self.process.send_signal(19)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(18)


LONG_TTL = 14400


def session_ref(client: FlaskClient) -> str | None:
    with client.session_transaction() as sess:
        ref = sess.get(REF_KEY)
    return ref if isinstance(ref, str) else None


def stored(app: Flask, client: FlaskClient) -> VersionedRecord | None:
    """The login record behind ``client``'s session, as the store holds it now."""
    ref = session_ref(client)
    return get_state(app).store.get(ref) if ref else None


def login_due_for_refresh(
    client: FlaskClient, wiki: DevWiki, username: str = "Alice"
) -> VersionedRecord:
    """Log in with a token that is inside the refresh margin at once, then make the wiki treat
    it as expired too (as it would be a minute later). Later tokens live 4 hours again."""
    wiki.access_token_ttl = int(REFRESH_MARGIN)
    try:
        response = login(client, wiki, username)
    finally:
        wiki.access_token_ttl = LONG_TTL
    assert response.status_code == 303, response.text
    wiki.expire_access_tokens()
    record = stored(client.application, client)
    assert record is not None
    assert record.record.expires_at - time.time() < REFRESH_MARGIN
    return record


def clone(client: FlaskClient) -> FlaskClient:
    """Another test client with the same session cookie (a second tab, another worker)."""
    other = client.application.test_client()
    cookie = client.get_cookie("session")
    assert cookie is not None
    other.set_cookie("session", cookie.value)
    return other


def parallel_gets(client: FlaskClient, count: int, path: str) -> list[int]:
    """The status codes of ``count`` GETs of ``path``, at once, each from a clone of ``client``
    (same session: tabs, workers)."""
    clients = [clone(client) for _ in range(count)]
    return in_parallel(count, lambda i: clients[i].get(path).status_code)


def in_parallel(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` for i in range(count) on as many threads, all at once."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))
