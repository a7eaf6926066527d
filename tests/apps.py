"""A small Flask app using the extension the way a tool author would, for the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, jsonify, render_template_string
from flask_session import Session

from flask_wikimedia import (
    Wikimedia,
    current_user,
    login_required,
    requires_grant,
    requires_group,
    requires_right,
)
from flask_wikimedia.devwiki import DevClient, DevWiki
from flask_wikimedia.state import get_state

CLIENT_ID = "0123456789abcdef0123456789abcdef"
CLIENT_SECRET = "f" * 40
USER_AGENT = "FlaskWikimediaTests/1.0 (https://example.org/tests; tests@example.org)"

PAGE = """<!doctype html><title>me</title>
{% if current_user %}<p>Hello <bdi>{{ current_user.username }}</bdi></p>{{ logout_form() }}
{% else %}<p>Logged out</p>{% endif %}"""


def register_client(wiki: DevWiki, *, confidential: bool = True) -> DevClient:
    return wiki.add_client(
        DevClient(
            client_id=CLIENT_ID,
            secret=CLIENT_SECRET if confidential else None,
            redirect_uri="http://localhost/auth/callback",
            grants=["basic", "editpage", "highvolume"],
        )
    )


def says(text: str) -> Callable[[], str]:
    """A view that answers ``text``."""

    def view() -> str:
        return text

    return view


def make_app(
    wiki: DevWiki,
    redis_client: redis.Redis | None = None,
    *,
    confidential: bool = True,
    **config: Any,
) -> Flask:
    """An app logged in against ``wiki`` over real HTTP, with Flask-Session on Redis when
    ``redis_client`` is given (the recommended setup), else Flask's cookie session."""
    if CLIENT_ID not in wiki.clients:
        register_client(wiki, confidential=confidential)
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-that-is-long-enough-0123456789",
        WIKIMEDIA_CLIENT_ID=CLIENT_ID,
        WIKIMEDIA_CLIENT_SECRET=CLIENT_SECRET if confidential else None,
        WIKIMEDIA_WIKI_URL=wiki.base_url,
        WIKIMEDIA_USER_AGENT=USER_AGENT,
        WIKIMEDIA_TIMEOUT=(1.0, 1.5),
    )
    if redis_client is not None:
        app.config.update(
            SESSION_TYPE="redis",
            SESSION_REDIS=redis_client,
            SESSION_KEY_PREFIX="tests:session:",
            WIKIMEDIA_KEY_PREFIX="tests:wikimedia:",
        )
        Session(app)
    app.config.update(config)
    Wikimedia(app)

    @app.get("/")
    def index() -> str:
        return "public"

    @app.get("/me")
    def me() -> str:
        return render_template_string(PAGE)

    @app.route("/private", methods=["GET", "POST"])
    @login_required
    def private() -> str:
        assert current_user
        return f"private page of {current_user.username}"

    @app.get("/fresh")
    @login_required(fresh=True)
    def fresh() -> str:
        assert current_user
        return f"fresh {current_user.username}"

    @app.get("/async")
    @login_required
    async def async_view() -> str:
        assert current_user
        return f"async {current_user.username}"

    # A page behind each kind of requirement; each answers a fixed text.
    gated = {
        "edit": (requires_right("edit"), "can edit"),
        "block": (requires_right("block", "delete"), "can block"),
        "sysop": (requires_group("sysop"), "sysop only"),
        "grant": (requires_grant("editpage"), "has editpage"),
        "nogrant": (requires_grant("createaccount"), "has createaccount"),
    }
    for name, (requirement, text) in gated.items():
        app.add_url_rule(f"/{name}", name, requirement(says(text)))

    @app.get("/api/whoami")
    @login_required
    def whoami() -> Any:
        assert current_user
        return jsonify(username=current_user.username, rights=sorted(current_user.rights))

    return app


def login_record(app: Flask, ref: str) -> Any:
    """The decrypted login record behind a session reference (tests only)."""
    stored = get_state(app).store.get(ref)
    return stored.record if stored else None
