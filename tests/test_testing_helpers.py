"""flask_wikimedia.testing, used the way a tool author would: a conftest.py that loads the plugin,
an app factory with @requires_right views, and tests of three lines each, run by pytest itself."""

from __future__ import annotations

import textwrap

import pytest
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from flask_wikimedia import Wikimedia, requires_grant, requires_right
from flask_wikimedia.devwiki import DEV_CLIENT_ID, DevWiki
from flask_wikimedia.testing import (
    PLAIN_USER_RIGHTS,
    dev_config,
    ensure_user,
    login,
    logout,
)

pytest_plugins = ["pytester"]

TOOL = """
from flask import Flask
from flask_wikimedia import Wikimedia, current_user, requires_group, requires_right
from flask_wikimedia.api import user_session


def create_app(config=None):
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="a tool's secret key, long enough for the test",
        WIKIMEDIA_CLIENT_ID="0123456789abcdef0123456789abcdef",
        WIKIMEDIA_CLIENT_SECRET="the real consumer secret",
        WIKIMEDIA_REDIRECT_URI="https://mytool.toolforge.org/auth/callback",
        WIKIMEDIA_USER_AGENT="MyTool/1.0 (https://mytool.toolforge.org; me@example.org)",
    )
    app.config.update(config or {})
    Wikimedia(app)

    @app.get("/block-tools")
    @requires_right("block")
    def block_tools():
        return f"block tools for {current_user.username}"

    @app.get("/stewards")
    @requires_group("steward")
    def stewards():
        return "stewards only"

    @app.post("/sign")
    @requires_right("edit")
    def sign():
        user_session().edit("Sandbox", appendtext="~~~~", summary="Signing")
        return "signed"

    return app
"""

TESTS = """
from flask_wikimedia.testing import dev_config, login, logout
from tool import create_app


def test_blockers_see_the_block_tools(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    login(client, devwiki, "Carol", add_rights=["block"])
    assert client.get("/block-tools").text == "block tools for Carol"


def test_rights_are_exactly_the_ones_given(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    login(client, devwiki, "Carol", add_rights=["block"])
    login(client, devwiki, "Carol", rights=["read"])
    assert client.get("/block-tools").status_code == 403


def test_logout_ends_the_login(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    login(client, devwiki, "Carol", add_rights=["block"])
    assert logout(client, next="/bye").headers["Location"] == "/bye"
    assert client.get("/block-tools").headers["Location"].startswith("/auth/login")


def test_others_do_not(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    login(client, devwiki, "Dave")
    assert client.get("/block-tools").status_code == 403


def test_blocked_blockers_do_not_either(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    login(client, devwiki, "Eve", add_rights=["block"], blocked=True)
    assert client.get("/block-tools").status_code == 403


def test_stewards(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    login(client, devwiki, "Steward", add_groups=["steward"])
    assert client.get("/stewards").status_code == 200


def test_signing_edits_as_the_user(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    login(client, devwiki, "Frank")
    assert client.post("/sign").text == "signed"
    assert devwiki.edits[-1]["user"] == "Frank"


def test_logged_out_visitors_are_sent_to_the_login(devwiki):
    client = create_app(dev_config(devwiki)).test_client()
    assert client.get("/block-tools").headers["Location"].startswith("/auth/login")
"""


