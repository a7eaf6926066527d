"""app.py under gunicorn with two worker processes and a Toolforge-like environment.

Over plain http on 127.0.0.1 (FLASK_SESSION_COOKIE_SECURE=false, the documented switch for a
local imitation of Toolforge). A login made in one worker process must be visible in the other
even after the first one is gone: nothing about a login lives in a process (DESIGN invariant 10).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from support import free_port, gunicorn_command, serving
from toolkit import (
    http_login,
    register_tool,
    scrubbed_environ,
    toolforge_environ,
    wait_until_serving,
)

from flask_wikimedia.devwiki import DevWiki

REPO = Path(__file__).resolve().parents[2]


def tool_environ(wiki: DevWiki, redis_url: str, port: int) -> dict[str, str]:
    assert wiki.base_url is not None
    env = scrubbed_environ()
    env.update(toolforge_environ(wiki.base_url, redis_url))
    env["FLASK_WIKIMEDIA_REDIRECT_URI"] = f"http://127.0.0.1:{port}/auth/callback"
    env["FLASK_SESSION_COOKIE_SECURE"] = "false"
    return env


def tool_command(port: int, access_log: Path, log_format: str = '%(p)s "%(r)s" %(s)s') -> list[str]:
    """The tool (``app:app``) in two workers, each request in ``access_log`` as ``log_format``."""
    options = ("--access-logfile", str(access_log), "--access-logformat", log_format)
    return gunicorn_command("app:app", port, *options, workers=2)


def gunicorn(port: int, env: dict[str, str], access_log: Path) -> subprocess.Popen[str]:
    """For a gunicorn expected to exit: its output in a pipe that ``communicate`` reads."""
    command = tool_command(port, access_log)
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@contextmanager
def running(port: int, env: dict[str, str], access_log: Path, **kwargs: str) -> Iterator[str]:
    """A gunicorn left running: its output goes to a file next to the access log."""
    command = tool_command(port, access_log, **kwargs)
    log = access_log.with_name("gunicorn.log")
    with serving(command, port, cwd=REPO, env=env, log=log, ready="/healthz") as base:
        yield base


def served_by(access_log: Path, request_line: str) -> list[int]:
    """Worker pids that served requests starting with ``request_line`` (from the access log)."""
    pids = []
    for line in access_log.read_text().splitlines():
        pid, rest = line.split(" ", 1)
        if rest.startswith(f'"{request_line}'):
            pids.append(int(pid.strip("<>")))
    return pids


def wait_for_log(access_log: Path, request_line: str) -> list[int]:
    deadline = time.monotonic() + 5
    while not (pids := served_by(access_log, request_line)):
        if time.monotonic() > deadline:
            pytest.fail(f"no access-log line for {request_line}")
        time.sleep(0.05)
    return pids


def test_login_is_shared_between_worker_processes(devwiki, redis_server, redis_client, tmp_path):
    port = free_port()
    register_tool(devwiki, f"http://127.0.0.1:{port}/auth/callback")
    log = tmp_path / "access.log"
    with running(port, tool_environ(devwiki, redis_server.url, port), log) as base:
        assert requests.get(base + "/healthz", timeout=5).text == "ok\n"
        http = http_login(base, devwiki, "Alice")
        (login_worker,) = wait_for_log(log, "GET /auth/callback")

        # The worker that handled the login goes away; gunicorn starts a fresh process.
        os.kill(login_worker, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            try:
                os.kill(login_worker, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                pytest.fail("the worker did not exit")
            time.sleep(0.05)

        for _ in range(6):
            page = http.get(base + "/profile", allow_redirects=False, timeout=10)
            assert page.status_code == 200
            assert "Profile of <bdi>Alice</bdi>" in page.text
        profile_workers = set(wait_for_log(log, "GET /profile"))
        assert login_worker not in profile_workers

        # And the logout, wherever it lands, ends the login for every worker.
        token = http.get(base + "/", timeout=10).text.split('name="csrf_token" value="')[1]
        http.post(base + "/auth/logout", data={"csrf_token": token.split('"')[0]}, timeout=10)
        for _ in range(4):
            assert http.get(base + "/profile", allow_redirects=False, timeout=10).status_code == 302


#: Every access-log field that could hold a URL or its query.
LEAKY_FORMAT = '%(p)s "%(r)s" %(s)s U=%(U)s q=%(q)s f=%(f)s ref=%({referer}i)s loc=%({location}o)s raw=%({raw_uri}e)s qs=%({query_string}e)s'


def test_the_access_log_never_holds_a_query_string(devwiki, redis_server, redis_client, tmp_path):
    """CF-4: the callback's one-time code and state, the login redirect's state and PKCE
    challenge, never reach the access log, whatever the log format asks for."""
    port = free_port()
    register_tool(devwiki, f"http://127.0.0.1:{port}/auth/callback")
    log = tmp_path / "access.log"
    env = tool_environ(devwiki, redis_server.url, port)
    with running(port, env, log, log_format=LEAKY_FORMAT) as base:
        http = requests.Session()
        start = http.get(base + "/auth/login?next=/profile", allow_redirects=False, timeout=10)
        callback = devwiki.approve(start.headers["Location"], username="Alice")
        assert "code=" in callback and "state=" in callback
        # As an error page on the callback would load its stylesheet: Referer is the callback.
        http.get(base + "/", headers={"Referer": callback}, timeout=10)
        done = http.get(callback, allow_redirects=False, timeout=10)
        assert done.status_code == 303
        wait_for_log(log, "GET /auth/callback")
        wait_for_log(log, "GET / ")
    text = log.read_text()
    query = callback.split("?", 1)[1]
    secrets = [value for pair in query.split("&") for value in pair.split("=", 1)[1:]]
    secrets.append(start.headers["Location"].split("?", 1)[1])
    assert "GET /auth/callback HTTP/1.1" in text
    assert "GET /auth/login HTTP/1.1" in text
    for secret in secrets:
        assert secret not in text
    assert "code=" not in text
    assert "state=" not in text


@pytest.mark.parametrize("missing", ["FLASK_SECRET_KEY", "REDIS_KEY_PREFIX"])
def test_gunicorn_start_without_a_secret_exits_with_a_clear_message(
    devwiki, redis_server, tmp_path, missing
):
    port = free_port()
    env = tool_environ(devwiki, redis_server.url, port)
    del env[missing]
    process = gunicorn(port, env, tmp_path / "access.log")
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"gunicorn kept running without {missing}:\n{output}")
    assert process.returncode != 0
    assert f"{missing} is not set" in output
    assert f"toolforge envvars create {missing}" in output


def test_procfile_command_listens_on_port_and_keeps_health_checks_out_of_the_log(
    devwiki, redis_server, redis_client
):
    (line,) = [x for x in (REPO / "Procfile").read_text().splitlines() if x.startswith("web:")]
    command = line.removeprefix("web:").split()
    assert command[0] == "gunicorn"
    port = free_port()
    env = tool_environ(devwiki, redis_server.url, port)
    env["PORT"] = str(port)  # what the Build Service sets
    command = [sys.executable, "-m", "gunicorn", *command[1:]]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base)
        assert requests.get(base + "/", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert '"GET / HTTP/1.1" 200' in output
    assert "/healthz" not in output


def test_uwsgi_logs_the_path_without_its_query():
    """CF-4 for Toolforge's uWSGI webservice (not installed here, so read its settings): the
    request log names the path (PATH_INFO), never the URI with its query, nor the Referer."""
    settings = (REPO / "uwsgi.ini").read_text()
    (log_format,) = [
        line for line in settings.splitlines() if line.replace(" ", "").startswith("log-format=")
    ]
    assert "%(var.PATH_INFO)" in log_format
    for leaky in ("%(uri)", "%(referer)", "QUERY_STRING", "REQUEST_URI"):
        assert leaky not in log_format
