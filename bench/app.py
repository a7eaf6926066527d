"""The benchmarked WSGI app, configured from ``BENCH_*`` environment variables.

Small Flask apps behind one dispatcher, so that each route pays for exactly its own stack and
nothing else (Flask-Login's ``after_request`` hook, for instance, only runs on the peer):

``/floor/``        bare Flask, no session at all (the floor)
``/session/``      Flask + the session store: reads the session, nothing more
``/session/login`` stores a session like a login's (a reference), for ``/session/`` to read
``/peer/``         Flask-Login ``@login_required``, the user kept in the session (the peer)
``/peer/login``    logs a Flask-Login user in (no wiki involved: only the per-request cost counts)
``/peerdb/``       Flask-Login ``@login_required``, the user loaded from Redis by ``user_loader``
                   (what the peer costs once it keeps anything server-side, as we do)
``/private``       Flask-Wikimedia ``@login_required``
``/edit``          ``@requires_right("edit")``, rendering ``current_user.username`` in a template
``/auth/...``      Flask-Wikimedia's login, callback and logout

Every session-using app shares one store (same Redis, prefix, cookie name and secret key). On
``sealed``, ``/session/`` reads the very session a Wikimedia login created; on
``flask-session`` our extension seals the sessions of the app it is installed on (it replaces
Flask-Session's interface), so plain Flask-Session could not read them: there ``/session/`` reads
a session ``/session/login`` stored with Flask-Session itself. ``BENCH_SESSIONS`` picks the
store: ``flask-session`` (default; Flask-Session's ``Session(app)``, as the guide shows) or
``sealed`` (``flask_wikimedia.sessions.use_redis_sessions``, as the template tool does).

Other settings: ``BENCH_REDIS_URL``, ``BENCH_WIKI_URL``, ``BENCH_REDIRECT_URI``,
``BENCH_CLIENT_ID``, ``BENCH_CLIENT_SECRET``, ``BENCH_SECRET_KEY``. ``BENCH_REDIS_URL`` may name a
Redis Cluster (``redis+cluster://host:port,...``, read as the template tool reads ``REDIS_URL``;
then only the ``sealed`` store and our routes are measured). Serve it with
``gunicorn 'bench.app:create_app()'``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import redis
from flask import Flask, render_template, session
from flask_login import LoginManager, UserMixin, login_user
from flask_login import login_required as peer_login_required
from flask_session import Session
from redis.cluster import RedisCluster
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from flask_wikimedia import Wikimedia, current_user, login_required, requires_right
from flask_wikimedia.devwiki.models import PLAIN_USER_RIGHTS
from flask_wikimedia.sessions import use_redis_sessions
from template_tool import redis_client

HERE = Path(__file__).resolve().parent
SESSION_PREFIX = "bench:session:"
SEALED_PREFIX = "bench:sealed:"
PEER_USER_PREFIX = "bench:peer-user:"
USER_AGENT = "FlaskWikimediaBench/1.0 (https://example.org/bench; bench@example.org)"
#: A plain user's profile as the peer keeps it: the fields we keep for a login, no tokens.
PEER_PROFILE: dict[str, Any] = {
    "sub": "1",
    "username": "Alice",
    "editcount": 42,
    "groups": ["*", "user", "autoconfirmed"],
    "rights": list(PLAIN_USER_RIGHTS),
}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"bench.app needs the environment variable {name}")
    return value


def _redis() -> redis.Redis | RedisCluster:
    url = _env("BENCH_REDIS_URL")
    if url.startswith(redis_client.CLUSTER_SCHEMES):
        return redis_client.connect_cluster(url)
    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)


def _session_app(name: str) -> Flask:
    """A Flask app on the shared session store, with a Redis client of its own."""
    app = Flask(name, root_path=str(HERE))
    app.config["SECRET_KEY"] = _env("BENCH_SECRET_KEY")
    if os.environ.get("BENCH_SESSIONS", "flask-session") == "sealed":
        # Exactly as the guide and the template tool set it up.
        use_redis_sessions(app, redis_client.connect(_env("BENCH_REDIS_URL")), SEALED_PREFIX)
    else:
        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=_redis(), SESSION_KEY_PREFIX=SESSION_PREFIX
        )
        Session(app)
    return app


def floor_app() -> Flask:
    app = Flask("bench.floor")

    @app.get("/")
    def floor() -> str:
        return "ok"

    return app


def session_app() -> Flask:
    app = _session_app("bench.session")

    @app.get("/")
    def read_session() -> str:
        return "session read" if "_wikimedia_ref" in session else "no session"

    @app.get("/login")
    def store_session() -> str:
        # The size and shape of a login's session: one opaque reference.
        session["_wikimedia_ref"] = "~" + "r" * 43
        return "stored"

    return app


class PeerUser(UserMixin):  # type: ignore[misc]
    def __init__(self, profile: dict[str, Any]) -> None:
        self.id = str(profile["sub"])
        self.username = str(profile["username"])
        self.rights = frozenset(profile["rights"])


def peer_app(*, user_in_redis: bool) -> Flask:
    """Flask-Login, the way a tool would use it with its own OAuth code."""
    app = _session_app("bench.peerdb" if user_in_redis else "bench.peer")
    users = _redis()
    manager = LoginManager()
    # No context processor: it would load the user on every template render.
    manager.init_app(app, add_context_processor=False)

    @manager.user_loader
    def load_user(user_id: str) -> PeerUser | None:
        if user_in_redis:  # a user table, as most Flask-Login apps have
            raw = users.get(PEER_USER_PREFIX + user_id)
            return PeerUser(json.loads(raw)) if raw is not None else None
        profile = session.get("peer_profile")  # the cheapest loader: no store at all
        if not isinstance(profile, dict) or str(profile.get("sub")) != user_id:
            return None
        return PeerUser(profile)

    @app.get("/")
    @peer_login_required
    def peer() -> str:
        return "ok"

    @app.get("/login")
    def peer_login() -> str:
        if user_in_redis:
            users.set(PEER_USER_PREFIX + PEER_PROFILE["sub"], json.dumps(PEER_PROFILE))
        else:
            session["peer_profile"] = PEER_PROFILE
        login_user(PeerUser(PEER_PROFILE))
        return "logged in"

    return app


def ours_app() -> Flask:
    app = _session_app("bench.ours")
    app.config.update(
        WIKIMEDIA_CLIENT_ID=_env("BENCH_CLIENT_ID"),
        WIKIMEDIA_CLIENT_SECRET=_env("BENCH_CLIENT_SECRET"),
        WIKIMEDIA_WIKI_URL=_env("BENCH_WIKI_URL"),
        WIKIMEDIA_REDIRECT_URI=_env("BENCH_REDIRECT_URI"),
        WIKIMEDIA_USER_AGENT=USER_AGENT,
    )
    Wikimedia(app)

    @app.get("/private")
    @login_required
    def private() -> str:
        return "ok"

    @app.get("/edit")
    @requires_right("edit")
    def edit() -> str:
        return render_template("edit.html")

    @app.get("/whoami")
    def whoami() -> str:
        return current_user.username if current_user else ""

    return app


def create_app() -> DispatcherMiddleware:
    """The WSGI app gunicorn serves."""
    return DispatcherMiddleware(
        ours_app(),
        {
            "/floor": floor_app(),
            "/session": session_app(),
            "/peer": peer_app(user_in_redis=False),
            "/peerdb": peer_app(user_in_redis=True),
        },
    )
