"""One Redis Cluster (3 primaries + 3 replicas) and one Sentinel group (1 primary, 2 replicas,
3 sentinels) per test session, started from Debian's binaries on free loopback ports
(bench/topologies.py), shared by every test here and stopped at the end.

Each test gets a flushed topology and a client made the way people already make them:
``RedisCluster(startup_nodes=...)`` and ``Sentinel([...]).master_for(name)``, with the timeouts
docs/scaling.md recommends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from support import started

from bench.topologies import LocalCluster, LocalSentinelGroup

# The sample tool's test helpers (tests/tool/toolkit.py), for the tool on each topology.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tool"))

#: What docs/scaling.md recommends: a Redis that does not answer within a second is down.
TIMEOUTS = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    cluster = started(LocalCluster())
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[LocalSentinelGroup]:
    group = started(LocalSentinelGroup())
    yield group
    group.stop()


@pytest.fixture
def cluster_client(redis_cluster: LocalCluster) -> Iterator[RedisCluster]:
    """A cluster client on the flushed cluster."""
    redis_cluster.flush()
    client = redis_cluster.client(**TIMEOUTS)
    yield client
    client.close()


@pytest.fixture
def sentinel_client(sentinel_group: LocalSentinelGroup) -> Iterator[redis.Redis]:
    """A Sentinel-managed client for the group's primary, on the flushed group."""
    sentinel_group.flush()
    client = sentinel_group.sentinel(**TIMEOUTS).master_for(sentinel_group.name)
    yield client
    client.close()


@pytest.fixture(params=["cluster", "sentinel"])
def scaled_redis(request: pytest.FixtureRequest) -> redis.Redis | RedisCluster:
    """Each test that takes this runs once on the cluster and once on the Sentinel group."""
    name = "cluster_client" if request.param == "cluster" else "sentinel_client"
    client: redis.Redis | RedisCluster = request.getfixturevalue(name)
    return client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Flask-Session answers a client it does not know (a RedisCluster) by warning and quietly
    # connecting to localhost:6379, which is not ours to touch: make that warning a failure
    # before the stray client is created.
    here = str(__file__).rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.filterwarnings("error:No valid Redis instance"))
