"""An app with an OAuth 1.0a consumer, against the development wiki over real HTTP."""

from __future__ import annotations

from typing import Any

import redis
from apps import make_app
from flask import Flask, jsonify, request

from flask_wikimedia.api import user_session
from flask_wikimedia.devwiki import DevClient, DevWiki

KEY = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a"
SECRET = "2b" * 20
CALLBACK = "http://localhost/auth/callback"


def register_consumer(wiki: DevWiki, *, callback_is_prefix: bool = True) -> DevClient:
    """The tool's 1.0a consumer as its author registered it (callback = our callback URL)."""
    return wiki.add_client(
        DevClient(
            client_id=KEY,
            secret=SECRET,
            redirect_uri=CALLBACK,
            grants=["basic", "editpage", "highvolume"],
            oauth_version="1.0a",
            callback_is_prefix=callback_is_prefix,
        )
    )


def make_app1(wiki: DevWiki, redis_client: redis.Redis | None, **config: Any) -> Flask:
    """``make_app`` switched to OAuth 1.0a by configuration alone, plus API views."""
    if KEY not in wiki.clients:
        register_consumer(wiki)
    settings: dict[str, Any] = {
        "WIKIMEDIA_OAUTH_VERSION": "1.0a",
        "WIKIMEDIA_CLIENT_ID": KEY,
        "WIKIMEDIA_CLIENT_SECRET": SECRET,
        "WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX": True,
    }
    settings.update(config)
    return with_api_views(make_app(wiki, redis_client, **settings))


def with_api_views(app: Flask) -> Flask:
    @app.post("/api-edit")
    def api_edit() -> Any:
        answer = user_session().edit(
            request.form["title"], appendtext=request.form["text"], summary="from a test"
        )
        return jsonify(answer)

    @app.get("/api-me")
    def api_me() -> Any:
        info = user_session().get_json(action="query", meta="userinfo")
        return jsonify(info["query"]["userinfo"])

    return app
