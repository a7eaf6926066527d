"""API sessions (flask_wikimedia.api) against the development wiki's api.php and rest.php over real
HTTP: acting as the user and as the app, refresh on refusal, maxlag and Retry-After, typed errors,
and the allow-list that keeps tokens on Wikimedia hosts."""

from __future__ import annotations

import threading
import time

import pytest
import redis
import requests
from apps import USER_AGENT, make_app
from flask import jsonify, request
from support import session_ref, stored

from flask_wikimedia import login as login_module
from flask_wikimedia import refresh as refresh_module
from flask_wikimedia.api import (
    ApiError,
    ApiSession,
    AssertUserFailed,
    InvalidAuthorization,
    RateLimited,
    app_session,
    resolve_wiki,
    user_session,
)
from flask_wikimedia.devwiki import DevClient, DevWiki
from flask_wikimedia.errors import LoginRequired, WikiBadResponse, WikiUnavailable
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import login

OWNER_ID = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
OWNER_SECRET = "0" * 40
ANON_ID = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
ANON_SECRET = "1" * 40


@pytest.fixture
def app(devwiki: DevWiki, redis_client: redis.Redis):
    app = make_app(devwiki, redis_client)

    @app.post("/thank")
    def thank():
        answer = user_session().edit(
            request.form["title"], appendtext=request.form["text"], summary="Saying hello"
        )
        return jsonify(answer)

    @app.get("/contribs")
    def contribs():
        answer = user_session().get_json(action="query", list="usercontribs", ucuser="Alice")
        return jsonify(answer["query"]["usercontribs"])

    return app


@pytest.fixture
def client(app, devwiki):
    client = app.test_client()
    login(client, devwiki, "Alice")
    return client


def userinfo(session: ApiSession) -> dict:
    return session.get_json(action="query", meta="userinfo", uiprop="groups")["query"]["userinfo"]


def test_user_session_reads_as_the_user_with_a_policy_user_agent(client, devwiki):
    with client:
        client.get("/private")
        wiki = user_session()
        assert wiki.wiki_url == devwiki.base_url
        info = userinfo(wiki)
        response = wiki.get(wiki.api_url, params={"action": "query", "meta": "userinfo"})
    assert info["name"] == "Alice"
    assert "sysop" not in info["groups"]
    sent = response.request.headers
    assert sent["Authorization"].startswith("Bearer ")
    assert sent["User-Agent"].startswith(USER_AGENT + " Flask-Wikimedia/")
    assert "python-requests/" in sent["User-Agent"]


def test_an_edit_lands_on_the_wiki_as_that_user(client, devwiki):
    response = client.post("/thank", data={"title": "Sandbox", "text": "\nHello from Alice"})
    assert response.status_code == 200
    assert response.json["edit"]["result"] == "Success"
    assert devwiki.pages["Sandbox"].endswith("\nHello from Alice")
    assert devwiki.edits[-1]["user"] == "Alice"
    assert devwiki.edits[-1]["summary"] == "Saying hello"
    contributions = client.get("/contribs").json
    assert contributions[0]["title"] == "Sandbox"


def test_edit_creates_a_page_with_text(client, devwiki):
    with client:
        client.get("/private")
        wiki = user_session()
        token = wiki.csrf_token()
        answer = wiki.edit("User:Alice/new", text="New page", summary="Create")
    assert token.endswith("+\\") and len(token) > 2  # a user's token, not the anonymous "+\\"
    assert answer["edit"]["new"] is True
    assert devwiki.pages["User:Alice/new"] == "New page"
    assert devwiki.edits[-1]["user"] == "Alice"


def test_edit_needs_exactly_one_kind_of_text(client):
    with client:
        client.get("/private")
        with pytest.raises(TypeError):
            user_session().edit("Sandbox", summary="nothing")
        with pytest.raises(TypeError):
            user_session().edit("Sandbox", text="a", appendtext="b")


