"""Fixtures for the attack-and-fault suite (docs/security.md lists what each test proves).

Redis is the private server of ``tests/conftest.py`` (never a shared one: see
``test_only_a_private_local_redis_is_used``), reached with short timeouts so that a stopped or
hung server shows as a fast 503. The wiki is the development wiki over real HTTP, optionally
behind a :class:`~securitykit.ScriptedWiki` that answers like a broken one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from securitykit import SESSION_SETUPS, ScriptedWiki, build_app

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.sessions import connect_redis

#: Short timeouts so that a hung Redis is a fast 503 (DESIGN invariant 7, catalogue RF-5).
REDIS_TIMEOUT = 0.5
#: Short timeouts for calls to the wiki (catalogue PE-5).
WIKI_TIMEOUT = (0.5, 1.0)


@pytest.fixture
def fast_redis(redis_client: redis.Redis, redis_server) -> Iterator[redis.Redis]:
    """A client on the (flushed) private server with the timeouts a tool should use."""
    client = connect_redis(redis_server.url, timeout=REDIS_TIMEOUT)
    yield client
    client.close()


@pytest.fixture
def hung_redis(redis_server) -> Iterator[None]:
    """Redis accepts connections but never answers (SIGSTOP) until the test ends."""
    redis_server.pause()
    try:
        yield
    finally:
        redis_server.resume()


@pytest.fixture
def wiki(devwiki: DevWiki) -> DevWiki:
    return devwiki


@pytest.fixture
def scripted(wiki: DevWiki) -> Iterator[ScriptedWiki]:
    """A real HTTP server in front of the dev wiki that can answer like a broken wiki."""
    server = ScriptedWiki(wiki).start()
    yield server
    server.stop()


@pytest.fixture
def app(wiki, fast_redis):
    """The test app with plain Flask-Session on Redis (the guide's setup)."""
    return build_app(wiki, fast_redis, "flask-session", WIKIMEDIA_TIMEOUT=WIKI_TIMEOUT)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(params=SESSION_SETUPS)
def any_app(request, wiki, fast_redis):
    """The test app in each session setup: Flask-Session, sealed sessions, cookie session."""
    return build_app(wiki, fast_redis, request.param, WIKIMEDIA_TIMEOUT=WIKI_TIMEOUT)


@pytest.fixture
def sealed_app(wiki, fast_redis):
    """The test app with ``flask_wikimedia.sessions.use_redis_sessions`` (the tool's setup)."""
    return build_app(wiki, fast_redis, "sealed-sessions", WIKIMEDIA_TIMEOUT=WIKI_TIMEOUT)


@pytest.fixture
def scripted_app(scripted, fast_redis):
    """The test app talking to the scripted (possibly misbehaving) wiki."""
    return build_app(
        scripted.upstream,
        fast_redis,
        "flask-session",
        WIKIMEDIA_TIMEOUT=WIKI_TIMEOUT,
        WIKIMEDIA_WIKI_URL=scripted.base_url,
    )
