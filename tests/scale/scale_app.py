"""The WSGI app the multi-process tests here run under gunicorn, built from the environment:
``SCALE_REDIS_URL`` (any URL ``template_tool.redis_client`` reads: one server, Sentinel or
Cluster), ``SCALE_WIKI_URL``, ``SCALE_SECRET_KEY``, ``SCALE_REDIRECT_URI``.

Sessions as the guide recommends (``use_redis_sessions``), the consumer of ``tests/apps.py``.
"""

from __future__ import annotations

import os

from apps import CLIENT_ID, CLIENT_SECRET, USER_AGENT
from flask import Flask
from support import add_probe_routes

from flask_wikimedia import Wikimedia
from flask_wikimedia.sessions import use_redis_sessions
from template_tool import redis_client


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY=os.environ["SCALE_SECRET_KEY"],
        WIKIMEDIA_KEY_PREFIX="scale:wikimedia:",
        WIKIMEDIA_CLIENT_ID=CLIENT_ID,
        WIKIMEDIA_CLIENT_SECRET=CLIENT_SECRET,
        WIKIMEDIA_WIKI_URL=os.environ["SCALE_WIKI_URL"],
        WIKIMEDIA_REDIRECT_URI=os.environ["SCALE_REDIRECT_URI"],
        WIKIMEDIA_USER_AGENT=USER_AGENT,
        WIKIMEDIA_TIMEOUT=(1.0, 5.0),
    )
    use_redis_sessions(app, redis_client.connect(os.environ["SCALE_REDIS_URL"]), "scale:session:")
    Wikimedia(app)
    add_probe_routes(app)

    return app


app = create_app()
