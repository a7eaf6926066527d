"""The WSGI app the multi-process refresh test runs under gunicorn, built from the environment.

It mirrors ``apps.make_app``'s configuration (same secret, Redis prefixes and consumer), so a
session cookie made by a login through the Flask test client works in every gunicorn worker.
"""

from __future__ import annotations

import os

import redis
from apps import CLIENT_ID, CLIENT_SECRET, USER_AGENT
from flask import Flask
from flask_session import Session
from support import add_probe_routes

from flask_wikimedia import Wikimedia


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY=os.environ["REFRESH_TEST_SECRET_KEY"],
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis.from_url(os.environ["REFRESH_TEST_REDIS_URL"]),
        SESSION_KEY_PREFIX="tests:session:",
        WIKIMEDIA_KEY_PREFIX="tests:wikimedia:",
        WIKIMEDIA_CLIENT_ID=CLIENT_ID,
        WIKIMEDIA_CLIENT_SECRET=CLIENT_SECRET,
        WIKIMEDIA_WIKI_URL=os.environ["REFRESH_TEST_WIKI_URL"],
        WIKIMEDIA_USER_AGENT=USER_AGENT,
        WIKIMEDIA_TIMEOUT=(1.0, 5.0),
    )
    Session(app)
    Wikimedia(app)
    add_probe_routes(app)

    return app


app = create_app()
