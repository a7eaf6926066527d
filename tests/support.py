"""Test support that is not a fixture, importable from any test module as ``support``: the
private redis-server and free ports (from ``bench.processes``, which the benchmark uses too),
and the helpers the login, refresh, API and policy tests share
(the one helpers module; users' helpers such as ``login``/``logout`` are in
``flask_wikimedia.testing``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import requests
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue

from bench.processes import RedisProcess as RedisProcess  # re-exported for the tests
from bench.processes import TopologyError, stop_process
from bench.processes import free_port as free_port  # re-exported for the tests
from flask_wikimedia import current_user, login_required
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.login import REF_KEY
from flask_wikimedia.refresh import REFRESH_MARGIN
from flask_wikimedia.state import get_state
from flask_wikimedia.store import VersionedRecord
from flask_wikimedia.testing import login

TESTS = Path(__file__).resolve().parent


class _Startable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


Startable = TypeVar("Startable", bound=_Startable)


def started(process: Startable) -> Startable:
    """``process`` (a RedisProcess, a LocalCluster, a LocalSentinelGroup) started; when it cannot
    start, whatever did start is stopped and the test fails with what went wrong (for example
    which Debian package to install)."""
    try:
        process.start()
    except TopologyError as exc:
        process.stop()
        pytest.fail(str(exc))
    return process


LONG_TTL = 14400


def session_ref(client: FlaskClient) -> str | None:
    with client.session_transaction() as sess:
        ref = sess.get(REF_KEY)
    return ref if isinstance(ref, str) else None


def stored(app: Flask, client: FlaskClient) -> VersionedRecord | None:
    """The login record behind ``client``'s session, as the store holds it now."""
    ref = session_ref(client)
    return get_state(app).store.get(ref) if ref else None


def login_due_for_refresh(
    client: FlaskClient, wiki: DevWiki, username: str = "Alice"
) -> VersionedRecord:
    """Log in with a token that is inside the refresh margin at once, then make the wiki treat
    it as expired too (as it would be a minute later). Later tokens live 4 hours again."""
    wiki.access_token_ttl = int(REFRESH_MARGIN)
    try:
        response = login(client, wiki, username)
    finally:
        wiki.access_token_ttl = LONG_TTL
    assert response.status_code == 303, response.text
    wiki.expire_access_tokens()
    record = stored(client.application, client)
    assert record is not None
    assert record.record.expires_at - time.time() < REFRESH_MARGIN
    return record


def clone(client: FlaskClient) -> FlaskClient:
    """Another test client with the same session cookie (a second tab, another worker)."""
    other = client.application.test_client()
    cookie = client.get_cookie("session")
    assert cookie is not None
    other.set_cookie("session", cookie.value)
    return other


def parallel_gets(client: FlaskClient, count: int, path: str) -> list[int]:
    """The status codes of ``count`` GETs of ``path``, at once, each from a clone of ``client``
    (same session: tabs, workers)."""
    clients = [clone(client) for _ in range(count)]
    return in_parallel(count, lambda i: clients[i].get(path).status_code)


def in_parallel(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` for i in range(count) on as many threads, all at once."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


@contextmanager
def serving(
    command: list[str], port: int, *, cwd: Path, env: dict[str, str], log: Path, ready: str
) -> Iterator[str]:
    """Run ``command`` (a server on 127.0.0.1:``port``); yield its base URL once ``ready``
    answers 200, and stop it with SIGTERM afterwards.

    Its output goes to the file ``log``: a pipe nobody reads fills up with a flood of warnings
    (the 503s of an outage) and then blocks every worker on its next log line.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
            try:
                if requests.get(base + ready, timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or workers still booting
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer {ready} within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        stop_process(process, grace=15)


@contextmanager
def gunicorn(
    spec: str,
    port: int,
    env: dict[str, str],
    log: Path,
    *,
    cwd: Path,
    ready: str = "/healthz",
    workers: int = 4,
) -> Iterator[str]:
    """``spec`` in gunicorn's sync workers; yields the base URL once ``ready`` answers 200.

    Its output goes to ``log`` (see ``serving``).
    """
    command = gunicorn_command(spec, port, workers=workers)
    with serving(command, port, cwd=cwd, env=env, log=log, ready=ready) as base:
        yield base


def gunicorn_command(spec: str, port: int, *options: str, workers: int = 4) -> list[str]:
    """The command line of gunicorn serving ``spec`` on 127.0.0.1:``port`` with ``workers``
    sync workers, a short graceful stop, and ``options``."""
    return [
        *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
        *("--workers", str(workers), "--graceful-timeout", "3", "--timeout", "30"),
        *options,
        spec,
    ]


def wait_for_every_worker(base: str, workers: int) -> None:
    """Probe ``/ready`` (see ``add_probe_routes``) with simultaneous, briefly held requests
    until ``workers`` different worker processes have answered."""
    deadline = time.monotonic() + 30
    seen: set[int] = set()

    def probe(_: int) -> int | None:
        try:
            answer = requests.get(base + "/ready?hold=0.2", timeout=5)
        except requests.RequestException:  # a worker still importing, or restarting
            return None
        return int(answer.json()["pid"]) if answer.status_code == 200 else None

    while len(seen) < workers:
        if time.monotonic() > deadline:
            pytest.fail(f"only {len(seen)} of {workers} gunicorn workers answered in time")
        seen.update(pid for pid in in_parallel(workers * 2, probe) if pid is not None)
        time.sleep(0.05)


def served_env(**settings: str) -> dict[str, str]:
    """The environment for ``served_app:app`` (see served_app.py): ours, plus ``settings``
    as ``SERVED_*`` variables, with the checkout and tests/ on the import path."""
    env = dict(os.environ)
    env.update({f"SERVED_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), str(TESTS)])
    return env


def add_probe_routes(app: Flask) -> None:
    """The routes the multi-process tests probe a gunicorn app with: ``/ready`` (``?hold=``
    seconds, at most 1) and ``/whoami`` (login required); both answer the worker's pid."""

    @app.get("/ready")
    def ready() -> ResponseReturnValue:
        # Held briefly so that simultaneous probes land on different workers.
        time.sleep(min(float(request.args.get("hold", 0)), 1.0))
        return jsonify(pid=os.getpid())

    @app.get("/whoami")
    @login_required
    def whoami() -> ResponseReturnValue:
        assert current_user
        return jsonify(username=current_user.username, pid=os.getpid())


def assert_twenty_requests_across_workers_refresh_once(
    devwiki: DevWiki, base: str, cookies: dict[str, str]
) -> None:
    """Twenty simultaneous ``/whoami`` requests with a login due for refresh, to the gunicorn
    workers at ``base``: all answer Alice, from several workers, after one refresh only."""
    # A slow token endpoint keeps the refresh in flight while the other workers arrive.
    devwiki.inject_fault("token", "hang", delay=0.3)
    start = threading.Barrier(20)
    json = {"Accept": "application/json"}

    def hit(_: int) -> requests.Response:
        start.wait()
        return requests.get(base + "/whoami", cookies=cookies, headers=json, timeout=30)

    answers = in_parallel(20, hit)
    assert [a.status_code for a in answers] == [200] * 20, [a.text[:200] for a in answers]
    assert {a.json()["username"] for a in answers} == {"Alice"}
    assert len({a.json()["pid"] for a in answers}) >= 2  # really several worker processes
    assert devwiki.calls["token:refresh_token"] == 1
    again = requests.get(base + "/whoami", cookies=cookies, headers=json, timeout=30)
    assert again.status_code == 200
    assert devwiki.calls["token:refresh_token"] == 1
