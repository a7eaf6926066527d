"""The tool's configuration matrix: zero-config local runs, Toolforge's refusals, the private file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask.sessions import SecureCookieSessionInterface
from toolkit import CLIENT_ID, KEY_PREFIX, SECRET_KEY, TOOL, TOOLFORGE_CALLBACK

from flask_wikimedia.extension import get_state
from flask_wikimedia.sessions import SafeRedisSessionInterface
from flask_wikimedia.store import MemoryLoginStore, RedisLoginStore
from template_tool import create_app
from template_tool.settings import TOOLFORGE_REDIS_URL, on_toolforge, toolforge_tool_name


def test_zero_config_runs_against_the_development_wiki(clean_env):
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
    assert create_app().secret_key != create_app().secret_key


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
