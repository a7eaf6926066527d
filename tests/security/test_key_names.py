"""Key names reveal nothing, and dumped values cannot bring a logout back (DESIGN invariant 11,
issue 9 item 1, catalogue KN-*).

The neighbour here has what Toolforge's shared Redis allows through replication commands: every
key name and value (a full dump), and the right to write any key. We give the test the same:
``KEYS``, ``DUMP``/``RESTORE`` and ``GET``/``SET`` on the private test server.
"""

from __future__ import annotations

import hashlib
import math
import time

import pytest
import securitykit as kit
from flask import Flask
from redis.crc import key_slot

from flask_wikimedia.crypto import KeyNamer, Sealer
from flask_wikimedia.sessions import SafeRedisSessionInterface
from flask_wikimedia.state import get_state
from flask_wikimedia.store import LoginRecord, RedisLoginStore


def _session_id(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def _secrets_a_browser_holds(app: Flask, client, states: list[str]) -> list[str]:
    """Every value the browser (or the wiki's redirect) carried, and the tokens behind them."""
    ref = kit.session_ref(client)
    assert ref
    record = get_state(app).store.get(ref).record
    found = [ref, record.access_token, record.refresh_token or ""]
    sid = _session_id(client)
    if sid and isinstance(app.session_interface, SafeRedisSessionInterface):
        found.append(sid)
    for state in states:
        # The state, and the unkeyed digest the callback claims it under (anyone can compute
        # it from a state seen in a URL, so it is as good as the state in a key name).
        found += [state, hashlib.sha256(state.encode()).hexdigest()]
    return [value for value in found if value]


@pytest.mark.parametrize("setup", kit.SESSION_SETUPS)
def test_a_full_dump_while_logged_in_holds_no_browser_value_in_any_key_name(
    wiki, fast_redis, setup
):
    """KN-1: log in (a used state, a lock taken, a pending login in another tab), dump every
    key: no key name contains the session id, the login reference, a state or its plain
    hash, or a token; no value contains a reference, session id or token in the clear."""
    app = kit.build_app(wiki, fast_redis, setup)
    client = app.test_client()
    first = kit.begin(client, "/private")
    kit.deliver(client, kit.approve(wiki, first, "Alice"))
    second = kit.begin(client, "/me")  # another tab's pending login, not finished
    store = get_state(app).store
    assert store.acquire_lock(kit.session_ref(client), 15)  # as during a refresh
    assert kit.is_logged_in(client)
    names = kit.keys(fast_redis)
    assert any(b":login:" in k for k in names)
    assert any(b":once:" in k for k in names)
    assert any(b":lock:" in k for k in names)
    secrets = _secrets_a_browser_holds(app, client, [kit.state_of(first), kit.state_of(second)])
    pending = client.get_cookie(kit.PENDING_COOKIE, path="/auth")
    if pending:
        secrets.append(pending.value[:40])
    for name in names:
        for secret in secrets:
            assert secret.encode() not in name, (name, "holds a value the browser holds")
    values = kit.raw_values(fast_redis)
    for secret in secrets:
        assert secret.encode() not in values
    for name in names:  # and still the secret prefix on every key
        assert name.startswith((kit.SESSION_PREFIX.encode(), kit.LOGIN_PREFIX.encode()))


def _dump_everything(client) -> list[tuple[bytes, bytes, int]]:
    return [(k, client.dump(k), client.pttl(k)) for k in kit.keys(client)]


def _get_everything(client) -> list[tuple[bytes, bytes, object]]:
    out: list[tuple[bytes, bytes, object]] = []
    for key in kit.keys(client):
        kind = client.type(key)
        out.append((key, kind, client.get(key) if kind == b"string" else client.hgetall(key)))
    return out


@pytest.mark.parametrize("how", ["restore-with-ttl", "restore-forever", "set"])
@pytest.mark.parametrize("setup", kit.SESSION_SETUPS)
def test_writing_a_dump_back_after_logout_does_not_log_the_old_cookie_in(
    wiki, fast_redis, setup, how
):
    """KN-2: a neighbour dumps every key while Alice is logged in; Alice logs out; the
    neighbour writes every dumped value back (RESTORE with the old TTLs, RESTORE with none,
    or plain SET/HSET): Alice's old cookie is still logged out. Each login's tombstone was
    not in the dump, and a record written back without a TTL is dead by its sealed deadline
    before the tombstone expires. The session's data does not come back either."""
    app = kit.build_app(wiki, fast_redis, setup)
    client = app.test_client()
    assert kit.log_in(client, wiki, "Alice").status_code == 303
    assert client.get("/probe/remember").status_code == 200
    assert kit.is_logged_in(client)
    old_cookies = {c.key: c.value for c in client._cookies.values()}
    dumped = _dump_everything(fast_redis)
    plain = _get_everything(fast_redis)
    assert kit.log_out(client).status_code == 303
    if how == "set":
        for key, kind, value in plain:
            fast_redis.delete(key)
            if kind == b"string":
                fast_redis.set(key, value)
            else:
                fast_redis.hset(key, mapping=value)
    else:
        for key, value, pttl in dumped:
            ttl = pttl if how == "restore-with-ttl" and pttl > 0 else 0
            fast_redis.restore(key, ttl, value, replace=True)
    replay = app.test_client()
    for name, value in old_cookies.items():
        replay.set_cookie(name, value)
    assert not kit.is_logged_in(replay)
    assert replay.get("/private").status_code == 302
    assert "Logged out" in replay.get("/me").text
    if setup != "cookie-session":  # (a signed cookie carries its own data: nothing to restore)
        # Nor does the session itself come back: it left a tombstone too.
        with replay.session_transaction() as restored:
            assert "remembered" not in restored


def test_a_written_back_record_outlives_no_tombstone(fast_redis):
    """KN-2: the sealed deadline is what stops a record written back with no TTL once the
    tombstone has expired: the record reads as absent after its lifetime, and moving the
    deadline breaks the seal."""
    store = RedisLoginStore(
        fast_redis,
        kit.LOGIN_PREFIX,
        Sealer("s" * 40, "login-record"),
        3,
        KeyNamer("s" * 40, "login"),
    )
    ref = "q" * 43
    record = LoginRecord("at", "rt", math.inf, {"sub": "1", "username": "Alice"}, time.time())
    store.create(ref, record)
    key = store.record_key(ref)
    dumped = fast_redis.dump(key)
    store.delete(ref)
    assert store.get(ref) is None
    # Later than the tombstone's lifetime (deleted here, as expiry would): the record is
    # written back with no TTL at all.
    fast_redis.delete(*[k for k in kit.keys(fast_redis) if b":gone:" in k])
    fast_redis.restore(key, 0, dumped, replace=True)
    until = int(fast_redis.hget(key, "u"))
    fast_redis.hset(key, "u", until + 3_600_000)  # a neighbour cannot move it: it is sealed
    assert store.get(ref) is None
    fast_redis.hset(key, "u", until)
    time.sleep(max(0.0, until / 1000 - time.time()) + 0.2)
    assert store.get(ref) is None
    assert fast_redis.ttl(key) == -1  # still there, yet dead


def test_keys_of_one_login_share_a_hash_slot(wiki, fast_redis):
    """KN-3: the record, its lock and its tombstone are touched together (scripts,
    transactions): one Redis Cluster slot, through the hash tag."""
    app = kit.build_app(wiki, fast_redis, "sealed-sessions")
    client = app.test_client()
    kit.log_in(client, wiki, "Alice")
    ref = kit.session_ref(client)
    store = get_state(app).store
    assert store.acquire_lock(ref, 15)
    record = store.record_key(ref)
    store.delete(ref)
    related = [
        k for k in kit.keys(fast_redis, kit.LOGIN_PREFIX + "*") if b":lock:" in k or b":gone:" in k
    ]
    assert len(related) == 2
    assert {key_slot(k) for k in related} == {key_slot(record.encode())}


@pytest.mark.parametrize("setup", ["flask-session", "sealed-sessions"])
def test_cookies_from_before_the_change_read_as_logged_out(wiki, fast_redis, setup):
    """KN-4: a session stored under the old name (``<prefix><sid>``) and a login record
    under ``login:<ref>``: the old cookie is anonymous, with a new session, never a 500."""
    app = kit.build_app(wiki, fast_redis, setup)
    app.test_client().get("/")  # Session(app) came after Wikimedia(app): hardened at first use
    interface = app.session_interface
    assert isinstance(interface, SafeRedisSessionInterface)
    sid = "o" * 43
    ref = "r" * 43
    old_key = kit.SESSION_PREFIX + sid
    fast_redis.set(old_key, interface.seal(old_key, {"_wikimedia_ref": ref}), ex=600)
    fast_redis.hset(f"{kit.LOGIN_PREFIX}login:{ref}", mapping={"v": 1, "d": b"x" * 40})
    client = app.test_client()
    client.set_cookie("session", sid)
    response = client.get("/private")
    assert response.status_code == 302
    assert client.get("/me").status_code == 200
    assert client.get("/probe/remember").status_code == 200
    assert _session_id(client) != sid


def test_key_names_are_keyed_and_separated_by_purpose():
    """KN-5: the same value gets unrelated names under another secret or another purpose,
    and a name is not a plain hash of the value."""
    value = "a" * 43
    one = KeyNamer("s" * 40, "session-id").name(value)
    assert one == KeyNamer("s" * 40, "session-id").name(value)
    assert one != KeyNamer("t" * 40, "session-id").name(value)
    assert one != KeyNamer("s" * 40, "login").name(value)
    assert value not in one
    assert hashlib.sha256(value.encode()).hexdigest() not in one
    assert len(one) == math.ceil(32 * 4 / 3)