def test_wiki_errors_come_out_typed(app, devwiki):
    client = app.test_client()
    login(client, devwiki, "Blocked")
    with client:
        client.get("/private")
        with pytest.raises(ApiError) as blocked:
            user_session().edit("Sandbox", appendtext="x")
        with pytest.raises(ApiError) as bad:
            user_session().get_json(action="nonsense")
    assert blocked.value.code == "blocked"
    assert "blocked" in blocked.value.info
    assert bad.value.code == "badvalue"
    assert devwiki.edits == []


def test_invalid_authorization_answered_with_200_triggers_one_refresh_and_a_retry(
    app, client, devwiki
):
    before = stored(app, client)
    devwiki.expire_access_tokens()  # the record still believes in its token
    stale = requests.get(
        f"{devwiki.base_url}/api.php",
        params={"action": "query", "meta": "userinfo", "format": "json"},
        headers={"Authorization": f"Bearer {before.record.access_token}"},
        timeout=5,
    )
    assert stale.status_code == 200  # MediaWiki's way (protocol §4.4)
    assert stale.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"
    calls = devwiki.calls["api"]
    with client:
        client.get("/private")
        assert userinfo(user_session())["name"] == "Alice"
    assert devwiki.calls["token:refresh_token"] == 1
    assert devwiki.calls["api"] == calls + 2  # the refused call and its one retry
    after = stored(app, client)
    assert after.record.access_token != before.record.access_token


def test_rest_edge_401_for_an_expired_token_also_refreshes(client, devwiki):
    devwiki.expire_access_tokens()
    with client:
        client.get("/private")
        page = user_session().rest("GET", "/v1/page/Sandbox")
    assert page["source"] == devwiki.pages["Sandbox"]
    assert devwiki.calls["token:refresh_token"] == 1


def test_revoked_app_during_an_api_call_ends_the_login(app, client, devwiki):
    ref = session_ref(client)
    devwiki.revoke_tokens("Alice")
    with client:
        client.get("/private")
        with pytest.raises(LoginRequired):
            userinfo(user_session())
    assert devwiki.calls["token:refresh_token"] == 1
    assert get_state(app).store.get(ref) is None
    assert client.get("/private").status_code == 302


def test_a_token_about_to_expire_is_refreshed_before_use(app, client, devwiki, monkeypatch):
    """A long request (a batch of edits): by the time of a call the token has reached the
    refresh margin, so it is refreshed before being sent, not after the wiki refuses it."""
    before = stored(app, client)
    with client:
        client.get("/private")
        wiki = user_session()
        assert userinfo(wiki)["name"] == "Alice"
        later = time.time() + before.record.expires_at - time.time() - 30

        class Clock:
            monotonic = staticmethod(time.monotonic)
            sleep = staticmethod(time.sleep)

            @staticmethod
            def time() -> float:
                return later

        monkeypatch.setattr(login_module, "time", Clock)
        monkeypatch.setattr(refresh_module, "time", Clock)
        calls = devwiki.calls["api"]
        assert userinfo(wiki)["name"] == "Alice"
    assert devwiki.calls["token:refresh_token"] == 1
    assert devwiki.calls["api"] == calls + 1  # no refused call first
    assert stored(app, client).record.access_token != before.record.access_token


def test_maxlag_is_retried_after_retry_after_then_raised(client, devwiki):
    devwiki.lag = 10.0
    with client:
        client.get("/private")
        wiki = user_session(max_retries=2, max_retry_after=0.2)
        calls = devwiki.calls["api"]
        started = time.monotonic()
        with pytest.raises(RateLimited) as raised:
            userinfo(wiki)
    assert raised.value.code == "maxlag"
    assert devwiki.calls["api"] == calls + 3
    assert time.monotonic() - started >= 0.4  # Retry-After (5 s, capped at 0.2 s) honoured


def test_maxlag_that_clears_is_invisible(client, devwiki):
    devwiki.lag = 10.0
    threading.Timer(0.1, lambda: setattr(devwiki, "lag", 0.0)).start()
    with client:
        client.get("/private")
        assert userinfo(user_session(max_retry_after=0.3))["name"] == "Alice"


