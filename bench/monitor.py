"""Count Redis round trips with ``redis-cli MONITOR`` while a known number of requests run.

MONITOR prints every command a client sends, and the commands a Lua script runs marked
``[0 lua]``. A round trip is one command from a client, or one ``MULTI`` … ``EXEC`` block (a
transactional pipeline is one network round trip); script-internal commands are not round
trips. A non-transactional pipeline would be counted once per command, so the count is an
upper bound, and none of the measured routes uses one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r'^\d+\.\d+ \[\d+ (?P<client>[^\]]+)\] "(?P<cmd>[^"]+)"')


@dataclass(frozen=True)
class RoundTrips:
    per_request: float
    commands: str  # e.g. "GET, HMGET, SET" (in order of first use, with counts per request)


def parse(lines: list[str]) -> tuple[int, Counter[str]]:
    """(round trips, commands seen) in MONITOR output lines."""
    trips = 0
    commands: Counter[str] = Counter()
    in_multi: set[str] = set()
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            continue
        client, cmd = match["client"], match["cmd"].upper()
        if client == "lua":
            continue
        commands[cmd] += 1
        if cmd == "MULTI":
            in_multi.add(client)
            trips += 1
        elif cmd == "EXEC" or cmd == "DISCARD":
            in_multi.discard(client)
        elif client not in in_multi:
            trips += 1
    return trips, commands


def count_round_trips(
    port: int | Sequence[int], requests: int, drive: Callable[[], None]
) -> RoundTrips:
    """Run ``drive`` (which makes ``requests`` requests) under MONITOR, on one server or on
    several (every primary of a cluster: each sees the commands for its own slots)."""
    exe = shutil.which("redis-cli")
    if exe is None:
        raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
    ports = [port] if isinstance(port, int) else list(port)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fw-bench-monitor-") as tmp, ExitStack() as stack:
        outputs = [Path(tmp) / f"monitor-{p}.txt" for p in ports]
        monitors = []
        for p, out in zip(ports, outputs, strict=True):
            sink = stack.enter_context(out.open("wb"))
            monitor = subprocess.Popen(
                [exe, "-h", "127.0.0.1", "-p", str(p), "monitor"], stdout=sink
            )
            stack.callback(monitor.wait, 5)
            stack.callback(monitor.terminate)
            monitors.append(monitor)
        deadline = time.monotonic() + 5
        while not all(b"OK" in out.read_bytes() for out in outputs):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        drive()
        time.sleep(0.3)  # let the last replies' commands reach the output
        for monitor in monitors:
            monitor.terminate()
            monitor.wait(5)
        for out in outputs:
            lines += out.read_text(errors="replace").splitlines()
    trips, commands = parse(lines)
    per_request = trips / requests
    sequence = ", ".join(
        f"{cmd} x{round(n / requests, 2):g}" if round(n / requests, 2) != 1 else cmd
        for cmd, n in commands.items()
    )
    return RoundTrips(per_request, sequence)
