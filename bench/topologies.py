"""Redis topologies on loopback: a 3-primary + 3-replica Redis Cluster and a Sentinel group
(one primary, two replicas, three sentinels), from Debian's ``redis-server`` and
``redis-sentinel`` binaries, on free ports, persistence off, in a temporary directory.

Used by the benchmark's cluster line and by the tests in ``tests/scale/`` (one cluster and one
Sentinel group per test session). Every process is one we started, and is stopped by its id;
nothing touches the machine's own Redis on 6379.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from .processes import (
    RedisProcess,
    TopologyError,
    binary,
    free_port,
    server_args,
    wait_until,
)

#: Short timings so that a test session sees a failover within seconds: a primary that does not
#: answer for a second is down (production values are tens of seconds; see docs/scaling.md).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
CLUSTER_NODE_TIMEOUT_MS = 2000
SENTINEL_MASTER = "fwmaster"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too. Redis refuses ports above
    55535 for cluster nodes; below the kernel's ephemeral range, other programs' outgoing
    connections cannot take them meanwhile."""
    for _ in range(1000):
        port = random.randrange(20000, 30000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise TopologyError("no free port pair for a cluster node")


@dataclass
class LocalCluster:
    """A Redis Cluster of ``primaries`` primaries, each with one replica."""

    primaries: int = 3
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fw-cluster-")))
    nodes: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node's URL: a cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def client(self, **kwargs: object) -> RedisCluster:
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in self.nodes],
            **kwargs,  # type: ignore[arg-type]
        )

    def start(self) -> None:
        for _ in range(self.primaries * 2):
            port = free_cluster_port()
            node_dir = self.workdir / str(port)
            node_dir.mkdir()
            args = server_args(
                port,
                node_dir,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(CLUSTER_NODE_TIMEOUT_MS),
            )
            node = RedisProcess(port, node_dir, args)
            self.nodes.append(node)
            node.start()
        create = [binary("redis-cli", "redis-tools"), "--cluster", "create"]
        create += [f"127.0.0.1:{n.port}" for n in self.nodes]
        create += ["--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise TopologyError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        for node in self.nodes:
            wait_until(
                f"cluster_state:ok on port {node.port}",
                lambda n=node: n.client().cluster("info")["cluster_state"] == "ok",
            )
        wait_until("every replica in sync", self._replicas_in_sync)

    def _replicas_in_sync(self) -> bool:
        roles = [n.client().execute_command("ROLE") for n in self.nodes]
        replicas = [r for r in roles if r[0] == b"slave"]
        return len(replicas) == self.primaries and all(r[3] == b"connected" for r in replicas)

    def flush(self) -> None:
        client = self.client(socket_timeout=5)
        try:
            client.flushall(target_nodes=RedisCluster.PRIMARIES)
        finally:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class LocalSentinelGroup:
    """One primary, ``replicas`` replicas and ``sentinels`` sentinels watching them."""

    replicas: int = 2
    sentinels: int = 3
    name: str = SENTINEL_MASTER
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fw-sentinel-")))
    servers: list[RedisProcess] = field(default_factory=list)
    watchers: list[RedisProcess] = field(default_factory=list)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.watchers]

    @property
    def sentinels_setting(self) -> str:
        """The sentinels as the sample tool reads them: ``host:port,host:port,...``."""
        return ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)

    def sentinel(self, **kwargs: object) -> Sentinel:
        return Sentinel(
            self.sentinel_addresses,
            sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            **kwargs,
        )

    def start(self) -> None:
        primary_port = free_port()
        for index in range(1 + self.replicas):
            port = primary_port if index == 0 else free_port()
            node_dir = self.workdir / str(port)
            node_dir.mkdir()
            extra = [] if index == 0 else ["--replicaof", "127.0.0.1", str(primary_port)]
            node = RedisProcess(port, node_dir, server_args(port, node_dir, *extra))
            self.servers.append(node)
            node.start()
        wait_until("replicas connected", lambda: self._connected_replicas() == self.replicas)
        exe = binary("redis-sentinel", "redis-sentinel")
        for _ in range(self.sentinels):
            port = free_port()
            node_dir = self.workdir / f"sentinel-{port}"
            node_dir.mkdir()
            config = node_dir / "sentinel.conf"
            quorum = self.sentinels // 2 + 1
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {node_dir}\n"
                f"sentinel monitor {self.name} 127.0.0.1 {primary_port} {quorum}\n"
                f"sentinel down-after-milliseconds {self.name} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.name} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {self.name} 1\n"
            )
            watcher = RedisProcess(port, node_dir, [exe, str(config)])
            self.watchers.append(watcher)
            watcher.start()
        wait_until("sentinels that know each other and the replicas", self._sentinels_agree)

    def _connected_replicas(self) -> int:
        """Replicas in sync with the primary (connected and past their first full sync)."""
        info = self.primary().client().info("replication")
        return sum(
            1
            for key, value in info.items()
            if key.startswith("slave") and isinstance(value, dict) and value["state"] == "online"
        )

    def _sentinels_agree(self) -> bool:
        for watcher in self.watchers:
            master = watcher.client(decode_responses=True).sentinel_master(self.name)
            if int(master["num-other-sentinels"]) != self.sentinels - 1:
                return False
            if int(master["num-slaves"]) != self.replicas:
                return False
        return True

    def primary_port(self) -> int:
        """The port the sentinels name as the primary now."""
        for watcher in self.watchers:
            if not watcher.running:
                continue
            try:
                _, port = watcher.client().sentinel_get_master_addr_by_name(self.name)
                return int(port)
            except (redis.RedisError, TypeError):
                continue
        raise TopologyError("no sentinel answers")

    def primary(self) -> RedisProcess:
        if not self.watchers:
            return self.servers[0]
        port = self.primary_port()
        return next(s for s in self.servers if s.port == port)

    def wait_for_new_primary(self, old_port: int, seconds: float = 30) -> int:
        """Block until the sentinels name another primary and it accepts writes; its port."""
        wait_until(
            "a failover",
            lambda: (
                self.primary_port() != old_port
                and self.primary().client().info("replication")["role"] == "master"
            ),
            seconds,
        )
        return self.primary_port()

    def heal(self) -> None:
        """Restart any server we killed (Sentinel turns it into a replica of the new primary)
        and wait until every replica is connected again."""
        for server in self.servers:
            if not server.running:
                server.start()
        wait_until(
            "the group healed",
            lambda: self._connected_replicas() == self.replicas and self._sentinels_agree(),
            60,
        )

    def flush(self) -> None:
        self.primary().client().flushall()

    def stop(self) -> None:
        for process in [*self.watchers, *self.servers]:
            process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
