"""Run wrk against one URL and read its numbers (via report.lua's JSON line)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("report.lua")


class WrkError(RuntimeError):
    """wrk is missing, failed, or saw errors that mean the route is broken."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    errors: int  # connect/read/write errors, HTTP status >= 400, timeouts
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int,
    cookie: str | None = None,
) -> WrkResult:
    exe = shutil.which("wrk")
    if exe is None:
        raise WrkError("wrk is not installed (apt-get install wrk)")
    args = [
        exe,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(SCRIPT),
    ]
    if cookie:
        args += ["-H", f"Cookie: {cookie}"]
    done = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-JSON ")), None)
    if done.returncode != 0 or line is None:
        raise WrkError(
            f"wrk failed on {url} (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    data = json.loads(line.removeprefix("BENCH-JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        bytes=int(data["bytes"]),
        errors=int(errors),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
    )
