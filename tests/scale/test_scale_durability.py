"""WAIT-based durability for login writes (WIKIMEDIA_REDIS_WAIT_REPLICAS), behind Sentinel: a
login, a refresh and a logout wait for the replicas; ordinary requests do not; what it costs is
measured and written to tests/artifacts/wait-cost.json (docs/scaling.md publishes it)."""

from __future__ import annotations

import json
import logging
import statistics
import time

import pytest
from apps import make_app
from scalekit import REPO
from support import login_due_for_refresh

from flask_wikimedia.errors import ConfigurationError
from flask_wikimedia.testing import login

CSRF = "csrf-token-for-this-test"
MEASURED_LOGINS = 15


def logout(client) -> int:
    with client.session_transaction() as sess:
        sess["_wikimedia_csrf"] = CSRF
    return client.post("/auth/logout", data={"csrf_token": CSRF}).status_code


def replica_warnings(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if "WIKIMEDIA_REDIS_WAIT_REPLICAS" in r.getMessage()
    ]


def test_login_refresh_and_logout_wait_for_both_replicas(devwiki, sentinel_client, caplog):
    app = make_app(devwiki, sentinel_client, WIKIMEDIA_REDIS_WAIT_REPLICAS=2)
    client = app.test_client()
    caplog.set_level(logging.WARNING)
    login_due_for_refresh(client, devwiki)
    assert client.get("/private").text == "private page of Alice"  # refreshed
    assert devwiki.calls["token:refresh_token"] == 1
    assert logout(client) == 303
    assert client.get("/private").status_code == 302
    assert replica_warnings(caplog) == []  # both replicas acknowledged every write in time


def test_every_login_write_really_waits(devwiki, sentinel_client, caplog):
    """Three replicas asked of a group that has two: each waited-for write says so."""
    app = make_app(
        devwiki, sentinel_client, WIKIMEDIA_REDIS_WAIT_REPLICAS=3, WIKIMEDIA_REDIS_WAIT_TIMEOUT=50
    )
    client = app.test_client()
    caplog.set_level(logging.WARNING)
    login_due_for_refresh(client, devwiki)
    assert client.get("/private").status_code == 200
    assert logout(client) == 303
    said = " | ".join(replica_warnings(caplog))
    for write in (
        "a new login",
        "a login update",
        "a logout",
        "a session change at login or logout",
    ):
        assert f"{write} reached 2 of 3 replicas" in said
    caplog.clear()
    login(client, devwiki, "Alice")
    caplog.clear()
    assert client.get("/private").status_code == 200  # an ordinary request waits for nothing
    assert replica_warnings(caplog) == []


def test_wait_is_refused_on_a_cluster(devwiki, cluster_client):
    with pytest.raises(ConfigurationError, match="WIKIMEDIA_REDIS_WAIT_REPLICAS"):
        make_app(devwiki, None, WIKIMEDIA_REDIS=cluster_client, WIKIMEDIA_REDIS_WAIT_REPLICAS=1)


def test_what_waiting_costs_a_login(devwiki, sentinel_client):
    """Not a timed assertion: the figures go to tests/artifacts/wait-cost.json."""
    results: dict[str, float] = {}
    for replicas in (0, 2, 0, 2):  # interleaved, so drift in the machine's load hits both
        app = make_app(devwiki, sentinel_client, WIKIMEDIA_REDIS_WAIT_REPLICAS=replicas)
        times = []
        for _ in range(MEASURED_LOGINS):
            client = app.test_client()
            started = time.perf_counter()
            assert login(client, devwiki, "Alice").status_code == 303
            assert logout(client) == 303
            times.append((time.perf_counter() - started) * 1000)
        key = f"login_and_logout_ms_wait_{replicas}"
        results[key] = min(results.get(key, float("inf")), statistics.median(times))
    results["added_ms"] = (
        results["login_and_logout_ms_wait_2"] - results["login_and_logout_ms_wait_0"]
    )
    artifacts = REPO / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "wait-cost.json").write_text(json.dumps(results, indent=1))
