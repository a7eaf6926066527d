"""Helpers for the tests in tests/scale: gunicorn serving an app in several worker processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
WORKERS = 4


@contextmanager
def gunicorn(
    spec: str,
    port: int,
    env: dict[str, str],
    log: Path,
    *,
    cwd: Path,
    ready: str = "/healthz",
    workers: int = WORKERS,
) -> Iterator[str]:
    """``spec`` in gunicorn's sync workers; yields the base URL once ``ready`` answers 200.

    Its output goes to a file: a pipe nobody reads fills up with the 503 warnings of an outage
    and then blocks every worker on its next log line.
    """
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", str(workers), "--graceful-timeout", "3", "--timeout", "30", spec]
    with log.open("wb") as sink:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
            try:
                if requests.get(base + ready, timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer {ready} within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
