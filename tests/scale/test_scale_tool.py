"""The sample tool on a Redis Cluster and behind Sentinel, configured by REDIS_URL alone:
login, a protected page, the sandbox edit, logout (docs/scaling.md)."""

from __future__ import annotations

import os

import pytest
from flask import Flask
from flask.testing import FlaskClient
from scalekit import app_on
from toolkit import TOOL_ENV, TOOLFORGE_CALLBACK, register_tool, toolforge_environ

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.testing import login
from template_tool import create_app, redis_client


def tool_url(topology: str, request: pytest.FixtureRequest) -> str:
    if topology == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        request.getfixturevalue("cluster_client")  # flushed
        seeds = ",".join(f"127.0.0.1:{node.port}" for node in cluster.nodes[:2])
        return f"redis+cluster://{seeds}"
    group = request.getfixturevalue("sentinel_group")
    request.getfixturevalue("sentinel_client")  # flushed
    return f"redis+sentinel://{group.sentinels_setting}/{group.name}/0"


@pytest.fixture(params=["cluster", "sentinel"])
def scaled_tool(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, devwiki: DevWiki
) -> Flask:
    for key in list(os.environ):
        if key.startswith("FLASK_") or key in TOOL_ENV:
            monkeypatch.delenv(key)
    assert devwiki.base_url is not None
    for key, value in toolforge_environ(devwiki.base_url, tool_url(request.param, request)).items():
        monkeypatch.setenv(key, value)
    register_tool(devwiki, TOOLFORGE_CALLBACK)
    return create_app()


@pytest.fixture
def client(scaled_tool: Flask) -> FlaskClient:
    client = scaled_tool.test_client()
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"  # as behind Toolforge's proxy
    client.environ_base["HTTP_REFERER"] = "https://localhost/"
    return client


def csrf_token_of(page_text: str) -> str:
    return page_text.split('name="csrf_token" value="')[1].split('"')[0]


def test_tool_login_sandbox_edit_and_logout(client, devwiki):
    assert client.get("/profile").status_code == 302
    login(client, devwiki, "Alice")
    assert "Profile of <bdi>Alice</bdi>" in client.get("/profile").text
    page = client.get("/sandbox")
    assert page.status_code == 200
    response = client.post("/sandbox", data={"csrf_token": csrf_token_of(page.text), "line": "hi"})
    assert response.status_code == 302, response.text
    assert devwiki.edits[-1]["title"] == "User:Alice/sandbox"
    assert devwiki.edits[-1]["user"] == "Alice"
    assert "Added your line to User:Alice/sandbox." in client.get("/sandbox").text
    token = csrf_token_of(client.get("/").text)
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/profile").status_code == 302


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/name/db",
        "redis+sentinel://127.0.0.1/name",
        "redis+cluster://127.0.0.1:7000/0",
        "redis+cluster://:secret@127.0.0.1:x",
    ],
)
def test_malformed_urls_say_what_is_wrong_without_the_password(url):
    with pytest.raises(RuntimeError, match="REDIS_URL") as caught:
        redis_client.connect(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("prefix", ["tests:", "3c0ffee1d0d0cafe3c0ffee1d0d0cafe:"])
def test_flask_wikimedia_check_on_each_topology(devwiki, scaled_redis, prefix):
    """``flask wikimedia check`` answers for a cluster or Sentinel client: neither names one
    host, so a short key prefix is reported as on a shared Redis (the safe side)."""
    app = app_on("ours", devwiki, scaled_redis)
    app.extensions["wikimedia"].store.prefix = prefix
    result = app.test_cli_runner().invoke(args=["wikimedia", "check"])
    assert "Traceback" not in result.output
    if prefix == "tests:":
        assert result.exit_code != 0 and "prefixed with only 'tests:'" in result.output
    else:
        assert result.exit_code == 0, result.output


def test_sentinel_url_carries_credentials_database_and_sentinel_password():
    client = redis_client.connect(
        "redis+sentinel://app:s%40cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/3"
        "?sentinel_password=watch"
    )
    pool = client.connection_pool
    assert pool.service_name == "mymaster"
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "s@cret", 3)
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.0, 1.0)
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert {s.connection_pool.connection_kwargs["password"] for s in sentinels} == {"watch"}
    assert {s.connection_pool.connection_kwargs["socket_timeout"] for s in sentinels} == {0.5}


def test_cluster_url_seeds_every_node_given(redis_cluster, cluster_client):
    first, second = redis_cluster.nodes[:2]
    client = redis_client.connect(f"redis+cluster://127.0.0.1:{first.port},127.0.0.1:{second.port}")
    try:
        assert client.ping()
        assert len(client.get_primaries()) == 3  # it found the third from the two seeds
        assert client.get_connection_kwargs()["socket_timeout"] == 1.0
    finally:
        client.close()
