"""The WSGI app the multi-process tests run under gunicorn (``served_app:app``), built from the
environment, so that every worker process builds the same one:

- ``SERVED_SECRET_KEY``, ``SERVED_WIKI_URL``: the secret and the development wiki;
- ``SERVED_REDIS_URL``: any URL ``template_tool.redis_client`` reads (one server, Sentinel or
  Cluster);
- ``SERVED_SESSIONS``: ``flask-session`` for plain Flask-Session with ``apps.make_app``'s
  prefixes (a cookie made by a login through the Flask test client then works in every worker),
  or ``sealed`` for the sealed sessions the guide recommends (``use_redis_sessions``);
- ``SERVED_REDIRECT_URI``: optional, the callback URL when the login goes through the browser.

The consumer is ``tests/apps.py``'s; ``/ready`` and ``/whoami`` are ``support.add_probe_routes``.
"""

from __future__ import annotations

import os

from apps import CLIENT_ID, CLIENT_SECRET, USER_AGENT
from flask import Flask
from flask_session import Session
from support import add_probe_routes

from flask_wikimedia import Wikimedia
from flask_wikimedia.sessions import use_redis_sessions
from template_tool import redis_client

#: The key prefixes of each session setup (``flask-session`` matches ``apps.make_app``).
PREFIXES = {"flask-session": "tests:", "sealed": "scale:"}


def create_app() -> Flask:
    sessions = os.environ["SERVED_SESSIONS"]
    prefix = PREFIXES[sessions]
    client = redis_client.connect(os.environ["SERVED_REDIS_URL"])
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY=os.environ["SERVED_SECRET_KEY"],
        WIKIMEDIA_KEY_PREFIX=prefix + "wikimedia:",
        WIKIMEDIA_CLIENT_ID=CLIENT_ID,
        WIKIMEDIA_CLIENT_SECRET=CLIENT_SECRET,
        WIKIMEDIA_WIKI_URL=os.environ["SERVED_WIKI_URL"],
        WIKIMEDIA_USER_AGENT=USER_AGENT,
        WIKIMEDIA_TIMEOUT=(1.0, 5.0),
    )
    if "SERVED_REDIRECT_URI" in os.environ:
        app.config["WIKIMEDIA_REDIRECT_URI"] = os.environ["SERVED_REDIRECT_URI"]
    if sessions == "sealed":
        use_redis_sessions(app, client, prefix + "session:")
    else:
        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=client, SESSION_KEY_PREFIX=prefix + "session:"
        )
        Session(app)
    Wikimedia(app)
    add_probe_routes(app)
    return app


app = create_app()