def test_a_tool_author_tests_their_views_with_the_plugin(pytester: pytest.Pytester):
    pytester.makeconftest('pytest_plugins = ["flask_wikimedia.testing"]\n')
    pytester.makepyfile(tool=TOOL, test_tool=TESTS)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_the_plugin_fixture_serves_a_fresh_wiki_per_test(pytester: pytest.Pytester):
    pytester.makeconftest('pytest_plugins = ["flask_wikimedia.testing"]\n')
    pytester.makepyfile(
        textwrap.dedent(
            """
            import requests

            def test_one(devwiki):
                devwiki.pages["Scratch"] = "one"
                answer = requests.get(devwiki.base_url + "/api.php", timeout=5)
                assert answer.status_code == 200

            def test_two(devwiki):
                assert "Scratch" not in devwiki.pages
            """
        )
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_dev_config_points_at_the_served_wiki(devwiki: DevWiki):
    config = dev_config(devwiki)
    assert config["WIKIMEDIA_WIKI_URL"] == devwiki.base_url
    assert config["WIKIMEDIA_CLIENT_ID"] == DEV_CLIENT_ID
    assert config["TESTING"] is True
    assert (
        len(config["SECRET_KEY"]) >= 32
        and config["SECRET_KEY"] == dev_config(devwiki)["SECRET_KEY"]
    )
    with pytest.raises(RuntimeError):
        dev_config(DevWiki())  # not served


def test_ensure_user_sets_exactly_the_rights_and_groups_given(devwiki: DevWiki):
    carol = ensure_user(devwiki, "Carol", rights=["read", "block"], groups=["sysop"], editcount=7)
    assert carol.rights == ["read", "block"]
    assert carol.groups == ["sysop"]
    assert carol.editcount == 7
    again = ensure_user(devwiki, "Carol", add_rights=["delete"], add_groups=["user"])
    assert again.rights == ["read", "block", "delete"]
    assert again.groups == ["sysop", "user"]
    dave = ensure_user(devwiki, "Dave", add_rights=["block"])
    assert set(dave.rights) == {*PLAIN_USER_RIGHTS, "block"}
    with pytest.raises(TypeError, match="list of names"):
        ensure_user(devwiki, "Dave", rights="block")


def test_login_returns_the_refusal_of_a_login_policy(devwiki: DevWiki):
    app = Flask(__name__)
    app.config.update(dev_config(devwiki), SECRET_KEY="x" * 40, WIKIMEDIA_DENY_BLOCKED=True)
    Wikimedia(app)

    @app.get("/edit")
    @requires_right("edit")
    def edit() -> str:
        return "edit"

    client = app.test_client()
    response = login(client, devwiki, "Blocked")
    assert response.status_code == 403
    assert client.get("/edit").status_code == 302
    assert login(client, devwiki, "Alice", next="/edit").headers["Location"] == "/edit"
    assert client.get("/edit").text == "edit"


def _grant_app(devwiki: DevWiki, **config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(dev_config(devwiki), SECRET_KEY="x" * 40, **config)
    Wikimedia(app)

    @app.get("/edit")
    @requires_grant("editpage")
    def edit() -> str:
        return "edit"

    return app


def test_grants_are_exactly_the_ones_given(devwiki: DevWiki):
    client = _grant_app(devwiki).test_client()
    login(client, devwiki, "Alice", grants=["basic"])
    assert client.get("/edit").status_code == 403
    login(client, devwiki, "Alice", grants=["basic", "editpage"])
    assert client.get("/edit").text == "edit"


def test_logout_passes_flask_wtf_csrf_protection(devwiki: DevWiki):
    app = _grant_app(devwiki)
    CSRFProtect(app)
    client = app.test_client()
    login(client, devwiki, "Alice")
    assert client.get("/edit").status_code == 200
    response = logout(client)
    assert response.status_code == 303
    assert client.get("/edit").status_code == 302


def test_logout_with_a_forged_form_is_refused(devwiki: DevWiki):
    # The helper really goes through the CSRF check: the same POST without its token fails.
    client = _grant_app(devwiki).test_client()
    login(client, devwiki, "Alice")
    assert client.post("/auth/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/edit").status_code == 200


MODULE_APP = """
from flask import Flask
from flask_wikimedia import Wikimedia, current_user, login_required, requires_right

app = Flask(__name__)
app.config.from_prefixed_env()
wikimedia = Wikimedia(app)


@app.get("/")
@login_required
def index():
    return f"Hello, {current_user.username}!"


@app.get("/blocks")
@requires_right("block")
def blocks():
    count = len(current_user.rights)
    return f"Only admins see this; you have {count} rights."
"""

MODULE_APP_CONFTEST = """
import os

import pytest

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.testing import dev_environ

WIKI = DevWiki()
WIKI.start()
os.environ.update(dev_environ(WIKI))


@pytest.fixture
def devwiki():
    return WIKI
"""

MODULE_APP_TESTS = """
from flask_wikimedia.testing import login, logout
from myapp import app


def test_hello():
    pass


def test_a_module_level_app_logs_in(devwiki):
    client = app.test_client()
    login(client, devwiki, "Carol", rights=["read", "block"])
    assert client.get("/").text == "Hello, Carol!"
    assert client.get("/blocks").text == "Only admins see this; you have 2 rights."
    login(client, devwiki, "Carol", rights=["read"])
    assert client.get("/blocks").status_code == 403
    logout(client)
    assert client.get("/").status_code == 302
"""


def test_a_module_level_app_is_tested_through_the_environment(pytester: pytest.Pytester):
    # A subprocess: the conftest changes os.environ, which must not leak into this run.
    pytester.makeconftest(MODULE_APP_CONFTEST)
    pytester.makepyfile(myapp=MODULE_APP, test_myapp=MODULE_APP_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_an_app_pointed_elsewhere_fails_with_what_to_do(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    # The same module-level app without the conftest: it uses its own built-in dev wiki
    # (FLASK_WIKIMEDIA_DEV_WIKI), which the test client cannot reach over HTTP.
    monkeypatch.setenv("FLASK_TESTING", "true")
    monkeypatch.setenv("FLASK_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("FLASK_WIKIMEDIA_DEV_WIKI", "true")
    pytester.makepyfile(myapp=MODULE_APP, test_myapp=MODULE_APP_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*not to the development wiki this test serves*dev_environ*"])
