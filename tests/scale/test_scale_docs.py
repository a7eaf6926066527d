"""Every Python snippet in docs/scaling.md runs, against the test session's Sentinel group and
cluster (their addresses put in place of the documentation's)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from scalekit import REPO

from flask_wikimedia.sessions import SafeRedisSessionInterface

DOC = REPO / "docs" / "scaling.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("number", range(len(SNIPPETS)))
def test_snippet_runs(number, sentinel_group, redis_cluster, sentinel_client, cluster_client):
    code = SNIPPETS[number]
    sentinels = ", ".join(f'("127.0.0.1", {port})' for _, port in sentinel_group.sentinel_addresses)
    code = re.sub(r'\("10\.0\.0\.1", 26379\).*?\("10\.0\.0\.3", 26379\)', sentinels, code)
    code = code.replace('"mymaster"', repr(sentinel_group.name))
    nodes = redis_cluster.nodes
    code = code.replace(
        'ClusterNode("10.0.0.1", 6379)', f'ClusterNode("127.0.0.1", {nodes[0].port})'
    )
    code = code.replace(
        'ClusterNode("10.0.0.2", 6379)', f'ClusterNode("127.0.0.1", {nodes[1].port})'
    )
    assert "10.0.0." not in code
    namespace: dict[str, Any] = {"__name__": "scaling_snippet"}
    exec(compile(code, f"{DOC.name} snippet {number + 1}", "exec"), namespace)
    if "app" in namespace:  # a snippet that builds an app: its sessions work
        app = namespace["app"]
        assert isinstance(app.session_interface, SafeRedisSessionInterface)
        app.add_url_rule(
            "/remember", "remember", lambda: __import__("flask").session.setdefault("x", "1")
        )
        client = app.test_client()
        assert client.get("/remember").text == "1"
        assert client.get("/remember").text == "1"
    if "cluster" in namespace:
        assert namespace["cluster"].ping()
