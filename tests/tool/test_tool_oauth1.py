"""The sample tool switched to OAuth 1.0a by configuration alone (docs/deploy.md)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from toolkit import TOOLFORGE_CALLBACK

from flask_wikimedia.devwiki import DevClient, DevWiki
from flask_wikimedia.testing import login
from template_tool import create_app

KEY = "7001" * 8
SECRET = "5ec7" * 10


@pytest.fixture
def client(toolforge_env, clean_env, redis_client, devwiki: DevWiki) -> FlaskClient:
    devwiki.add_client(
        DevClient(
            client_id=KEY,
            secret=SECRET,
            redirect_uri=TOOLFORGE_CALLBACK,
            grants=["basic", "editpage"],
            oauth_version="1.0a",
            callback_is_prefix=True,
        )
    )
    for key, value in {
        "FLASK_WIKIMEDIA_OAUTH_VERSION": "1.0a",
        "FLASK_WIKIMEDIA_CLIENT_ID": KEY,
        "FLASK_WIKIMEDIA_CLIENT_SECRET": SECRET,
        "FLASK_WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX": "true",
    }.items():
        clean_env.setenv(key, value)
    client = create_app().test_client()
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
    client.environ_base["HTTP_REFERER"] = "https://localhost/"
    return client


def test_the_tool_logs_in_and_edits_with_an_oauth1_consumer(client, devwiki):
    assert login(client, devwiki, "Sysop").status_code == 303
    page = client.get("/profile")
    assert "Profile of <bdi>Sysop</bdi>" in page.text
    assert "<code>editpage</code>" in page.text
    sandbox = client.get("/sandbox").text
    token = sandbox.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post("/sandbox", data={"csrf_token": token, "line": "signed"})
    assert response.status_code == 302
    assert devwiki.edits[-1]["user"] == "Sysop"
    assert devwiki.calls["oauth1:initiate"] == 1 and devwiki.calls["token:authorization_code"] == 0
