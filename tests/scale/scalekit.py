"""Helpers for the tests in tests/scale: the test app on a topology's client in either session
setup (gunicorn serving an app in several worker processes is ``support.gunicorn``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import redis
from apps import make_app
from flask import Flask
from redis.cluster import RedisCluster

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.sessions import SafeRedisSessionInterface, use_redis_sessions

REPO = Path(__file__).resolve().parents[2]


def app_on(how: str, devwiki: DevWiki, client: redis.Redis | RedisCluster) -> Flask:
    """``flask-session``: SESSION_TYPE = "redis" + Session(app), then Wikimedia(app) (which
    puts its hardened interface in front); ``ours``: use_redis_sessions, as the tool does."""
    if how == "ours":
        app = make_app(
            devwiki, None, WIKIMEDIA_REDIS=client, WIKIMEDIA_KEY_PREFIX="tests:wikimedia:"
        )
        use_redis_sessions(app, client, "tests:session:")
        return app
    with warnings.catch_warnings():
        # Flask-Session knows only redis.Redis: for a cluster client it warns and makes one for
        # localhost:6379, which Wikimedia(app) replaces by the configured cluster client.
        warnings.filterwarnings("ignore", "No valid Redis instance", RuntimeWarning)
        app = make_app(devwiki, client)
    interface = app.session_interface
    assert isinstance(interface, SafeRedisSessionInterface)
    assert isinstance(interface.client, type(client))  # the cluster, never localhost
    return app
