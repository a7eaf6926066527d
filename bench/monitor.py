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
from collections.abc import Callable
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


def count_round_trips(port: int, requests: int, drive: Callable[[], None]) -> RoundTrips:
    """Run ``drive`` (which makes ``requests`` requests) under MONITOR."""
    exe = shutil.which("redis-cli")
    if exe is None:
        raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
    with tempfile.TemporaryDirectory(prefix="fw-bench-monitor-") as tmp:
        out = Path(tmp) / "monitor.txt"
        with out.open("wb") as sink:
            monitor = subprocess.Popen(
                [exe, "-h", "127.0.0.1", "-p", str(port), "monitor"], stdout=sink
            )
            try:
                deadline = time.monotonic() + 5
                while b"OK" not in out.read_bytes() and time.monotonic() < deadline:
                    time.sleep(0.02)
                drive()
                time.sleep(0.3)  # let the last replies' commands reach the output
            finally:
                monitor.terminate()
                monitor.wait(5)
        lines = out.read_text(errors="replace").splitlines()
    trips, commands = parse(lines)
    per_request = trips / requests
    sequence = ", ".join(
        f"{cmd} x{round(n / requests, 2):g}" if round(n / requests, 2) != 1 else cmd
        for cmd, n in commands.items()
    )
    return RoundTrips(per_request, sequence)
