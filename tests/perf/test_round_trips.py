"""What a logged-in request costs Redis, counted, not timed (issue 12).

Round trips are counted with ``MONITOR`` on the private test server: one line per command a
client sent (a script's own commands show as ``[0 lua]`` and are not round trips). The cache of
record summaries is checked against a second app instance (another worker, with its own cache)
that changes or ends the login behind the first one's back.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from apps import make_app
from flask import Flask
from flask.testing import FlaskClient
from flask_session import Session
from redis.crc import key_slot

from flask_wikimedia.crypto import Sealer
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.login import REF_KEY
from flask_wikimedia.sessions import connect_redis, use_redis_sessions
from flask_wikimedia.state import get_state
from flask_wikimedia.store import LoginRecord, RedisLoginStore, new_reference
from flask_wikimedia.testing import login

SESSION_PREFIX = "perf:session:"
LOGIN_PREFIX = "perf:wikimedia:"
SETUPS = ("sealed-sessions", "flask-session")


def build(wiki: DevWiki, url: str, setup: str) -> Flask:
    """The test app on its own Redis client (as a separate worker has), in one session setup."""
    client = connect_redis(url)
    app = make_app(wiki, None, WIKIMEDIA_REDIS=client, WIKIMEDIA_KEY_PREFIX=LOGIN_PREFIX)
    if setup == "sealed-sessions":
        use_redis_sessions(app, client, SESSION_PREFIX)
    else:
        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=client, SESSION_KEY_PREFIX=SESSION_PREFIX
        )
        Session(app)
    return app


@contextmanager
def monitored(url_host: str, port: int) -> Iterator[list[str]]:
    """The commands clients send while the block runs, as MONITOR prints them."""
    lines: list[str] = []
    sock = socket.create_connection((url_host, port), timeout=5)
    sock.sendall(b"MONITOR\r\n")
    buffer = b""
    while b"\r\n" not in buffer:
        buffer += sock.recv(4096)
    assert buffer.startswith(b"+OK"), buffer
    buffer = buffer.split(b"\r\n", 1)[1]
    marker = f"end-of-monitoring-{time.monotonic_ns()}"
    try:
        yield lines
    finally:
        # A bare socket, not redis-py (whose HELLO would show among the counted commands).
        with socket.create_connection((url_host, port), timeout=5) as other:
            other.sendall(f"ECHO {marker}\r\n".encode())
            other.recv(1024)
        while marker.encode() not in buffer:
            buffer += sock.recv(65536)
        sock.close()
    for raw in buffer.decode().split("\r\n"):
        if marker in raw:
            break
        if raw.startswith("+") and "lua]" not in raw:
            lines.append(raw)


def command_of(line: str) -> str:
    return line.split("] ", 1)[1].split(" ", 1)[0].strip('"').upper()


def keys_of_script(line: str) -> list[str]:
    words = [w.strip('"') for w in line.split("] ", 1)[1].split(" ")]
    count = int(words[2])
    return words[3 : 3 + count]


@pytest.fixture(params=SETUPS)
def setup(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def app(devwiki: DevWiki, redis_server: Any, redis_client: redis.Redis, setup: str) -> Flask:
    return build(devwiki, redis_server.url, setup)


def logged_in(app: Flask, wiki: DevWiki) -> FlaskClient:
    client = app.test_client()
    assert login(client, wiki, "Alice").status_code == 303
    assert client.get("/private").status_code == 200  # the landing page: session settled
    return client


def test_a_logged_in_request_is_one_round_trip(app, devwiki, redis_server):
    """d2 = 1 and d = 1: the session, its tombstone, the login record and its tombstone in
    one EVALSHA, four declared keys in one hash slot; nothing written."""
    client = logged_in(app, devwiki)
    with monitored("127.0.0.1", redis_server.port) as sent:
        for _ in range(5):
            response = client.get("/edit")
            assert response.status_code == 200, response.text
    assert [command_of(line) for line in sent] == ["EVALSHA"] * 5, sent
    for line in sent:
        keys = keys_of_script(line)
        assert len(keys) == 4, line
        assert keys[2].startswith(LOGIN_PREFIX + "login:{"), keys
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys


def test_a_visitor_without_a_session_costs_redis_nothing(app, devwiki, redis_server):
    client = app.test_client()
    client.get("/")
    client.get("/private")
    with monitored("127.0.0.1", redis_server.port) as sent:
        assert client.get("/private").status_code == 302
    assert sent == []


def test_a_login_on_another_redis_is_read_on_its_own(devwiki, redis_server, redis_client):
    """Sessions in one Redis database and logins in another: no record is read with the
    session (its keys would name the wrong database); two round trips, still correct."""
    app = make_app(
        devwiki,
        None,
        WIKIMEDIA_REDIS=connect_redis(f"redis://127.0.0.1:{redis_server.port}/1"),
        WIKIMEDIA_KEY_PREFIX=LOGIN_PREFIX,
    )
    use_redis_sessions(app, connect_redis(redis_server.url), SESSION_PREFIX)
    client = logged_in(app, devwiki)
    with monitored("127.0.0.1", redis_server.port) as sent:
        assert client.get("/private").status_code == 200
    assert [command_of(line) for line in sent] == ["EVALSHA", "HMGET", "EXISTS"], sent
    redis.Redis(host="127.0.0.1", port=redis_server.port, db=1).flushdb()


def _ref(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        ref = sess[REF_KEY]
    assert isinstance(ref, str)
    return ref


def test_a_profile_changed_by_another_worker_is_served_at_once(app, devwiki, redis_server, setup):
    """Worker A has the profile cached; worker B re-reads it (a new version). A's next
    request shows B's profile, never its cached one."""
    client = logged_in(app, devwiki)
    assert "Alice" in client.get("/api/whoami").text
    ref = _ref(client)
    other = build(devwiki, redis_server.url, setup)
    store_b = get_state(other).store
    current = store_b.get(ref)
    assert current is not None
    profile = dict(current.record.profile, username="Alicia")
    changed = LoginRecord(**{**current.record.__dict__, "profile": profile})
    assert store_b.replace(ref, current.version, changed) is not None
    assert "Alicia" in client.get("/api/whoami").text


