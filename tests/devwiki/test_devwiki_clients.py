"""The development wiki answers what mwapi and mwclient ask, over a logged-in user_session()."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import mwapi
import mwclient
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_wikimedia import Wikimedia, login_required
from flask_wikimedia.api import user_session
from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.testing import dev_config, login

USER_AGENT = "DevwikiClientsTest/1.0 (https://example.org; me@example.org)"


@pytest.fixture
def client(devwiki: DevWiki) -> Iterator[FlaskClient]:
    app = Flask(__name__)
    app.config.update(dev_config(devwiki), SECRET_KEY="x" * 40, WIKIMEDIA_USER_AGENT=USER_AGENT)
    Wikimedia(app)

    @app.get("/private")
    @login_required
    def private() -> str:
        return "private"

    client = app.test_client()
    login(client, devwiki, "Carol", add_groups=["sysop"], add_rights=["block"])
    with client:
        client.get("/private")
        yield client


def test_mwclient_starts_and_reads_userinfo_as_the_user(client: FlaskClient, devwiki: DevWiki):
    parts = urlsplit(devwiki.base_url)
    site = mwclient.Site(
        parts.netloc,
        path=parts.path + "/",
        scheme=parts.scheme,
        pool=user_session(),
        clients_useragent=USER_AGENT,
    )
    assert site.username == "Carol"
    assert "sysop" in site.groups and "edit" in site.rights
    # Rights are the account's limited by the login's grants, as on a real wiki.
    assert "block" not in site.rights
    assert site.namespaces[2] == "User" and site.namespaces[0] == ""
    assert site.version[:2] == (1, 46)
    info = site.api("query", meta="userinfo", uiprop="groups|rights|blockinfo|hasmsg")
    assert info["query"]["userinfo"]["name"] == "Carol"
    # mwclient's Page objects want formatversion=1 page lists, which the dev wiki does not
    # speak; its raw calls and tokens work.
    token = site.get_token("csrf")
    site.post("edit", title="Sandbox", text="via mwclient", summary="hello", token=token)
    assert devwiki.edits[-1]["user"] == "Carol"
    assert devwiki.pages["Sandbox"] == "via mwclient"


def test_mwapi_reads_userinfo_and_siteinfo_as_the_user(client: FlaskClient, devwiki: DevWiki):
    host = devwiki.base_url.removesuffix("/w")
    session = mwapi.Session(host, user_agent=USER_AGENT, session=user_session())
    answer = session.get(
        action="query",
        meta="userinfo|siteinfo",
        uiprop="groups|rights",
        siprop="general|namespaces|namespacealiases|interwikimap",
        formatversion=2,
    )
    query = answer["query"]
    assert query["userinfo"]["name"] == "Carol"
    assert "sysop" in query["userinfo"]["groups"]
    assert query["namespaces"]["2"]["name"] == "User"
    assert {"id": 6, "alias": "Image"} in query["namespacealiases"]
    assert query["general"]["generator"].startswith("MediaWiki ")
    assert any(entry["prefix"] == "commons" for entry in query["interwikimap"])


def test_siteinfo_follows_the_format_version_and_warns_about_unknown_props(devwiki: DevWiki):
    url = devwiki.base_url + "/api.php"
    params = {"action": "query", "meta": "siteinfo", "format": "json"}
    v1 = requests.get(url, params={**params, "siprop": "namespaces|bogus"}, timeout=5).json()
    assert v1["query"]["namespaces"]["4"]["*"] == "Project"
    assert "bogus" in v1["warnings"]["siteinfo"]["warnings"]
    v2 = requests.get(url, params={**params, "formatversion": "2"}, timeout=5).json()
    assert set(v2["query"]) == {"general"}
    assert v2["query"]["general"]["sitename"] == "Development wiki"