def test_maxlag_parameter_can_be_turned_off(client, devwiki):
    devwiki.lag = 10.0
    with client:
        client.get("/private")
        assert userinfo(user_session(maxlag=None))["name"] == "Alice"


def test_503_with_retry_after_is_retried(client, devwiki):
    devwiki.inject_fault("api", "503")
    with client:
        client.get("/private")
        assert userinfo(user_session(max_retry_after=0.1))["name"] == "Alice"


@pytest.mark.parametrize(
    ("fault", "error"),
    [("500", WikiUnavailable), ("hang", WikiUnavailable), ("garbage", WikiBadResponse)],
)
def test_wiki_trouble_on_an_api_call_is_typed(client, devwiki, fault, error):
    devwiki.inject_fault("api", fault, delay=5.0)
    started = time.monotonic()
    with client:
        client.get("/private")
        with pytest.raises(error):
            userinfo(user_session())
    assert time.monotonic() - started < 4


def test_oversized_or_redirected_api_answer_is_a_bad_response(client, devwiki):
    devwiki.inject_fault("api", "oversized")
    devwiki.inject_fault("api", "redirect")
    with client:
        client.get("/private")
        with pytest.raises(WikiBadResponse):
            userinfo(user_session())
        with pytest.raises(WikiBadResponse):
            userinfo(user_session())


def test_a_view_whose_api_call_finds_the_wiki_down_renders_503(client, devwiki):
    devwiki.inject_fault("api", "500")
    response = client.get("/contribs")
    assert response.status_code == 503
    assert "Traceback" not in response.text


def test_library_timeout_none_is_still_bounded(client, devwiki):
    devwiki.inject_fault("api", "hang", delay=5.0)
    started = time.monotonic()
    with client:
        client.get("/private")
        session = user_session()
        with pytest.raises(WikiUnavailable):
            session.request("GET", session.api_url, params={"action": "query"}, timeout=None)
    assert time.monotonic() - started < 4


def test_token_goes_only_to_the_wikis_own_origin(client, devwiki):
    other_origin = devwiki.base_url.replace("127.0.0.1", "localhost")
    with client:
        client.get("/private")
        session = user_session()
        response = session.get(
            other_origin + "/api.php",
            params={"action": "query", "meta": "userinfo", "format": "json"},
        )
    assert "Authorization" not in response.request.headers
    assert response.json()["query"]["userinfo"].get("anon") is True


def test_library_user_agent_is_kept_behind_ours(client):
    with client:
        client.get("/private")
        session = user_session()
        response = session.get(
            session.api_url,
            params={"action": "query", "format": "json"},
            headers={"User-Agent": "mwapi (python) -- default user-agent"},
        )
    agent = response.request.headers["User-Agent"]
    assert agent.startswith(USER_AGENT)
    assert agent.endswith("mwapi (python) -- default user-agent")


def test_mwapi_takes_the_session(client, devwiki):
    import mwapi  # a dev dependency: the point is that it takes our session as it is

    devwiki.expire_access_tokens()  # and refreshes transparently underneath it
    host = devwiki.base_url.removesuffix("/w")
    with client:
        client.get("/private")
        session = mwapi.Session(
            host, user_agent="MyTool/1.0 (me@example.org)", session=user_session()
        )
        answer = session.get(action="query", meta="userinfo", formatversion=2)
        token = session.get(action="query", meta="tokens")["query"]["tokens"]["csrftoken"]
        session.post(action="edit", title="Sandbox", appendtext="\nvia mwapi", token=token)
    assert answer["query"]["userinfo"]["name"] == "Alice"
    assert devwiki.edits[-1]["user"] == "Alice"
    assert devwiki.calls["token:refresh_token"] == 1


def test_user_session_needs_a_login(app):
    client = app.test_client()
    with client:
        client.get("/")
        with pytest.raises(LoginRequired):
            user_session()


