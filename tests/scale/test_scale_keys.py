"""The key layout on a Redis Cluster: the keys one operation touches share a hash slot, scripts
declare their keys, no command a cluster refuses; and a refresh lock lost in a failover does not
let two refreshes both write one login (docs/scaling.md)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import RedisCluster
from scalekit import app_on
from support import clone, login_due_for_refresh, session_ref, stored

from flask_wikimedia import sessions, store
from flask_wikimedia.api import user_session
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import login

PACKAGE = Path(store.__file__).resolve().parent
CSRF = "csrf-token-for-this-test"
#: Lua scripts: every key a script touches arrives in KEYS[] (a cluster routes by them).
SCRIPTS = {
    name: value
    for module in (store, sessions)
    for name, value in vars(module).items()
    if isinstance(value, str) and "redis.call(" in value
}


def all_keys(client: RedisCluster) -> list[bytes]:
    """Every key on every primary (a test may SCAN; the code under test never does)."""
    keys: list[bytes] = []
    for node in client.get_primaries():
        keys += node.redis_connection.scan_iter(count=1000)
    return keys


def test_there_are_scripts_to_check():
    assert {"_CAS", "_FAILED", "_UNLOCK", "_GET_WITH_TTL"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_take_every_key_from_keys(name):
    script = SCRIPTS[name]
    calls = re.findall(r"redis\.call\(\s*'(\w+)'\s*,\s*([^,)]+)", script)
    assert calls
    for command, first in calls:
        assert first.strip().startswith("KEYS["), f"{name}: {command} on {first!r}"
    assert ".." not in script  # no key name built by concatenation inside a script


def test_no_command_a_cluster_refuses_in_the_package():
    # KEYS and SCAN see one node's keys (and Toolforge refuses them); SELECT, MOVE and SWAPDB
    # do not exist on a cluster; a transaction or multi-key command across slots is refused.
    refused = re.compile(r"\.(keys|scan|scan_iter|select|move|swapdb|mget|mset|rename|watch)\(")
    for path in sorted(PACKAGE.rglob("*.py")):
        if "devwiki" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "client" in line or "pipe" in line:
                assert not refused.search(line), f"{path.name}:{number}: {line.strip()}"


def test_one_logins_keys_share_a_slot(devwiki, cluster_client):
    app = app_on("ours", devwiki, cluster_client)
    client = app.test_client()
    login(client, devwiki, "Alice")
    ref = session_ref(client)
    assert ref is not None
    st = get_state(app).store
    assert isinstance(st, store.RedisLoginStore)
    lock = st.acquire_lock(ref, 5)
    assert lock is not None
    with client.session_transaction() as sess:
        sess["_wikimedia_csrf"] = CSRF
    assert client.post("/auth/logout", data={"csrf_token": CSRF}).status_code == 303
    names = [key.decode() for key in all_keys(cluster_client)]
    record = st.record_key(ref)
    tag = record[record.index("{") : record.index("}") + 1]
    together = sorted(name for name in names if tag in name)
    # The tombstone a logout leaves and the lock are there (the record itself is gone).
    assert {name.split(":")[-2] for name in together} == {"gone", "lock"}
    # Every key we write has a hash tag; the keys that share one share a slot, on the server's
    # own reckoning: the login's record, lock and tombstone, a session and its tombstone.
    by_tag: dict[str, set[int]] = {}
    for name in names:
        assert re.search(r"\{[^}]+\}", name), name
        key_tag = name[name.index("{") : name.index("}") + 1]
        by_tag.setdefault(key_tag, set()).add(
            cluster_client.execute_command("CLUSTER KEYSLOT", name)
        )
    assert all(len(slots) == 1 for slots in by_tag.values())
    assert cluster_client.keyslot(record) in by_tag[tag]
    session_tombstones = [n for n in names if n.startswith("tests:session:gone:")]
    assert session_tombstones  # the logged-out session's, beside where the session was
    # Sessions, logins and single-use states spread over the cluster's nodes.
    assert len({slot for slots in by_tag.values() for slot in slots}) > 1


@pytest.mark.parametrize("how", ["flask-session", "ours"])
def test_a_lost_lock_does_not_let_two_refreshes_both_write(devwiki, scaled_redis, how):
    """Request A refreshes under the lock; the lock vanishes (as with a primary that died
    before replicating it); request B takes it and refreshes too. Both end logged in, the
    record is written by one refresh only, and its tokens work at the wiki."""
    app = app_on(how, devwiki, scaled_redis)

    @app.get("/wiki-name")
    def wiki_name() -> str:
        answer = user_session().get_json(action="query", meta="userinfo")
        return str(answer["query"]["userinfo"]["name"])

    client = app.test_client()
    before = login_due_for_refresh(client, devwiki)
    ref = session_ref(client)
    assert ref is not None
    st = get_state(app).store
    assert isinstance(st, store.RedisLoginStore)
    devwiki.inject_fault("token", "hang", delay=1.0)  # A's refresh only: B's answers at once
    answers: dict[str, Any] = {}
    a = threading.Thread(target=lambda: answers.update(a=clone(client).get("/private")))
    a.start()
    deadline = time.monotonic() + 5
    while devwiki.calls["token:refresh_token"] == 0:
        assert time.monotonic() < deadline, "request A never reached the wiki"
        time.sleep(0.01)
    lock_key = st._name("lock", ref)
    assert scaled_redis.delete(lock_key) == 1  # the failover lost it
    b = clone(client).get("/private")
    a.join(10)
    assert b.status_code == 200 and b.text == "private page of Alice"
    answer_a = answers["a"]
    assert answer_a.status_code == 200 and answer_a.text == "private page of Alice"
    assert devwiki.calls["token:refresh_token"] == 2  # two refreshes reached the wiki...
    after = stored(app, client)
    assert after is not None
    assert after.version == before.version + 1  # ...one of them wrote
    assert after.record.access_token != before.record.access_token
    # The tokens kept work at the wiki: no third refresh, no logout.
    assert client.get("/wiki-name").text == "Alice"
    assert devwiki.calls["token:refresh_token"] == 2


def test_a_protected_request_is_one_round_trip(devwiki, scaled_redis, monkeypatch):
    """Session, session tombstone, record and record tombstone share one slot: the session's
    script reads all four (issue 12's one round trip), on a cluster as behind Sentinel. The
    store's own read (a pipeline: the second round trip) is made to fail, so only the one-trip
    read can serve the page."""
    app = app_on("ours", devwiki, scaled_redis)
    client = app.test_client()
    login(client, devwiki, "Alice")
    store_client = get_state(app).store.client

    def second_trip(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the login record was read in a second round trip")

    monkeypatch.setattr(store_client, "pipeline", second_trip)
    assert client.get("/private").text == "private page of Alice"


def test_same_server_knows_one_cluster_from_another(redis_cluster, cluster_client):
    other = redis_cluster.client()
    try:
        assert sessions._same_server(cluster_client, other)  # two clients, one cluster
        assert not sessions._same_server(cluster_client, sessions.connect_redis("redis://x/0"))
    finally:
        other.close()


def test_same_server_tells_two_sentinel_primaries_apart(sentinel_group, sentinel_client):
    """Sentinel clients name no host: the primary they follow decides (else a login store on
    another primary would be read, wrongly, in the session's round trip)."""
    sentinel = sentinel_group.sentinel()
    same, other = sentinel.master_for(sentinel_group.name), sentinel.master_for("another")
    assert sessions._same_server(sentinel_client, same)
    assert not sessions._same_server(sentinel_client, other)
