"""Shared fixtures: a private redis-server on a free port and a served development wiki.

Nothing here touches the machine's default Redis on 6379: each test session starts its own
server with persistence off, and tests get a flushed database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import redis
from apps import make_app
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from support import RedisProcess, started

from flask_wikimedia.devwiki import DevWiki

# Property tests: the normal run (`make test`, the README's command) is derandomised, so every
# fresh clone runs the same examples and passes or fails the same way; `make fuzz`
# (HYPOTHESIS_PROFILE=fuzz) draws new random examples, many more of them, to hunt for bugs.
# No deadline: the machine is shared and a slow example is not a failure. Tests set only what
# is theirs (e.g. health checks); examples and randomness come from the profile.
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile(
    "default",
    derandomize=True,
    max_examples=100,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")),
    deadline=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = started(RedisProcess.standalone())
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def redis_client(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    """A client on the private server, flushed before each test."""
    if redis_server.process is None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    yield client
    if redis_server.process is None:  # a test stopped it: bring it back for the next one
        redis_server.start()


# ``devwiki`` (a fresh development wiki served over real HTTP on an ephemeral port) comes from
# the extension's own pytest plugin, flask_wikimedia.testing, as it does for tool authors.


@pytest.fixture
def devwiki_139() -> Iterator[DevWiki]:
    """A development wiki that answers like MediaWiki 1.39 as observed."""
    wiki = DevWiki(flavor="1.39")
    wiki.start()
    yield wiki
    wiki.stop()


@pytest.fixture
def app(devwiki: DevWiki, redis_client: redis.Redis) -> Flask:
    """The tests' app (``tests/apps.py``) against ``devwiki``, with Flask-Session on Redis.
    A module that needs other settings or routes overrides it; ``client`` follows."""
    return make_app(devwiki, redis_client)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app`` (whichever ``app`` the module uses)."""
    return app.test_client()
