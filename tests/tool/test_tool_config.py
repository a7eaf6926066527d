"""The tool's configuration matrix: zero-config local runs, Toolforge's refusals, the private file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from flask.cli import ScriptInfo
from flask.sessions import SecureCookieSessionInterface
from support import free_port
from toolkit import (
    CLIENT_ID,
    KEY_PREFIX,
    SECRET_KEY,
    TOOL,
    TOOLFORGE_CALLBACK,
    register_tool,
    scrubbed_environ,
    toolforge_environ,
    wait_until_serving,
)

from flask_wikimedia.cli import cli
from flask_wikimedia.devwiki.approve import approve
from flask_wikimedia.sessions import SafeRedisSessionInterface
from flask_wikimedia.settings import ConfigurationProblems
from flask_wikimedia.state import get_state
from flask_wikimedia.store import MemoryLoginStore, RedisLoginStore
from template_tool import create_app
from template_tool.settings import TOOLFORGE_REDIS_URL, on_toolforge, toolforge_tool_name


def test_zero_config_runs_against_the_development_wiki(clean_env):
    clean_env.setenv("FLASK_DEBUG", "1")  # what `make run` (flask run --debug) sets
    app = create_app()
    assert app.config["DEV_MODE"] is True
    assert app.config["WIKIMEDIA_DEV_WIKI"] is True
    assert app.debug
    assert len(app.secret_key) >= 32
    assert isinstance(app.session_interface, SecureCookieSessionInterface)
    assert isinstance(get_state(app).store, MemoryLoginStore)
    page = app.test_client().get("/")
    assert page.status_code == 200
    assert "Log in with Wikimedia" in page.text
    assert "development wiki" in page.text
    assert app.test_client().get("/_devwiki/w/rest.php/oauth2/authorize").status_code != 404


def test_zero_config_secret_key_is_per_process_and_random(clean_env):
    clean_env.setenv("FLASK_DEBUG", "1")
    assert create_app().secret_key != create_app().secret_key


def test_no_client_id_outside_debug_refuses_instead_of_serving_the_development_wiki(clean_env):
    """Issue 9.4: a half-configured production start used to turn on DEBUG and the development
    wiki (anyone logs in as anyone). Now it refuses, listing everything to set at once."""
    with pytest.raises(ConfigurationProblems) as refused:
        create_app()
    assert [p.setting for p in refused.value.problems] == [
        "FLASK_WIKIMEDIA_CLIENT_ID",
        "FLASK_SECRET_KEY",
        "REDIS_URL",
    ]
    assert "flask --app app run --debug" in str(refused.value)


def test_the_development_wiki_is_an_explicit_choice(clean_env):
    clean_env.setenv("FLASK_DEBUG", "1")
    clean_env.setenv("FLASK_WIKIMEDIA_DEV_WIKI", "false")
    with pytest.raises(ConfigurationProblems, match="FLASK_WIKIMEDIA_CLIENT_ID is not set"):
        create_app()
    clean_env.delenv("FLASK_DEBUG")
    clean_env.setenv("FLASK_WIKIMEDIA_DEV_WIKI", "true")  # asked for by name: served, in debug
    app = create_app()
    assert app.config["DEV_MODE"] is True
    assert app.debug


def test_a_short_secret_key_is_refused_off_toolforge_too(clean_env, redis_server):
    clean_env.setenv("FLASK_WIKIMEDIA_CLIENT_ID", CLIENT_ID)
    clean_env.setenv("FLASK_SECRET_KEY", "s" * 31)
    clean_env.setenv("REDIS_URL", redis_server.url)
    with pytest.raises(ConfigurationProblems, match="FLASK_SECRET_KEY is too short"):
        create_app()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TOOLFORGE": "1"}, True),
        ({"TOOLFORGE": "true"}, True),
        ({"TOOLFORGE": "0", "TOOL_DATA_DIR": "/data/project/x"}, False),
        ({"TOOL_DATA_DIR": "/data/project/x"}, True),
        ({"TOOLFORGE": "no"}, False),
    ],
)
def test_toolforge_detection_rule(environ, expected):
    assert on_toolforge(environ) is expected


def test_no_markers_is_not_toolforge():
    if Path("/etc/wmcs-project").exists():
        pytest.skip("this host is a Wikimedia Cloud VPS instance")
    assert on_toolforge({}) is False


def test_tool_name_comes_from_the_tool_account():
    assert toolforge_tool_name({"TOOL_DATA_DIR": "/data/project/mytool"}) == "mytool"


def test_toolforge_settings_and_defaults(toolforge_env, clean_env, devwiki):
    clean_env.delenv("REDIS_URL")
    app = create_app()
    cfg = app.config
    assert cfg["TOOLFORGE"] is True
    assert cfg["REDIS_URL"] == TOOLFORGE_REDIS_URL
    assert cfg["WIKIMEDIA_REDIRECT_URI"] == TOOLFORGE_CALLBACK
    assert cfg["SESSION_COOKIE_SECURE"] is True
    assert cfg["SESSION_COOKIE_NAME"] == "__Host-session"
    assert cfg["SESSION_COOKIE_HTTPONLY"] is True
    assert cfg["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert cfg["SESSION_KEY_PREFIX"] == KEY_PREFIX + ":session:"
    assert cfg["WIKIMEDIA_KEY_PREFIX"] == KEY_PREFIX + ":wikimedia:"
    assert cfg["WIKIMEDIA_USER_AGENT"] == (
        f"{TOOL} (https://{TOOL}.toolforge.org/; tools.{TOOL}@toolforge.org)"
    )
    assert not app.debug
    assert isinstance(app.session_interface, SafeRedisSessionInterface)
    assert isinstance(get_state(app).store, RedisLoginStore)


def test_contact_goes_into_the_user_agent(toolforge_env, clean_env):
    clean_env.setenv("FLASK_TOOL_CONTACT", "maintainer@example.org")
    agent = create_app().config["WIKIMEDIA_USER_AGENT"]
    assert agent == f"{TOOL} (https://{TOOL}.toolforge.org/; maintainer@example.org)"


@pytest.mark.parametrize(
    ("missing", "hint"),
    [
        ("FLASK_SECRET_KEY", "toolforge envvars create FLASK_SECRET_KEY"),
        ("FLASK_WIKIMEDIA_CLIENT_ID", "toolforge envvars create FLASK_WIKIMEDIA_CLIENT_ID"),
        ("REDIS_KEY_PREFIX", "toolforge envvars create REDIS_KEY_PREFIX"),
    ],
)
def test_toolforge_refuses_to_start_without(toolforge_env, clean_env, missing, hint):
    clean_env.delenv(missing)
    with pytest.raises(RuntimeError) as refused:
        create_app()
    assert missing in str(refused.value)
    assert hint in str(refused.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("FLASK_SECRET_KEY", "short"), ("REDIS_KEY_PREFIX", "tool:")],
)
def test_toolforge_refuses_weak_secrets(toolforge_env, clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(RuntimeError, match=f"{name} is too short"):
        create_app()


@pytest.mark.parametrize("name", ["FLASK_WIKIMEDIA_DEV_WIKI", "FLASK_DEBUG"])
def test_toolforge_refuses_development_switches(toolforge_env, clean_env, name):
    clean_env.setenv(name, "true")
    with pytest.raises(RuntimeError, match=name):
        create_app()


def test_toolforge_needs_the_tool_name_when_it_cannot_tell(toolforge_env, clean_env):
    clean_env.delenv("FLASK_TOOL_NAME")
    with pytest.raises(RuntimeError, match="FLASK_TOOL_NAME"):
        create_app()


def test_local_production_without_secret_key_refuses(clean_env):
    clean_env.setenv("FLASK_WIKIMEDIA_CLIENT_ID", CLIENT_ID)
    with pytest.raises(RuntimeError, match="FLASK_SECRET_KEY"):
        create_app()


def test_local_production_without_redis_refuses(clean_env):
    clean_env.setenv("FLASK_WIKIMEDIA_CLIENT_ID", CLIENT_ID)
    clean_env.setenv("FLASK_SECRET_KEY", SECRET_KEY)
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        create_app()


def test_hex_client_id_stays_a_string(clean_env):
    # JSON would read this as the number 1.2345e+32.
    clean_env.setenv("FLASK_WIKIMEDIA_CLIENT_ID", "12345e27")
    app = create_app({"TESTING": True})
    assert app.config["WIKIMEDIA_CLIENT_ID"] == "12345e27"


def write_config(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_config_file_readable_by_others_is_refused(clean_env, tmp_path, mode):
    path = write_config(tmp_path / "config.yaml", f"SECRET_KEY: {SECRET_KEY}\n", mode)
    clean_env.setenv("TOOL_CONFIG", str(path))
    with pytest.raises(RuntimeError, match="chmod 600"):
        create_app()


def test_private_config_file_is_read(clean_env, tmp_path, redis_server):
    path = write_config(
        tmp_path / "config.yaml",
        f"SECRET_KEY: {SECRET_KEY}\nWIKIMEDIA_CLIENT_ID: '{CLIENT_ID}'\n"
        f"WIKIMEDIA_USER_AGENT: Test/1 (t@example.org)\n"
        f"WIKIMEDIA_REDIRECT_URI: https://tool.example/auth/callback\n"
        f"REDIS_URL: {redis_server.url}\nREDIS_KEY_PREFIX: {KEY_PREFIX}\n"
        "TOOL_TITLE: From the file\n",
        0o600,
    )
    clean_env.setenv("TOOL_CONFIG", str(path))
    clean_env.setenv("FLASK_TOOL_TITLE", "From the environment")  # the environment wins
    app = create_app()
    assert app.secret_key == SECRET_KEY
    assert app.config["WIKIMEDIA_CLIENT_ID"] == CLIENT_ID
    assert app.config["SESSION_KEY_PREFIX"] == KEY_PREFIX + ":session:"
    assert app.config["TOOL_TITLE"] == "From the environment"


def test_missing_named_config_file_is_refused(clean_env, tmp_path):
    clean_env.setenv("TOOL_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(RuntimeError, match="does not exist"):
        create_app()


def test_config_file_must_be_a_mapping(clean_env, tmp_path):
    path = write_config(tmp_path / "config.yaml", "- just\n- a list\n", 0o600)
    clean_env.setenv("TOOL_CONFIG", str(path))
    with pytest.raises(RuntimeError, match="mapping"):
        create_app()


REPO = Path(__file__).resolve().parents[2]


def test_check_passes_on_the_toolforge_setup_of_deploy_md(toolforge_env, redis_client, devwiki):
    """Issue 15: on a correct Toolforge setup (docs/deploy.md; the dev wiki standing in for the
    wiki, the test Redis for Toolforge's) the check exits 0, the tool's own defaults included
    (its User-Agent has no version, which the policy allows)."""
    register_tool(devwiki, TOOLFORGE_CALLBACK)
    result = CliRunner().invoke(cli, ["check"], obj=ScriptInfo(create_app=create_app))
    assert result.exit_code == 0, result.output
    assert "configuration looks good" in result.output


def test_check_shows_the_tools_startup_problems_as_check_output(devwiki, redis_server):
    """`flask --app app wikimedia check` on the tool with Toolforge settings missing: every
    problem, whose setting it is, as check output (not a traceback); --json for scripts."""
    assert devwiki.base_url is not None
    env = scrubbed_environ()
    env.update(toolforge_environ(devwiki.base_url, redis_server.url))
    del env["FLASK_SECRET_KEY"], env["REDIS_KEY_PREFIX"]
    env["FLASK_WIKIMEDIA_CLIENTID"] = CLIENT_ID  # misspelt
    command = [sys.executable, "-m", "flask", "--app", "app", "wikimedia", "check"]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    assert "The app does not start" in run.stdout
    assert "found 3 problem(s)" in run.stdout
    assert "[Flask] FLASK_SECRET_KEY is not set" in run.stdout
    assert "[sample tool] REDIS_KEY_PREFIX is not set" in run.stdout
    assert "Did you mean FLASK_WIKIMEDIA_CLIENT_ID?" in run.stdout
    as_json = subprocess.run(
        [*command, "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    answer = json.loads(as_json.stdout)
    assert answer["started"] is False
    assert [(p["owner"], p["setting"]) for p in answer["problems"]] == [
        ("Flask", "FLASK_SECRET_KEY"),
        ("sample tool", "REDIS_KEY_PREFIX"),
        ("Flask-Wikimedia", "FLASK_WIKIMEDIA_CLIENTID"),
    ]


def test_make_run_is_zero_configuration_and_logs_in():
    """`make run` (flask --app app run --debug) on a fresh clone, no settings at all: the
    development wiki, and a whole login through it over real HTTP (the server's own token
    requests go to the server's own address)."""
    port = free_port()
    command = [sys.executable, "-m", "flask", "--app", "app", "run", "--debug", "--no-reload"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=REPO,
        env=scrubbed_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base)
        http = requests.Session()
        start = http.get(base + "/auth/login?next=/profile", allow_redirects=False, timeout=10)
        assert start.status_code == 302
        callback = approve(base + start.headers["Location"], "Alice", True)
        page = http.get(callback, timeout=20)
        assert page.status_code == 200, page.text
        assert "Alice" in page.text
    finally:
        process.terminate()
        process.communicate(timeout=20)