def test_a_record_rewritten_at_the_same_version_is_not_served_from_the_cache(
    app, devwiki, redis_server, redis_client
):
    """The cache entry is bound to the digest of the sealed value, not only to the version:
    another process that seals a different record under the same version and deadline (no
    code of ours does; a restored backup could) is read afresh."""
    client = logged_in(app, devwiki)
    assert "Alice" in client.get("/api/whoami").text
    store = get_state(app).store
    assert isinstance(store, RedisLoginStore)
    ref = _ref(client)
    key = store.record_key(ref)
    version, deadline = (int(v) for v in redis_client.hmget(key, ["v", "u"]))
    current = store.get(ref)
    assert current is not None
    profile = dict(current.record.profile, username="Alicia")
    changed = LoginRecord(**{**current.record.__dict__, "profile": profile})
    other = Sealer(app.secret_key, "login-record")  # another process, same secret
    sealed = other.seal(changed.encode(), f"{key}|{version}|{deadline}".encode())
    redis_client.hset(key, "d", sealed)
    assert "Alicia" in client.get("/api/whoami").text


def test_a_logout_in_another_worker_ends_the_cached_login(app, devwiki, redis_server, setup):
    client = logged_in(app, devwiki)
    assert client.get("/private").status_code == 200
    other = build(devwiki, redis_server.url, setup)
    get_state(other).store.delete(_ref(client))
    assert client.get("/private").status_code == 302


def test_a_page_decrypts_no_token(app, devwiki):
    """Once a record's summary is cached, rendering a protected page opens nothing: the
    tokens are decrypted only for a call to the wiki."""
    client = logged_in(app, devwiki)
    store = get_state(app).store
    assert isinstance(store, RedisLoginStore)
    opened: list[bytes] = []
    real_open = store.sealer.open

    def counting_open(sealed: bytes, associated: bytes) -> bytes | None:
        opened.append(associated)
        return real_open(sealed, associated)

    store.sealer.open = counting_open  # type: ignore[method-assign]
    for _ in range(3):
        assert client.get("/edit").status_code == 200
    assert opened == []
    assert len(store.cache) == 1


def test_a_login_from_before_the_binding_still_works(app, devwiki, redis_server):
    """A login stored under a random reference (before logins were bound to the session id)
    is read on its own: two round trips until the user logs in again, never logged out."""
    client = logged_in(app, devwiki)
    store = get_state(app).store
    current = store.get(_ref(client))
    assert current is not None
    legacy = new_reference()
    store.create(legacy, current.record)
    with client.session_transaction() as sess:
        sess[REF_KEY] = legacy
    with monitored("127.0.0.1", redis_server.port) as sent:
        assert "Alice" in client.get("/api/whoami").text
    assert [command_of(line) for line in sent] == ["EVALSHA", "HMGET", "EXISTS"], sent
