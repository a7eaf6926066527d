"""The tool's Redis client, from the one setting ``REDIS_URL``: one server, a Sentinel group, or
a Redis Cluster, chosen by the URL's scheme (docs/scaling.md):

``redis://[user:password@]host:port/db`` (or ``rediss://``, ``unix://``)
    one Redis server, as on Toolforge.
``redis+sentinel://[user:password@]host:port,host:port,.../<primary name>[/db]``
    the sentinels to ask (comma-separated) and the name of the primary they watch. The password
    is the data servers'; sentinels that have one of their own take it as
    ``?sentinel_password=...`` (``rediss+sentinel://`` for TLS to the data servers).
``redis+cluster://[user:password@]host:port,host:port,...``
    any nodes of a Redis Cluster (the client discovers the rest; ``rediss+cluster://`` for TLS).

One variable, so that ``toolforge envvars`` or any deployment sets a single secret, and the
rules in :mod:`template_tool.settings` (a key prefix, Redis required outside debug) apply alike.
Every client fails fast (one second per connect or reply, no retry storms): Redis trouble is a
503 within about three seconds, never a hung worker (DESIGN invariant 7).
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from flask_wikimedia.sessions import connect_redis

#: Seconds for a connect or one reply, on data servers and cluster nodes.
TIMEOUT = 1.0
#: Seconds for a sentinel to answer "who is the primary?" (asked on every new connection).
SENTINEL_TIMEOUT = 0.5

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def _nodes(netloc: str, url: str) -> list[tuple[str, int]]:
    hosts = netloc.rpartition("@")[2]
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise RuntimeError(
                f"REDIS_URL {_redacted(url)!r}: {item!r} is not host:port (list the nodes as "
                "host:port,host:port,...)"
            )
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _credentials(netloc: str) -> tuple[str | None, str | None]:
    userinfo, at, _ = netloc.rpartition("@")
    if not at:
        return None, None
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{hosts}{parts.path}"


def connect_sentinel(url: str) -> redis.Redis:
    """A client for the primary the sentinels in ``url`` name; it follows failovers."""
    parts = urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RuntimeError(
            f"REDIS_URL {_redacted(url)!r}: name the primary after the sentinels, e.g. "
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
        )
    username, password = _credentials(parts.netloc)
    sentinel_password = parse_qs(parts.query).get("sentinel_password", [None])[0]
    sentinel = Sentinel(
        _nodes(parts.netloc, url),
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "password": sentinel_password,
        },
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        username=username,
        password=password,
        db=int(path[1]) if len(path) == 2 else 0,
        ssl=parts.scheme == "rediss+sentinel",
    )
    return sentinel.master_for(path[0])


def connect_cluster(url: str) -> RedisCluster:
    """A Redis Cluster client seeded with the nodes in ``url``."""
    parts = urlsplit(url)
    if parts.path.strip("/"):
        raise RuntimeError(
            f"REDIS_URL {_redacted(url)!r}: a Redis Cluster has no databases; drop the /path"
        )
    username, password = _credentials(parts.netloc)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in _nodes(parts.netloc, url)],
        # No retry: a node that is gone fails this request at once (a 503) and the next one
        # finds the new topology; MOVED and ASK redirections are followed all the same.
        retry=Retry(NoBackoff(), 0),
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        health_check_interval=30,
        username=username,
        password=password,
        ssl=parts.scheme == "rediss+cluster",
    )


def connect(url: str) -> redis.Redis | RedisCluster:
    """The client ``REDIS_URL`` describes (see the module docstring)."""
    scheme = urlsplit(url).scheme
    if scheme in SENTINEL_SCHEMES:
        return connect_sentinel(url)
    if scheme in CLUSTER_SCHEMES:
        return connect_cluster(url)
    return connect_redis(url, timeout=TIMEOUT)
