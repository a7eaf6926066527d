"""Fixtures for the template tool's tests: a clean environment, a Toolforge-like one.

The tool reads its settings from the environment (like on Toolforge), so every test starts from
an environment without FLASK_*, TOOLFORGE, REDIS_* ... and sets what it needs with monkeypatch.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from toolkit import TOOL_ENV, TOOLFORGE_CALLBACK, register_tool, toolforge_environ

from flask_wikimedia.devwiki import DevWiki
from template_tool import create_app


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("FLASK_") or key in TOOL_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("TOOLFORGE", "0")  # independent of the host this runs on
    return monkeypatch


@pytest.fixture
def toolforge_env(
    clean_env: pytest.MonkeyPatch, devwiki: DevWiki, redis_server: Any
) -> dict[str, str]:
    assert devwiki.base_url is not None
    env = toolforge_environ(devwiki.base_url, redis_server.url)
    for key, value in env.items():
        clean_env.setenv(key, value)
    return env


@pytest.fixture
def tool_app(toolforge_env: dict[str, str], redis_client: redis.Redis, devwiki: DevWiki) -> Flask:
    """The tool configured as on Toolforge, against the dev wiki and the test Redis."""
    register_tool(devwiki, TOOLFORGE_CALLBACK)
    return create_app()


@pytest.fixture
def client(tool_app: Flask) -> FlaskClient:
    client = tool_app.test_client()
    # As behind Toolforge's front proxy, which terminates TLS.
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
    # Browsers send the page's origin as Referer on same-origin POSTs (Referrer-Policy:
    # same-origin); Flask-WTF insists on it over https.
    client.environ_base["HTTP_REFERER"] = "https://localhost/"
    return client
