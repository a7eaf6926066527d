"""A 1.0a login after the callback: fresh rights, API sessions signed with OAuth 1.0a,
revocation as a clean logout, and OAuth 1.0a and 2.0 side by side during a migration."""

from __future__ import annotations

import time

import mwapi
import pytest
import redis
from apps import login_record, make_app
from flask.testing import FlaskClient
from oauth1_apps import KEY, SECRET, make_app1, with_api_views
from support import parallel_gets, session_ref

from flask_wikimedia import signals
from flask_wikimedia.api import app_session, user_session
from flask_wikimedia.devwiki import DevClient, DevWiki
from flask_wikimedia.errors import ConfigurationError
from flask_wikimedia.testing import login

MAX_AGE = 0.8


@pytest.fixture
def app(devwiki: DevWiki, redis_client: redis.Redis):
    return make_app1(devwiki, redis_client, WIKIMEDIA_PROFILE_MAX_AGE=MAX_AGE)


@pytest.fixture
def client(app, devwiki) -> FlaskClient:
    client = app.test_client()
    login(client, devwiki, "Alice")
    return client


def age_out() -> None:
    time.sleep(MAX_AGE + 0.1)


def test_rights_are_fresh_after_the_max_age(client, devwiki):
    assert client.get("/sysop").status_code == 403
    devwiki.set_user("Alice", groups=["*", "user", "autoconfirmed", "sysop"])
    assert client.get("/sysop").status_code == 403  # within the max age: the stored profile
    age_out()
    assert client.get("/sysop").text == "sysop only"
    assert devwiki.calls["oauth1:identify"] == 2


def test_block_after_login_is_seen_by_a_fresh_check(client, devwiki):
    devwiki.set_user("Alice", rights=[r for r in devwiki.users["Alice"].rights if r != "edit"])
    assert client.get("/fresh").text == "fresh Alice"
    assert client.get("/edit").status_code == 403


def test_profile_re_read_is_single_flight(client, devwiki):
    age_out()
    assert parallel_gets(client, 8, "/private") == [200] * 8
    assert devwiki.calls["oauth1:identify"] == 2


def test_wiki_down_during_a_re_read_keeps_the_login(client, devwiki):
    age_out()
    devwiki.inject_fault("identify", "503")
    assert client.get("/private").status_code == 503
    assert client.get("/private").status_code == 200


def test_bad_jwt_during_a_re_read_is_a_502_that_keeps_the_login(client, devwiki):
    age_out()
    devwiki.inject_fault("identify", "jwt-signature")
    assert client.get("/private").status_code == 502
    assert client.get("/private").status_code == 200


def test_edit_through_the_api_session_is_signed_and_made_as_the_user(client, devwiki):
    response = client.post("/api-edit", data={"title": "Sandbox", "text": " hello"})
    assert response.status_code == 200, response.text
    assert response.json["edit"]["result"] == "Success"
    assert devwiki.edits[-1]["user"] == "Alice"
    assert devwiki.pages["Sandbox"].endswith(" hello")
    assert client.get("/api-me").json["name"] == "Alice"


def test_mwapi_takes_the_1_0a_session(client, devwiki):
    with client:
        client.get("/private")
        session = user_session()
        wiki = mwapi.Session(devwiki.base_url[:-2], user_agent="test", session=session)
        answer = wiki.get(action="query", meta="userinfo", formatversion=2)
    assert answer["query"]["userinfo"]["name"] == "Alice"


def test_api_session_does_not_sign_requests_to_other_hosts(client, devwiki, redis_client):
    with client:
        client.get("/private")
        session = user_session()
        # Same wiki, another origin (port): no signature may go there.
        other = DevWiki()
        other.start()
        try:
            answer = session.get(
                other.base_url + "/api.php",
                params={"action": "query", "meta": "userinfo", "format": "json"},
            )
        finally:
            other.stop()
    assert answer.json()["query"]["userinfo"].get("anon") is True


