"""Redis trouble that only replicated setups have: a replica that lost its primary answers
reads with an error (MASTERDOWN), a cluster loses a primary. Either is a fast 503 that keeps the
login, never a 500 and never a logout (DESIGN invariant 7)."""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel
from scalekit import REPO, app_on

from bench.processes import RedisProcess, free_port, server_args
from bench.topologies import LocalCluster
from flask_wikimedia.errors import StoreUnavailable
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import login

#: Invariant 7: Redis trouble is a 503 within 3 s.
SLOWEST_ALLOWED = 3.0
ARTIFACTS = REPO / "tests" / "artifacts"


def record(name: str, seen: list[tuple[int, float]], started: float, ended: float) -> None:
    """What docs/scaling.md publishes: the 503s, the window they span, the slowest answer."""
    ARTIFACTS.mkdir(exist_ok=True)
    figures = {
        "requests": len(seen),
        "status_503": sum(1 for status, _ in seen if status == 503),
        "window_seconds": round(ended - started, 2),
        "slowest_seconds": round(max(elapsed for _, elapsed in seen), 3),
    }
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(figures, indent=1))


@pytest.fixture
def stale_replica() -> Iterator[redis.Redis]:
    """A replica of a primary that is gone, told not to serve stale data: every read is
    answered ``MASTERDOWN`` (an error reply, like a cluster's ``CLUSTERDOWN``)."""
    workdir = Path(tempfile.mkdtemp(prefix="fw-stale-replica-"))
    port = free_port()
    args = server_args(port, workdir, "--replicaof", "127.0.0.1", str(free_port()))
    server = RedisProcess(port, workdir, args)
    server.start()
    client = server.client(socket_timeout=1)
    client.config_set("replica-serve-stale-data", "no")  # after start: PING is refused too
    yield client
    server.stop()


def test_an_error_reply_other_than_wrongtype_is_trouble_not_an_absent_login(devwiki, stale_replica):
    with pytest.raises(redis.exceptions.MasterDownError):
        stale_replica.get("anything")
    app = app_on("ours", devwiki, stale_replica)
    client = app.test_client()
    client.set_cookie("session", "S" * 43)  # a session id of the right shape
    page = client.get("/private")
    assert page.status_code == 503  # not a 302 to the login page: nobody was logged out
    with pytest.raises(StoreUnavailable):
        get_state(app).store.get("a-login-reference")


def _heal(cluster: LocalCluster) -> None:
    for node in cluster.nodes:
        if not node.running:
            node.start()  # it rejoins from its nodes.conf, as a replica of its successor
    deadline = time.monotonic() + 60
    while True:
        try:
            infos = [n.client().cluster("info") for n in cluster.nodes]
            healthy = all(i["cluster_state"] == "ok" for i in infos)
            if healthy and cluster._replicas_in_sync():
                return
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, "the cluster did not heal"
        time.sleep(0.1)


def _until_recovered(client: FlaskClient, since: float) -> tuple[list[tuple[int, float]], float]:
    """GET /private until 20 answers in a row are 200 (at most 30 s after ``since``): each
    answer's (status, seconds), and when the last one that was not a 200 came (or ``since``)."""
    seen: list[tuple[int, float]] = []
    last_503 = since
    deadline = since + 30
    recovered = 0
    while recovered < 20:
        assert time.monotonic() < deadline, f"no recovery; statuses {seen[-10:]}"
        started = time.monotonic()
        status = client.get("/private").status_code
        seen.append((status, time.monotonic() - started))
        recovered = recovered + 1 if status == 200 else 0
        if status != 200:
            last_503 = time.monotonic()
    return seen, last_503


def test_a_cluster_primary_that_dies_is_a_short_run_of_503s(devwiki, redis_cluster, cluster_client):
    app = app_on("ours", devwiki, cluster_client)
    client = app.test_client()
    login(client, devwiki, "Alice")
    assert client.get("/private").status_code == 200
    # Kill the primary that holds this session's key.
    cookie = client.get_cookie("session")
    assert cookie is not None
    session_key = app.session_interface._get_store_id(cookie.value)
    assert cluster_client.exists(session_key) == 1
    holder = cluster_client.get_node_from_key(session_key)
    victim = next(node for node in redis_cluster.nodes if node.port == holder.port)
    try:
        victim.kill()
        killed = time.monotonic()
        seen, last_503 = _until_recovered(client, killed)
    finally:
        _heal(redis_cluster)
    record("cluster-primary-killed", seen, killed, last_503)
    assert {status for status, _ in seen} <= {200, 503}, seen
    assert 503 in {status for status, _ in seen}  # the dead primary was really this session's
    assert max(elapsed for _, elapsed in seen) < SLOWEST_ALLOWED
    assert isinstance(cluster_client, RedisCluster)
    assert client.get("/private").text == "private page of Alice"  # still logged in


@pytest.mark.parametrize("made", ["with the recommended timeouts", "bare"])
def test_a_hung_sentinel_primary_is_a_short_run_of_fast_503s(
    devwiki, sentinel_group, sentinel_client, made
):
    """SIGSTOP, not SIGKILL: the primary keeps its connections open and answers nothing. Each
    request gives up after the 1-second timeout (a 503), the sentinels promote a replica, and
    the user is logged in as before; the old primary, resumed, becomes a replica.

    ``bare``: a client made with no timeouts at all (``Sentinel(addresses).master_for(name)``,
    redis-py's defaults wait forever): the extension bounds its own copy, sentinels included."""
    handed_in = sentinel_client
    if made == "bare":
        handed_in = Sentinel(sentinel_group.sentinel_addresses).master_for(sentinel_group.name)
    app = app_on("ours", devwiki, handed_in)
    client = app.test_client()
    login(client, devwiki, "Alice")
    time.sleep(0.2)  # replicated (asynchronously) before the primary hangs
    assert client.get("/private").status_code == 200
    hung = sentinel_group.primary()
    assert hung.process is not None
    hung.process.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        seen, last_503 = _until_recovered(client, stopped)
    finally:
        hung.process.send_signal(signal.SIGCONT)
        sentinel_group.heal()
    record("sentinel-primary-hung", seen, stopped, last_503)
    assert {status for status, _ in seen} <= {200, 503}, seen
    assert 503 in {status for status, _ in seen}  # the hang was really hit
    assert max(elapsed for _, elapsed in seen) < SLOWEST_ALLOWED
    assert client.get("/private").text == "private page of Alice"
