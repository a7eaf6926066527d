"""OAuth version settings: init_app refuses inconsistent ones, saying what to set."""

from __future__ import annotations

import pytest
from flask import Flask
from oauth1_apps import KEY, SECRET, make_app1

from flask_wikimedia import Wikimedia, current_user
from flask_wikimedia.cli import problems
from flask_wikimedia.devwiki import DEV_OAUTH1_KEY
from flask_wikimedia.errors import ConfigurationError
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import dev_config, login

BASE = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "WIKIMEDIA_WIKI_URL": "http://127.0.0.1:1/w",
    "WIKIMEDIA_CLIENT_ID": KEY,
    "WIKIMEDIA_CLIENT_SECRET": SECRET,
}


def build(**config) -> Flask:
    app = Flask(__name__)
    app.config.update(BASE, **config)
    Wikimedia(app)
    return app


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"WIKIMEDIA_OAUTH_VERSION": "1.0"}, "WIKIMEDIA_OAUTH_VERSION"),
        ({"WIKIMEDIA_OAUTH_VERSION": "3"}, "'2.0' (the default) or '1.0a'"),
        (
            {"WIKIMEDIA_OAUTH_VERSION": "1.0a", "WIKIMEDIA_CLIENT_SECRET": None},
            "always has a secret",
        ),
        ({"WIKIMEDIA_OAUTH_VERSION": "1.0a", "WIKIMEDIA_CLIENT_ID": None}, "consumer's key"),
        (
            {"WIKIMEDIA_OAUTH_VERSION": "1.0a", "WIKIMEDIA_SCOPES": ["basic"]},
            "Remove WIKIMEDIA_SCOPES",
        ),
        (
            {"WIKIMEDIA_OAUTH_VERSION": "1.0a", "WIKIMEDIA_OAUTH1_CLIENT_ID": KEY},
            "put the consumer key",
        ),
        ({"WIKIMEDIA_OAUTH1_CLIENT_ID": KEY}, "WIKIMEDIA_OAUTH1_CLIENT_SECRET"),
        ({"WIKIMEDIA_OAUTH1_CLIENT_SECRET": SECRET}, "WIKIMEDIA_OAUTH1_CLIENT_ID"),
    ],
)
def test_inconsistent_settings_stop_startup(config, says):
    with pytest.raises(ConfigurationError, match=None) as refused:
        build(**config)
    assert says in str(refused.value)


def test_versions_and_consumers():
    plain = get_state(build())
    assert plain.oauth_version == "2.0" and plain.oauth1 is None
    one = get_state(build(WIKIMEDIA_OAUTH_VERSION="1.0a"))
    assert one.oauth_version == "1.0a" and one.oauth1 is not None
    assert one.oauth1.consumer_key == KEY and not one.oauth1.callback_is_prefix
    both = get_state(
        build(
            WIKIMEDIA_CLIENT_ID="0" * 32,
            WIKIMEDIA_OAUTH1_CLIENT_ID=KEY,
            WIKIMEDIA_OAUTH1_CLIENT_SECRET=SECRET,
            WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX=True,
        )
    )
    assert both.oauth_version == "2.0" and both.oauth.client_id == "0" * 32
    assert both.oauth1 is not None and both.oauth1.callback_is_prefix


def test_from_prefixed_env_values_are_understood(monkeypatch):
    # Flask's from_prefixed_env reads "2.0" as a float and "true" as True.
    app = Flask(__name__)
    app.config.update(BASE)
    monkeypatch.setenv("FLASK_WIKIMEDIA_OAUTH_VERSION", "2.0")
    app.config.from_prefixed_env()
    Wikimedia(app)
    assert get_state(app).oauth_version == "2.0"


def test_development_wiki_has_a_built_in_1_0a_consumer():
    app = build(WIKIMEDIA_DEV_WIKI=True, WIKIMEDIA_OAUTH_VERSION="1.0a")
    state = get_state(app)
    assert state.oauth1 is not None and state.oauth1.consumer_key == DEV_OAUTH1_KEY


def test_secrets_stay_out_of_reprs():
    state = get_state(build(WIKIMEDIA_OAUTH_VERSION="1.0a"))
    assert state.oauth1 is not None
    assert SECRET not in repr(state.oauth1)


def test_configuration_check_probes_the_1_0a_consumer(devwiki, redis_client):
    good = make_app1(devwiki, redis_client)
    bad = make_app1(devwiki, redis_client, WIKIMEDIA_CLIENT_SECRET="9" * 40)
    with good.app_context():
        assert not [p for p in problems(good) if "consumer" in str(p)]
    with bad.app_context():
        complaint = [str(p) for p in problems(bad) if "OAuth 1.0a consumer" in str(p)]
    assert complaint and "WIKIMEDIA_CLIENT_SECRET" in complaint[0]
    assert "9" * 40 not in complaint[0]


def test_dev_config_for_a_1_0a_tool(devwiki):
    app = Flask(__name__)
    app.config.update(dev_config(devwiki, oauth_version="1.0a"))
    Wikimedia(app)

    @app.get("/who")
    def who() -> str:
        return current_user.username if current_user else "nobody"

    client = app.test_client()
    assert login(client, devwiki, "Alice").status_code == 303
    assert client.get("/who").text == "Alice"
    assert devwiki.calls["oauth1:identify"] == 1
