"""Invariant 7 with plain Flask-Session, set up as its docs show (issue 9 item 8, catalogue FS-1).

``SESSION_TYPE = "redis"``, ``SESSION_REDIS = redis.Redis(..., socket_timeout=1)`` (or with no
timeout at all), ``Session(app)``, and ``Wikimedia(app)`` before or after it. Before the fix a
hung Redis gave a 500 after 14 s (redis-py's default retries) and a stopped one a 500 after
3 s (Flask-Session's own ``open_session`` raises before any error handler applies).
"""

from __future__ import annotations

import pytest
import redis
from apps import make_app
from redis.sentinel import SentinelConnectionPool
from securitykit import (
    assert_clean_page,
    build_app,
    is_logged_in,
    log_in,
    paused,
    requests_needing_redis,
    timed,
)

from flask_wikimedia.sessions import SafeRedisSessionInterface, bounded_client

#: The invariant's bound: a 503 within 3 s.
BOUND = 3.0
ORDERS = ("session-then-wikimedia", "wikimedia-then-session")
CLIENTS = ("docs-client", "no-timeout-client")


def docs_client(redis_server, kind: str) -> redis.Redis:
    """A client as a developer following Flask-Session's docs writes it."""
    if kind == "docs-client":
        return redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=1)
    return redis.Redis(host="127.0.0.1", port=redis_server.port)


@pytest.fixture(params=[(o, c) for o in ORDERS for c in CLIENTS], ids="-".join)
def plain_app(request, wiki, redis_server, redis_client):
    order, kind = request.param
    client = docs_client(redis_server, kind)
    if order == "session-then-wikimedia":
        app = make_app(wiki, client, WIKIMEDIA_TIMEOUT=(0.5, 1.0))  # Session(app), Wikimedia(app)
    else:
        # Wikimedia(app), then Session(app): hardened at the first request.
        app = build_app(wiki, client, "flask-session", WIKIMEDIA_TIMEOUT=(0.5, 1.0))
    yield app
    client.close()


def assert_fast_503(response, elapsed: float) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert elapsed < BOUND, elapsed
    assert response.headers.get("Retry-After")
    assert_clean_page(response)


def test_flask_session_interface_is_replaced_by_the_sealed_one(plain_app, wiki):
    """Whatever the order, the first request runs on the hardened interface."""
    client = plain_app.test_client()
    assert log_in(client, wiki, "Alice").status_code == 303
    assert isinstance(plain_app.session_interface, SafeRedisSessionInterface)
    assert is_logged_in(client)


def test_hung_redis_is_a_fast_503_and_the_login_survives(plain_app, wiki, redis_server):
    """SIGSTOPped Redis: every request that needs it is a 503 within 3 s, never a 500;
    resumed, the same browser is still logged in."""
    client = plain_app.test_client()
    assert log_in(client, wiki, "Alice").status_code == 303
    requests = requests_needing_redis(client, wiki)
    with paused(redis_server):
        for request in requests:
            assert_fast_503(*timed(request))
    assert is_logged_in(client)
    assert client.get("/private").text == "private page of Alice"


def test_stopped_redis_is_a_fast_503_and_login_works_when_it_is_back(plain_app, wiki, redis_server):
    """Stopped Redis: a 503 within 3 s (not Flask-Session's 500); started again (empty),
    the user logs in again without a restart of the app."""
    client = plain_app.test_client()
    assert log_in(client, wiki, "Alice").status_code == 303
    redis_server.stop()
    try:
        for path in ("/private", "/me", "/api/whoami"):
            response, elapsed = timed(lambda p=path: client.get(p))
            assert_fast_503(response, elapsed)
    finally:
        redis_server.start()
    assert log_in(client, wiki, "Alice").status_code == 303
    assert is_logged_in(client)


def test_the_callers_client_is_left_as_it_was(wiki, redis_server, redis_client):
    """We work on a bounded copy: the developer's own client keeps its settings."""
    client = docs_client(redis_server, "no-timeout-client")
    before = dict(client.connection_pool.connection_kwargs)
    app = make_app(wiki, client)
    assert client.connection_pool.connection_kwargs == before
    used = app.session_interface.client
    assert used is not client
    kwargs = used.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] <= 1.0
    assert kwargs["socket_connect_timeout"] <= 1.0
    assert kwargs["retry"].get_retries() == 0
    client.close()


def test_a_blocking_pool_waits_no_longer_than_the_bound(caplog):
    """Waiting for a free connection of a ``BlockingConnectionPool`` counts against the bound
    too (its default is 20 s)."""
    blocking = redis.Redis(
        connection_pool=redis.BlockingConnectionPool(host="127.0.0.1", port=9, timeout=20)
    )
    copy = bounded_client(blocking)
    assert isinstance(copy.connection_pool, redis.BlockingConnectionPool)
    assert copy.connection_pool.timeout <= 1.0
    assert bounded_client(blocking) is copy  # one copy (one pool) per client


def test_a_sentinel_client_is_bounded_sentinels_included():
    """A ``Sentinel.master_for`` client made with redis-py's defaults (no timeouts, retries):
    the copy asks the same sentinels for the same primary, each call bounded to 1 s without
    retries; the caller's client is untouched. (Real failovers: tests/scale.)"""
    sentinels = [("127.0.0.1", 9), ("127.0.0.2", 9)]
    original = redis.Sentinel(sentinels, min_other_sentinels=1, password="pw").master_for(
        "tool", db=3
    )
    before = dict(original.connection_pool.connection_kwargs)
    copy = bounded_client(original)
    assert copy is not original
    assert original.connection_pool.connection_kwargs == before
    pool = copy.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.is_master
    assert pool.service_name == "tool"
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"]) == (3, "pw")
    assert kwargs["socket_timeout"] <= 1.0 and kwargs["socket_connect_timeout"] <= 1.0
    assert kwargs["retry"].get_retries() == 0
    manager = pool.sentinel_manager
    assert manager.min_other_sentinels == 1
    asked = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in manager.sentinels
    ]
    assert asked == sentinels
    for sentinel in manager.sentinels:
        own = sentinel.connection_pool.connection_kwargs
        assert own["socket_timeout"] <= 1.0 and own["socket_connect_timeout"] <= 1.0
    assert bounded_client(original) is copy  # one copy (one pool) per client


def test_a_sentinel_replica_client_is_left_alone_with_a_warning(caplog):
    """A replica pool (``slave_for``) is not something the extension writes through: used as
    it is, with a warning that says what to set."""
    replica = redis.Sentinel([("127.0.0.1", 9)]).slave_for("tool")
    assert bounded_client(replica) is replica
    assert any("socket_timeout" in r.getMessage() for r in caplog.records)
