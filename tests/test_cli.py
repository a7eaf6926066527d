"""``flask wikimedia check``: configuration problems in plain words, exit status 1 on any."""

from __future__ import annotations

import json

import pytest
from apps import CLIENT_ID, make_app
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from support import free_port

from flask_wikimedia import Wikimedia
from flask_wikimedia.cli import cli
from flask_wikimedia.devwiki import DevWiki


def check(app: Flask):
    return app.test_cli_runner().invoke(args=["wikimedia", "check"])


def test_a_good_configuration_passes(devwiki, redis_client):
    result = check(make_app(devwiki, redis_client))
    assert result.exit_code == 0, result.output
    assert "configuration looks good" in result.output
    assert devwiki.calls["token"] == 1  # the consumer was checked at the wiki
    assert devwiki.calls["token:refresh_token"] == 1


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"SECRET_KEY": "short"}, "[Flask] SECRET_KEY is too short (5 bytes"),
        (
            {"WIKIMEDIA_USER_AGENT": "python-requests/2.32"},
            "[Flask-Wikimedia] WIKIMEDIA_USER_AGENT should look like",
        ),
        (
            {"WIKIMEDIA_REDIRECT_URI": "http://mytool.toolforge.org/auth/callback"},
            "is not https",
        ),
        (
            {"WIKIMEDIA_REDIRECT_URI": "https://mytool.toolforge.org/oauth/done"},
            "does not end with the callback route (/auth/callback)",
        ),
        ({"WIKIMEDIA_CLIENT_SECRET": "wrong" * 8}, "does not accept this consumer"),
        ({"WIKIMEDIA_CLIENT_ID": "f" * 32}, "does not accept this consumer"),
        ({"WIKIMEDIA_CLIENT_ID": "my-tool"}, "does not look like an OAuth 2.0 consumer key"),
    ],
)
def test_problems_are_reported_in_plain_words(devwiki, redis_client, config, words):
    result = check(make_app(devwiki, redis_client, **config))
    assert result.exit_code == 1
    assert "problem(s)" in result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_unreachable_redis_is_reported(devwiki):
    app = make_app(devwiki, None, WIKIMEDIA_REDIS=f"redis://127.0.0.1:{free_port()}/0")
    result = check(app)
    assert result.exit_code == 1
    assert "Redis (the login store) cannot be reached" in result.output


def test_missing_redis_is_reported(devwiki):
    result = check(make_app(devwiki, None))
    assert result.exit_code == 1
    assert "[Flask-Wikimedia] WIKIMEDIA_REDIS is not set" in result.output


def test_unreachable_wiki_is_reported(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_WIKI_URL=f"http://127.0.0.1:{free_port()}/w")
    result = check(app)
    assert result.exit_code == 1
    assert "[Flask-Wikimedia] WIKIMEDIA_WIKI_URL: " in result.output
    assert "did not answer (connection failed)" in result.output
    assert result.output.count("reach") == 0  # said once, in plain words, not twice


def test_a_url_that_is_not_a_wiki_is_reported(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_WIKI_URL=devwiki.base_url + "/nothing")
    result = check(app)
    assert result.exit_code == 1
    assert "does not look like a wiki with OAuth 2.0" in result.output


def test_public_client_on_an_old_wiki_is_told_about_the_secret(redis_client):
    old = DevWiki(flavor="1.39")
    with old.serve():
        app = make_app(old, redis_client, confidential=False)
        result = check(app)
    assert result.exit_code == 1
    assert "T323855" in result.output


def test_development_wiki_in_the_app_is_reported():
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="x" * 40, WIKIMEDIA_DEV_WIKI=True)
    Wikimedia(app)
    result = check(app)
    assert result.exit_code == 1
    assert "[Flask-Wikimedia] WIKIMEDIA_DEV_WIKI is on" in result.output


