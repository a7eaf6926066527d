"""The login store's contract, held by both stores (Redis, and the in-process one that stands in
during development): the compare-and-set that keeps a slow request from writing old tokens back,
the single-use claim behind the OAuth state, and the refresh lock (DESIGN invariants 4 and 5).

The app-level tests (test_refresh.py, security/) show these through logins; here each promise is
checked directly, on each store, so a store that breaks one fails here by name.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
import redis

from flask_wikimedia.crypto import KeyNamer, Sealer
from flask_wikimedia.store import LoginRecord, LoginStore, MemoryLoginStore, RedisLoginStore

SECRET = "a store-contract secret that is long enough"


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[LoginStore]:
    if request.param == "memory":
        yield MemoryLoginStore(ttl=60)
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    yield RedisLoginStore(
        client, "contract:", Sealer(SECRET, "login-record"), 60, KeyNamer(SECRET, "login")
    )


def record(token: str) -> LoginRecord:
    return LoginRecord(
        access_token=token,
        refresh_token="refresh-" + token,
        expires_at=time.time() + 3600,
        profile={"username": "Alice", "sub": "1"},
        profile_at=time.time(),
    )


def test_replace_writes_only_over_the_version_it_read(store):
    first = store.create("ref", record("one"))
    second = store.replace("ref", first.version, record("two"))
    assert second is not None and second.version == first.version + 1
    # A request that read version 1 before the refresh wrote version 2 loses its write.
    assert store.replace("ref", first.version, record("stale")) is None
    now = store.get("ref")
    assert now is not None
    assert (now.version, now.record.access_token) == (second.version, "two")


def test_replace_never_brings_a_logged_out_record_back(store):
    first = store.create("ref", record("one"))
    store.delete("ref")
    assert store.replace("ref", first.version, record("again")) is None
    assert store.get("ref") is None


def test_a_state_is_claimed_once(store):
    assert store.claim_once("state-a", 60) is True
    assert store.claim_once("state-a", 60) is False
    assert store.claim_once("state-b", 60) is True  # another state is its own


def test_the_refresh_lock_has_one_holder_at_a_time(store):
    token = store.acquire_lock("ref", 5)
    assert token is not None
    assert store.acquire_lock("ref", 5) is None
    assert store.acquire_lock("other", 5) is not None  # locks are per login
    store.release_lock("ref", "not-the-holders-token")
    assert store.acquire_lock("ref", 5) is None  # only the holder releases it
    store.release_lock("ref", token)
    assert store.acquire_lock("ref", 5) is not None


def test_a_lock_whose_holder_died_expires(store):
    assert store.acquire_lock("ref", 0.2) is not None
    time.sleep(0.3)
    assert store.acquire_lock("ref", 5) is not None


def test_a_record_keeps_what_was_written(store):
    written = dataclasses.replace(record("one"), access_secret="s3cr3t", oauth_version="1.0a")
    store.create("ref", written)
    got = store.get("ref")
    assert got is not None
    assert got.record.access_token == "one"
    assert got.record.refresh_token == "refresh-one"
    assert (got.record.oauth_version, got.record.access_secret) == ("1.0a", "s3cr3t")