def test_hosts_outside_the_allow_list_are_refused(client, devwiki):
    port = devwiki.base_url.split(":")[2].split("/")[0]
    with client:
        client.get("/private")
        assert user_session(devwiki.base_url).wiki_url == devwiki.base_url
        for wiki in (
            "evil.example.org",
            "en.wikipedia.org",  # the configured wiki is not a Wikimedia one
            f"http://127.0.0.1:{int(port) + 1}/w",
            f"http://localhost:{port}/w",
        ):
            with pytest.raises(ValueError, match="refusing"):
                user_session(wiki)
    assert devwiki.calls["api"] == 0


@pytest.mark.parametrize(
    ("wiki", "url"),
    [
        (None, "https://meta.wikimedia.org/w"),
        ("en.wikipedia.org", "https://en.wikipedia.org/w"),
        ("www.wikidata.org", "https://www.wikidata.org/w"),
        ("commons", "https://commons.wikimedia.org/w"),
        ("meta", "https://meta.wikimedia.org/w"),
        ("wikidata", "https://www.wikidata.org/w"),
        ("https://de.wikisource.org/w", "https://de.wikisource.org/w"),
        ("tools.example.org", "https://tools.example.org/w"),  # WIKIMEDIA_API_HOSTS
    ],
)
def test_wikimedia_projects_are_allowed_for_a_wikimedia_login(wiki, url):
    app = make_app(
        DevWiki(),
        None,
        WIKIMEDIA_WIKI_URL="https://meta.wikimedia.org/w",
        WIKIMEDIA_API_HOSTS=["tools.example.org"],
    )
    with app.test_request_context():
        assert resolve_wiki(wiki) == url


@pytest.mark.parametrize(
    "wiki",
    [
        "evil.example.org",
        "en.wikipedia.org.evil.example",
        "evilwikipedia.org",
        "http://en.wikipedia.org/w",
        "https://en.wikipedia.org:8443/w",
        "https://en.wikipedia.org@evil.example/w",
        "https://evil.example\\@en.wikipedia.org/w",
        "https://en.wikipedia.org/w?x=1",
        "http://tools.example.org/w",
        "https:///w",
        "",
    ],
)
def test_other_hosts_are_refused_for_a_wikimedia_login(wiki):
    app = make_app(
        DevWiki(),
        None,
        WIKIMEDIA_WIKI_URL="https://meta.wikimedia.org/w",
        WIKIMEDIA_API_HOSTS=["tools.example.org"],
    )
    with app.test_request_context(), pytest.raises(ValueError):
        resolve_wiki(wiki)


def test_rest_reads_writes_and_errors(client, devwiki):
    with client:
        client.get("/private")
        wiki = user_session()
        page = wiki.rest("GET", "/v1/page/Sandbox")
        created = wiki.rest(
            "PUT", "/v1/page/User:Alice/rest", json={"source": "Hello", "comment": "via REST"}
        )
        with pytest.raises(ApiError) as missing:
            wiki.rest("GET", "/v1/page/No_such_page")
    assert page["source"] == devwiki.pages["Sandbox"]
    assert created["source"] == "Hello"
    assert devwiki.edits[-1] == {
        "title": "User:Alice/rest",
        "user": "Alice",
        "summary": "via REST",
        "text": "Hello",
    }
    assert missing.value.code == "rest-nonexistent-title"
    assert "does not exist" in missing.value.info


# ------------------------------------------------------------------------ acting as the app


def owner_only_app(devwiki: DevWiki, redis_client: redis.Redis, **config):
    devwiki.add_client(
        DevClient(
            OWNER_ID, secret=OWNER_SECRET, owner_only=True, owner="Sysop", grants=["editpage"]
        )
    )
    return make_app(
        devwiki,
        redis_client,
        WIKIMEDIA_CLIENT_ID=OWNER_ID,
        WIKIMEDIA_CLIENT_SECRET=OWNER_SECRET,
        **config,
    )