def test_an_app_that_does_not_start_is_reported_not_a_traceback():
    def create_app() -> Flask:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="x" * 40)  # production mode, no consumer key
        Wikimedia(app)
        return app

    result = CliRunner().invoke(cli, ["check"], obj=ScriptInfo(create_app=create_app))
    assert result.exit_code == 1
    assert "The app does not start" in result.output
    assert "[Flask-Wikimedia] WIKIMEDIA_CLIENT_ID is not set" in result.output
    assert "Traceback" not in result.output


def test_five_problems_are_all_listed_in_one_run(devwiki, redis_client, monkeypatch):
    """Issue 15: one run shows every problem (it took five runs to see five)."""
    monkeypatch.setenv("FLASK_WIKIMEDIA_CLIENTID", CLIENT_ID)
    app = make_app(
        devwiki,
        redis_client,
        SECRET_KEY="short",
        WIKIMEDIA_USER_AGENT="curl/8",
        WIKIMEDIA_REDIRECT_URI="http://mytool.example/auth/callback",
        WIKIMEDIA_SCOPE="basic",
    )
    result = check(app)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("  - ")]
    assert [line.split()[2] for line in lines] == [
        "SECRET_KEY",
        "WIKIMEDIA_USER_AGENT",
        "WIKIMEDIA_REDIRECT_URI",
        "WIKIMEDIA_SCOPE",
        "FLASK_WIKIMEDIA_CLIENTID",
    ]
    assert "Flask-Wikimedia found 5 problem(s)" in result.output
    assert "Did you mean WIKIMEDIA_SCOPES?" in result.output
    assert "Did you mean FLASK_WIKIMEDIA_CLIENT_ID?" in result.output


def test_five_startup_problems_are_all_listed_in_one_run():
    """An app that does not start: every reason at once, as check output, no traceback."""

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config.update(
            SECRET_KEY="x" * 20,
            WIKIMEDIA_CLIENT_ID=None,
            WIKIMEDIA_WIKI_URL="http://wiki.example/w",
        )
        Wikimedia(app)
        return app

    result = CliRunner().invoke(cli, ["check"], obj=ScriptInfo(create_app=create_app))
    assert result.exit_code == 1
    assert "Flask-Wikimedia found 6 problem(s)" in result.output
    for setting in (
        "[Flask] SECRET_KEY is too short (20 bytes",
        "[Flask-Wikimedia] WIKIMEDIA_CLIENT_ID is not set",
        "[Flask-Wikimedia] WIKIMEDIA_WIKI_URL 'http://wiki.example/w' is not https",
        "[Flask-Wikimedia] WIKIMEDIA_USER_AGENT is not set",
        "[Flask-Wikimedia] WIKIMEDIA_REDIRECT_URI is not set",
        "[Flask-Wikimedia] WIKIMEDIA_REDIS is not set",
    ):
        assert setting in result.output
    assert "Traceback" not in result.output


def test_json_output_for_scripts(devwiki, redis_client):
    good = (
        make_app(devwiki, redis_client)
        .test_cli_runner()
        .invoke(args=["wikimedia", "check", "--json"])
    )
    assert good.exit_code == 0
    assert json.loads(good.output) == {"ok": True, "started": True, "problems": []}
    bad = make_app(devwiki, redis_client, SECRET_KEY="short").test_cli_runner()
    result = bad.invoke(args=["wikimedia", "check", "--json"])
    assert result.exit_code == 1
    answer = json.loads(result.output)
    assert answer["ok"] is False
    assert answer["problems"][0]["setting"] == "SECRET_KEY"
    assert answer["problems"][0]["owner"] == "Flask"
    assert "too short" in answer["problems"][0]["message"]


def test_a_user_agent_without_a_version_follows_the_policy(devwiki, redis_client):
    """The policy's version part is optional: the sample tool's default agent passes."""
    agent = "fw-template (https://fw-template.toolforge.org/; tools.fw-template@toolforge.org)"
    result = check(make_app(devwiki, redis_client, WIKIMEDIA_USER_AGENT=agent))
    assert result.exit_code == 0, result.output
