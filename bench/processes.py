"""The processes the benchmark and the test suite start themselves: free loopback ports, one
redis-server (or redis-sentinel) process, and stopping a process we started, by its id.

One place for what ``bench/topologies.py`` (Cluster and Sentinel), ``bench/services.py`` (the
benchmark's private Redis) and ``tests/support.py`` (the suite's private Redis) all need. Nothing
here touches the machine's own Redis on 6379.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

#: How long a Redis process may take to answer after it starts.
STARTUP_SECONDS = 20


class TopologyError(RuntimeError):
    """A Redis process or topology did not come up as it should."""


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not ended within ``grace`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def binary(name: str, package: str) -> str:
    """The path of the program ``name``, or a TopologyError that says which package has it."""
    exe = shutil.which(name)
    if exe is None:
        raise TopologyError(f"{name} is not installed (apt-get install {package})")
    return exe


def wait_until(what: str, check: Callable[[], object], seconds: float = STARTUP_SECONDS) -> None:
    """Poll ``check()`` (Redis and socket errors count as "not yet") until it is true."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TopologyError(f"{what} did not happen within {seconds} s")
        time.sleep(0.05)


def server_args(port: int, workdir: Path, *extra: str) -> list[str]:
    """A redis-server on 127.0.0.1:``port``, persistence off, working in ``workdir``."""
    return [
        binary("redis-server", "redis-server"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        # Full syncs at once (the default waits 5 s for more replicas to join a diskless one).
        "--repl-diskless-sync-delay",
        "0",
        *extra,
    ]


@dataclass
class RedisProcess:
    """One redis-server (or redis-sentinel) process on a loopback port; its output goes to
    ``<workdir>/<port>.log``."""

    port: int
    workdir: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def standalone(cls, prefix: str = "fw-redis-") -> RedisProcess:
        """A private redis-server on a free port, in a new temporary directory (not started)."""
        port = free_port()
        workdir = Path(tempfile.mkdtemp(prefix=prefix))
        return cls(port, workdir, server_args(port, workdir))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        """A client for this process (2 s socket timeout unless ``kwargs`` say otherwise)."""
        kwargs.setdefault("socket_timeout", 2)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def version(self) -> str:
        return str(self.client().info("server")["redis_version"])

    def start(self) -> None:
        log = (self.workdir / f"{self.port}.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                self.args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        process = self.process

        def answering() -> bool:
            if process.poll() is not None:
                raise TopologyError(f"redis on port {self.port} exited")
            return bool(self.client().ping())

        try:
            wait_until(f"redis on port {self.port} answering", answering)
        except TopologyError as exc:
            log_text = (self.workdir / f"{self.port}.log").read_text(errors="replace")
            raise TopologyError(f"{exc}; its log ends:\n{log_text[-2000:]}") from None

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as a crashed host would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def pause(self) -> None:
        """Hang it: it keeps accepting connections but never answers (SIGSTOP)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