def test_app_session_with_client_credentials_acts_as_the_owner(devwiki, redis_client):
    app = owner_only_app(devwiki, redis_client)
    with app.app_context():  # a background job: no request, no user
        wiki = app_session()
        assert userinfo(wiki)["name"] == "Sysop"
        wiki.edit("Sandbox", appendtext="\nnightly job", summary="Job")
        assert userinfo(app_session())["name"] == "Sysop"
    assert devwiki.edits[-1]["user"] == "Sysop"
    assert devwiki.calls["token:client_credentials"] == 1  # cached for the process


def test_app_session_fetches_a_new_client_credentials_token_when_refused(devwiki, redis_client):
    app = owner_only_app(devwiki, redis_client)
    with app.app_context():
        assert userinfo(app_session())["name"] == "Sysop"
        devwiki.expire_access_tokens()
        assert userinfo(app_session())["name"] == "Sysop"
    assert devwiki.calls["token:client_credentials"] == 2


def test_app_session_with_a_configured_app_token(devwiki, redis_client):
    devwiki.add_client(
        DevClient(
            OWNER_ID, secret=OWNER_SECRET, owner_only=True, owner="Alice", grants=["editpage"]
        )
    )
    token = devwiki.owner_only_token(OWNER_ID)
    app = make_app(devwiki, redis_client, WIKIMEDIA_APP_TOKEN=token)
    with app.app_context():
        wiki = app_session()
        assert userinfo(wiki)["name"] == "Alice"
        wiki.edit("Sandbox", appendtext="\npersonal token", summary="Job")
    assert devwiki.edits[-1]["user"] == "Alice"
    assert devwiki.calls["token"] == 0


def test_a_refused_app_token_is_invalid_authorization(devwiki, redis_client):
    app = make_app(devwiki, redis_client, WIKIMEDIA_APP_TOKEN="not.a.token")
    with app.app_context(), pytest.raises(InvalidAuthorization):
        userinfo(app_session())


def test_anonymous_client_credentials_token_fails_assert_user(devwiki, redis_client):
    devwiki.add_client(
        DevClient(
            ANON_ID,
            secret=ANON_SECRET,
            allowed_grant_types=("authorization_code", "refresh_token", "client_credentials"),
        )
    )
    app = make_app(
        devwiki, redis_client, WIKIMEDIA_CLIENT_ID=ANON_ID, WIKIMEDIA_CLIENT_SECRET=ANON_SECRET
    )
    with app.app_context():
        with pytest.raises(AssertUserFailed):
            userinfo(app_session())
        assert userinfo(app_session(assert_user=False)).get("anon") is True


def test_client_credentials_refused_is_an_api_error(devwiki, redis_client):
    app = make_app(devwiki, redis_client)  # this consumer may not use client_credentials
    with app.app_context(), pytest.raises(ApiError) as refused:
        userinfo(app_session())
    assert refused.value.code == "invalid_client"


def test_positional_request_arguments_are_understood(client):
    with client:
        client.get("/private")
        session = user_session()
        params = {"action": "query", "meta": "userinfo", "format": "json"}
        response = session.request("GET", session.api_url, params, None, {"X-Test": "1"})
    assert response.json()["query"]["userinfo"]["name"] == "Alice"
    assert response.request.headers["X-Test"] == "1"
    assert response.request.headers["Authorization"].startswith("Bearer ")


def test_list_parameters_are_joined_the_mediawiki_way(client):
    with client:
        client.get("/private")
        session = user_session()
        plain = session._params({"titles": ["Main Page", "Sandbox"], "bot": True, "minor": False})
        odd = session._params({"titles": ["A|B", "C"], "skip": None})
    assert plain["titles"] == "Main Page|Sandbox"
    assert plain["bot"] == "1" and "minor" not in plain
    assert plain["assert"] == "user" and plain["maxlag"] == 5
    assert odd["titles"] == "\x1fA|B\x1fC"
    assert "skip" not in odd
