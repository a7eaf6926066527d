"""Refresh stays single-flight on a Redis Cluster and behind Sentinel: 20 requests across four
gunicorn worker processes hit an expired token at once, and the wiki sees exactly one refresh
(the lock and the record share a hash slot on the cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from apps import CLIENT_ID, CLIENT_SECRET
from support import (
    LONG_TTL,
    assert_twenty_requests_across_workers_refresh_once,
    free_port,
    gunicorn,
    served_env,
    wait_for_every_worker,
)

from flask_wikimedia.devwiki import DevClient, DevWiki
from flask_wikimedia.refresh import REFRESH_MARGIN

HERE = Path(__file__).resolve().parent
SECRET_KEY = "scale-tests-secret-key-that-is-long-enough-0123456789"


def topology_url(topology: str, request: pytest.FixtureRequest) -> str:
    if topology == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        request.getfixturevalue("cluster_client")  # flushed
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes[:3])
    group = request.getfixturevalue("sentinel_group")
    request.getfixturevalue("sentinel_client")  # flushed
    return f"redis+sentinel://{group.sentinels_setting}/{group.name}/0"


@pytest.fixture(params=["cluster", "sentinel"])
def served(request: pytest.FixtureRequest, devwiki: DevWiki, tmp_path: Path) -> Iterator[str]:
    """served_app.py (sealed sessions) in four gunicorn workers on the topology; yields its base URL."""
    devwiki.add_client(
        DevClient(
            client_id=CLIENT_ID,
            secret=CLIENT_SECRET,
            redirect_uri=None,  # any loopback callback
            grants=["basic", "editpage", "highvolume"],
        )
    )
    port = free_port()
    env = served_env(
        sessions="sealed",
        redis_url=topology_url(request.param, request),
        wiki_url=str(devwiki.base_url),
        secret_key=SECRET_KEY,
        redirect_uri=f"http://127.0.0.1:{port}/auth/callback",
    )
    log = tmp_path / "gunicorn.log"
    with gunicorn("served_app:app", port, env, log, cwd=HERE, ready="/ready") as base:
        wait_for_every_worker(base, 4)
        yield base


def http_login_due_for_refresh(base: str, wiki: DevWiki) -> requests.Session:
    """Log in over HTTP with a token already inside the refresh margin, then expire it."""
    http = requests.Session()
    wiki.access_token_ttl = int(REFRESH_MARGIN)
    try:
        start = http.get(base + "/auth/login", allow_redirects=False, timeout=10)
        assert start.status_code == 302, start.text
        callback = wiki.approve(start.headers["Location"], username="Alice")
        done = http.get(callback, allow_redirects=False, timeout=10)
        assert done.status_code == 303, done.text
    finally:
        wiki.access_token_ttl = LONG_TTL
    wiki.expire_access_tokens()
    return http


def test_twenty_requests_across_workers_refresh_once(served, devwiki):
    devwiki.refresh_grace = 0  # strict: a second refresh would be refused, and be a logout
    http = http_login_due_for_refresh(served, devwiki)
    cookies = http.cookies.get_dict()
    assert_twenty_requests_across_workers_refresh_once(devwiki, served, cookies)
