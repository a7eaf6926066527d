"""flask_wikimedia.settings: one set of rules, every problem at once, fail closed."""

from __future__ import annotations

import threading

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from flask_wikimedia import Wikimedia
from flask_wikimedia.devwiki.approve import approve
from flask_wikimedia.settings import (
    MIN_SECRET_KEY_BYTES,
    ConfigurationProblems,
    secret_key_problem,
)
from flask_wikimedia.state import get_state

GOOD = {
    "SECRET_KEY": "k" * MIN_SECRET_KEY_BYTES,
    "WIKIMEDIA_CLIENT_ID": "5eed" * 8,
    "WIKIMEDIA_USER_AGENT": "Test/1 (t@example.org)",
    "WIKIMEDIA_REDIRECT_URI": "https://tool.example/auth/callback",
    "WIKIMEDIA_REDIS": "redis://127.0.0.1:1/0",
}


def app_with(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    Wikimedia(app)
    return app


def test_init_app_lists_every_problem_in_one_error():
    with pytest.raises(ConfigurationProblems) as refused:
        app_with(SECRET_KEY="short", WIKIMEDIA_CLIENTID="x", WIKIMEDIA_SCOPES=7)
    settings = [p.setting for p in refused.value.problems]
    assert settings == [
        "SECRET_KEY",
        "WIKIMEDIA_CLIENT_ID",
        "WIKIMEDIA_USER_AGENT",
        "WIKIMEDIA_REDIRECT_URI",
        "WIKIMEDIA_SCOPES",
        "WIKIMEDIA_REDIS",
        "WIKIMEDIA_CLIENTID",
    ]
    message = str(refused.value)
    assert "7 configuration problem(s)" in message
    assert "Did you mean WIKIMEDIA_CLIENT_ID?" in message
    assert isinstance(refused.value, RuntimeError)


@pytest.mark.parametrize("key", ["short", "é" * 15, "k" * (MIN_SECRET_KEY_BYTES - 1)])
def test_a_short_secret_key_is_refused_outside_debug_and_testing(key):
    """Issue 9.4: under 32 bytes is refused everywhere, not only on Toolforge."""
    with pytest.raises(ConfigurationProblems, match=r"SECRET_KEY .*is too short"):
        app_with(**{**GOOD, "SECRET_KEY": key})
    app_with(**{**GOOD, "SECRET_KEY": key, "TESTING": True})
    app_with(**{**GOOD, "SECRET_KEY": key, "DEBUG": True})


def test_a_long_enough_secret_key_starts():
    app = app_with(**GOOD)
    assert get_state(app).oauth.client_id == GOOD["WIKIMEDIA_CLIENT_ID"]
    assert secret_key_problem("é" * 16, relaxed=False) is None  # 32 bytes in UTF-8


def test_the_development_wiki_needs_debug_or_testing():
    with pytest.raises(ConfigurationProblems, match="WIKIMEDIA_DEV_WIKI"):
        app_with(**{**GOOD, "WIKIMEDIA_DEV_WIKI": True})


def dev_app() -> Flask:
    app = Flask(__name__)
    app.config.update(DEBUG=True, SECRET_KEY="k" * 40, WIKIMEDIA_DEV_WIKI=True)
    Wikimedia(app)

    @app.get("/")
    def home() -> str:
        return "home"

    return app


def test_the_development_wiki_url_never_comes_from_the_host_header():
    app = dev_app()
    with app.test_request_context("/", headers={"Host": "evil.example:9999"}):
        assert "evil" not in get_state(app).wiki_base()
        assert get_state(app).browser_wiki_base() == "/_devwiki/w"


def test_a_forged_host_header_cannot_point_token_requests_elsewhere():
    """Issue 9.4: the server's token request goes to the server's own bound address, whatever
    Host the browser (or an attacker) sent: a full login with a forged Host on the callback,
    while a capture server listens where the Host header points."""
    captured: list[str] = []

    def capture(environ, start_response):
        captured.append(environ["PATH_INFO"])
        start_response("500 Internal Server Error", [])
        return [b""]

    trap = make_server("127.0.0.1", 0, capture)
    trap.timeout = 0.1
    app = dev_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (server, trap)]
    for thread in threads:
        thread.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        http = requests.Session()
        start = http.get(base + "/auth/login", allow_redirects=False, timeout=10)
        assert start.status_code == 302
        callback = approve(base + start.headers["Location"], "Alice", True)
        forged = {"Host": f"127.0.0.1:{trap.port}"}
        done = http.get(callback, headers=forged, allow_redirects=False, timeout=20)
        assert done.status_code == 303, done.text
        assert captured == []
    finally:
        server.shutdown()
        trap.shutdown()


@pytest.mark.parametrize("value", ["two", -1, 1.5, True])
def test_wait_settings_must_be_whole_numbers(value):
    """WIKIMEDIA_REDIS_WAIT_* are parsed in settings.py, each bad value named with its fix."""
    for key in ("WIKIMEDIA_REDIS_WAIT_REPLICAS", "WIKIMEDIA_REDIS_WAIT_TIMEOUT"):
        with pytest.raises(ConfigurationProblems, match=f"{key} must be a whole number"):
            app_with(**{**GOOD, key: value})


def test_wait_settings_reach_the_store_and_the_sessions():
    app = app_with(**GOOD, WIKIMEDIA_REDIS_WAIT_REPLICAS="2", WIKIMEDIA_REDIS_WAIT_TIMEOUT=" 40 ")
    durability = get_state(app).store.durability  # type: ignore[attr-defined]
    assert (durability.replicas, durability.timeout_ms) == (2, 40)
    assert app.extensions["flask_wikimedia.sessions.durability"] is durability
