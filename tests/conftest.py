"""Shared fixtures: a private redis-server on a free port and a served development wiki.

Nothing here touches the machine's default Redis on 6379: each test session starts its own
server with persistence off, and tests get a flushed database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from flask_wikimedia.devwiki import DevWiki


def free_port() -> int:
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


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), workdir=tempfile.mkdtemp(prefix="fw-redis-"))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the private server, flushed before each test."""
    if redis_server.process is None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    yield client
    if redis_server.process is None:  # a test stopped it: bring it back for the next one
        redis_server.start()


@pytest.fixture(scope="session")
def _served_devwiki() -> Iterator[DevWiki]:
    wiki = DevWiki()
    wiki.start()
    yield wiki
    wiki.stop()


@pytest.fixture
def devwiki() -> Iterator[DevWiki]:
    """A fresh development wiki (Wikimedia flavour) served over real HTTP on an ephemeral port."""
    wiki = DevWiki()
    wiki.start()
    yield wiki
    wiki.stop()


@pytest.fixture
def devwiki_139() -> Iterator[DevWiki]:
    """A development wiki that answers like MediaWiki 1.39 as observed."""
    wiki = DevWiki(flavor="1.39")
    wiki.start()
    yield wiki
    wiki.stop()


os.environ.setdefault("FLASK_WIKIMEDIA_TESTING", "1")
