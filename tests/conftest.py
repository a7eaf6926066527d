"""Shared fixtures: a private redis-server on a free port and a served development wiki.

Nothing here touches the machine's default Redis on 6379: each test session starts its own
server with persistence off, and tests get a flushed database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
import redis
from support import RedisServer, free_port

from flask_wikimedia.devwiki import DevWiki

__all__ = ["RedisServer", "free_port"]


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