def test_revocation_is_a_clean_logout_at_the_next_api_call(app, client, devwiki):
    ended = []
    signals.logged_out.connect(lambda sender, **kw: ended.append(kw["reason"]), app, weak=False)
    ref = session_ref(client)
    devwiki.revoke_tokens("Alice")
    response = client.post(
        "/api-edit", data={"title": "Sandbox", "text": "x"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 401
    assert login_record(app, ref) is None
    assert client.get("/private").status_code == 302
    assert ended == ["token_rejected"]
    assert devwiki.edits == []


def test_revocation_is_a_clean_logout_at_the_next_profile_re_read(app, client, devwiki):
    ref = session_ref(client)
    devwiki.revoke_tokens("Alice")
    age_out()
    response = client.get("/private")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
    assert login_record(app, ref) is None


# ------------------------------------------------------------------------- migration


def copy_cookies(source: FlaskClient, target: FlaskClient) -> None:
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def migrated_app(devwiki: DevWiki, redis_client: redis.Redis, **config):
    """The same tool after its switch: a 2.0 consumer for new logins, the 1.0a consumer kept."""
    settings = {
        "WIKIMEDIA_OAUTH1_CLIENT_ID": KEY,
        "WIKIMEDIA_OAUTH1_CLIENT_SECRET": SECRET,
        "WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX": True,
        "WIKIMEDIA_PROFILE_MAX_AGE": MAX_AGE,
    }
    settings.update(config)
    return with_api_views(make_app(devwiki, redis_client, **settings))


def test_1_0a_login_survives_the_switch_to_2_0_and_next_login_is_2_0(client, devwiki, redis_client):
    new_app = migrated_app(devwiki, redis_client)
    after = new_app.test_client()
    copy_cookies(client, after)
    assert after.get("/private").text == "private page of Alice"
    age_out()  # the profile re-read goes to Special:OAuth/identify with the kept consumer
    assert after.get("/private").text == "private page of Alice"
    assert devwiki.calls["oauth1:identify"] == 2
    assert after.post("/api-edit", data={"title": "Sandbox", "text": "!"}).status_code == 200
    assert devwiki.edits[-1]["user"] == "Alice"
    assert login_record(new_app, session_ref(after)).oauth_version == "1.0a"
    # A new login on the switched app is OAuth 2.0.
    fresh = new_app.test_client()
    assert login(fresh, devwiki, "Sysop").status_code == 303
    record = login_record(new_app, session_ref(fresh))
    assert record.oauth_version == "2.0" and record.access_secret is None
    assert devwiki.calls["token:authorization_code"] == 1
    assert devwiki.calls["oauth1:initiate"] == 1  # only the first login, before the switch


def test_without_the_kept_consumer_old_logins_end_cleanly(client, devwiki, redis_client):
    new_app = with_api_views(make_app(devwiki, redis_client, WIKIMEDIA_PROFILE_MAX_AGE=MAX_AGE))
    after = new_app.test_client()
    copy_cookies(client, after)
    ref = session_ref(after)
    age_out()
    assert after.get("/private").status_code == 302
    assert login_record(new_app, ref) is None


def test_both_versions_side_by_side_in_one_app(devwiki, redis_client):
    new_app = migrated_app(devwiki, redis_client)
    old_app = make_app1(devwiki, redis_client)
    one, two = old_app.test_client(), new_app.test_client()
    login(one, devwiki, "Alice")
    login(two, devwiki, "Sysop")
    three = new_app.test_client()
    copy_cookies(one, three)
    for browser, name in ((three, "Alice"), (two, "Sysop")):
        response = browser.post("/api-edit", data={"title": "Sandbox", "text": name})
        assert response.status_code == 200
        assert devwiki.edits[-1]["user"] == name


def test_app_session_without_an_app_token_says_what_to_set(app, devwiki):
    """A 1.0a consumer has no client-credentials grant: a clear configuration error, before
    anything is sent (not the token endpoint's "invalid_client")."""
    with app.app_context(), pytest.raises(ConfigurationError, match="WIKIMEDIA_APP_TOKEN"):
        app_session()
    assert devwiki.calls["token"] == 0


def test_app_session_with_an_app_token_acts_as_its_owner(devwiki, redis_client):
    devwiki.add_client(
        DevClient("0e" * 16, secret="0f" * 20, owner_only=True, owner="Sysop", grants=["editpage"])
    )
    token = devwiki.owner_only_token("0e" * 16)
    app = make_app1(devwiki, redis_client, WIKIMEDIA_APP_TOKEN=token)
    with app.app_context():
        wiki = app_session()
        assert (
            wiki.get_json(action="query", meta="userinfo")["query"]["userinfo"]["name"] == "Sysop"
        )
        wiki.edit("Sandbox", appendtext="\nfrom a 1.0a tool's job", summary="Job")
    assert devwiki.edits[-1]["user"] == "Sysop"
