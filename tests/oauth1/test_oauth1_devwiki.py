"""The development wiki's OAuth 1.0a server, over real HTTP: signatures checked for real, nonce
and timestamp rules, single-use request tokens and verifiers, callback rules, the identify JWT
as MediaWiki 1.39 sends it, and signed api.php requests."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth1Auth
from authlib.oauth1 import ClientAuth
from authlib.oauth1.rfc5849.signature import sign_hmac_sha1
from oauth1_apps import CALLBACK, KEY, SECRET, register_consumer

from flask_wikimedia.api import ApiSession, RateLimited
from flask_wikimedia.devwiki import DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET, DevWiki
from flask_wikimedia.oauth import WikiRefused
from flask_wikimedia.oauth1 import OAuth1Client, TokenPair, special_url

AGENT = "FlaskWikimediaTests/1.0 (https://example.org/tests; tests@example.org)"


def client_for(key: str = KEY, secret: str = SECRET, *, prefix: bool = True) -> OAuth1Client:
    return OAuth1Client(
        consumer_key=key,
        consumer_secret=secret,
        callback_is_prefix=prefix,
        user_agent=AGENT,
        timeout=(2.0, 5.0),
        max_bytes=1 << 20,
    )


def authorized(wiki: DevWiki, client: OAuth1Client, user: str = "Alice"):
    """A request token the user allowed, and the verifier the wiki sent back."""
    token = client.initiate(wiki.base_url, CALLBACK)
    back = wiki.approve(client.authorize_url(wiki.base_url, token.key), username=user)
    query = parse_qs(urlsplit(back).query)
    assert query["oauth_token"] == [token.key]
    return token, query["oauth_verifier"][0], back


def access_token(wiki: DevWiki, client: OAuth1Client, user: str = "Alice") -> TokenPair:
    token, verifier, _ = authorized(wiki, client, user)
    return client.token(wiki.base_url, token, verifier)


@pytest.fixture
def wiki(devwiki: DevWiki) -> DevWiki:
    register_consumer(devwiki)
    return devwiki


def signed_as(access: TokenPair, **options) -> OAuth1Auth:
    """Authlib's signer for the test consumer and ``access`` (``options``: signature method...)."""
    return OAuth1Auth(KEY, SECRET, token=access.key, token_secret=access.secret, **options)


def api(wiki: DevWiki, auth, **params) -> requests.Response:
    params = {"action": "query", "meta": "userinfo", "format": "json", **params}
    return requests.get(wiki.base_url + "/api.php", params=params, auth=auth, timeout=5)


def test_built_in_consumer_works_out_of_the_box(devwiki):
    client = client_for(DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET)
    access = access_token(devwiki, client, "Sysop")
    assert client.identify(devwiki.base_url, access)["username"] == "Sysop"


def test_callback_goes_to_the_prefixed_url_with_verifier_and_token(wiki):
    _token, _verifier, back = authorized(wiki, client_for())
    assert back.startswith(CALLBACK + "?oauth_verifier=")


def test_verifier_is_single_use_with_mediawikis_words(wiki):
    client = client_for()
    token, verifier, _ = authorized(wiki, client)
    client.token(wiki.base_url, token, verifier)
    with pytest.raises(WikiRefused) as reused:
        client.token(wiki.base_url, token, verifier)
    assert "already been completed" in reused.value.description


def test_errors_are_http_200_error_text(wiki):
    response = requests.post(special_url(wiki.base_url, "initiate"), timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("Error: ")


@pytest.mark.parametrize(
    ("registered", "given", "allowed"),
    [
        ("http://localhost/auth/callback", "http://localhost/auth/callback", True),
        ("http://localhost/auth/callback", "http://localhost/auth/callback?x=1", True),
        ("http://localhost/auth/callback", "https://localhost/auth/callback", True),
        ("http://localhost/auth/callback", "http://localhost/other", False),
        ("http://localhost/auth/callback", "http://evil.example/auth/callback", False),
        ("http://localhost:8000/auth/callback", "http://localhost:9000/auth/callback", False),
        ("http://localhost:1/auth/callback", "http://localhost:9000/auth/callback", True),
        ("http://localhost/auth/callback", "http://u:p@localhost/auth/callback", False),
    ],
)
def test_callback_is_prefix_rules(wiki, registered, given, allowed):
    wiki.clients[KEY].redirect_uri = registered
    client = client_for()
    if allowed:
        assert client.initiate(wiki.base_url, given).key
    else:
        with pytest.raises(WikiRefused):
            client.initiate(wiki.base_url, given)


def test_consumer_without_prefix_must_say_oob(wiki):
    register_consumer(wiki, callback_is_prefix=False)
    with pytest.raises(WikiRefused) as refused:
        client_for(prefix=True).initiate(wiki.base_url, CALLBACK)
    assert "oob" in refused.value.description
    assert client_for(prefix=False).initiate(wiki.base_url, CALLBACK).key


def test_identify_jwt_is_what_mediawiki_1_39_sends(wiki):
    client = client_for()
    access = access_token(wiki, client)
    response = requests.post(
        special_url(wiki.base_url, "identify"),
        auth=signed_as(access),
        timeout=5,
    )
    assert response.headers["Content-Type"].startswith("application/json")
    header, payload, _sig = response.text.split(".")
    head = json.loads(base64.urlsafe_b64decode(header + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    sent_nonce = response.request.headers["Authorization"].split('oauth_nonce="')[1].split('"')[0]
    assert head["alg"] == "HS256"
    assert claims["iss"] == wiki.base_url[: -len("/w")]
    assert claims["aud"] == KEY and claims["nonce"] == sent_nonce
    assert claims["exp"] - claims["iat"] == 100
    assert claims["grants"] == {"0": "basic", "2": "editpage", "3": "highvolume"}


def test_identify_with_a_bad_signature_is_http_200_json_error(wiki):
    access = access_token(wiki, client_for())
    response = requests.post(
        special_url(wiki.base_url, "identify"),
        auth=OAuth1Auth(KEY, SECRET, token=access.key, token_secret="wrong"),
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["error"] == "mwoauth-oauth-exception"


def test_api_php_checks_the_signature_for_real(wiki):
    access = access_token(wiki, client_for())
    good = signed_as(access)
    assert api(wiki, good).json()["query"]["userinfo"]["name"] == "Alice"
    for bad in (
        OAuth1Auth(KEY, SECRET, token=access.key, token_secret="x" * 40),
        OAuth1Auth(KEY, "y" * 40, token=access.key, token_secret=access.secret),
        OAuth1Auth(DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET, token=access.key, token_secret=access.secret),
    ):
        response = api(wiki, bad)
        assert response.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"


def test_tampered_signed_request_is_refused(wiki):
    access = access_token(wiki, client_for())
    auth = signed_as(access)
    prepared = requests.Request(
        "POST",
        wiki.base_url + "/api.php",
        data={"action": "query", "meta": "userinfo", "format": "json"},
        auth=auth,
    ).prepare()
    prepared.body = prepared.body.replace("userinfo", "siteinfo")  # same length
    with requests.Session() as http:
        response = http.send(prepared, timeout=5)
    assert response.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"


def test_replayed_nonce_is_refused(wiki):
    access = access_token(wiki, client_for())
    auth = signed_as(access)
    prepared = requests.Request(
        "GET", wiki.base_url + "/api.php", params={"action": "query", "format": "json"}, auth=auth
    ).prepare()
    with requests.Session() as http:
        first = http.send(prepared, timeout=5)
        second = http.send(prepared, timeout=5)
    assert "MediaWiki-API-Error" not in first.headers
    assert second.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"
    assert "Nonce already used" in second.text


def test_timestamp_outside_300_seconds_is_refused(wiki):
    access = access_token(wiki, client_for())
    auth = signed_as(access)
    wiki.advance_time(301)
    response = api(wiki, auth)
    assert response.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"
    assert "Expired timestamp" in response.text


def test_plaintext_signatures_are_refused(wiki):
    access = access_token(wiki, client_for())
    auth = signed_as(access, signature_method="PLAINTEXT")
    assert api(wiki, auth).headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"


def test_only_hmac_sha1_is_accepted(wiki):
    # A request signed exactly like HMAC-SHA1 but naming another method: only the method
    # check can refuse it (the signature itself verifies).
    ClientAuth.register_signature_method("HMAC-SHA1-BUT-NOT", sign_hmac_sha1)
    access = access_token(wiki, client_for())
    auth = signed_as(access, signature_method="HMAC-SHA1-BUT-NOT")
    response = api(wiki, auth)
    assert response.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"
    assert "Signature method not supported" in response.text


def test_revoked_access_token_is_refused_everywhere(wiki):
    client = client_for()
    access = access_token(wiki, client)
    wiki.revoke_tokens("Alice")
    auth = signed_as(access)
    assert api(wiki, auth).headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"


def test_a_1_0a_key_is_no_bearer_token(wiki):
    access = access_token(wiki, client_for())
    response = requests.get(
        wiki.base_url + "/api.php",
        params={"action": "query", "meta": "userinfo", "format": "json"},
        headers={"Authorization": f"Bearer {access.key}"},
        timeout=5,
    )
    assert response.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"


def test_every_retry_is_signed_afresh(wiki):
    # maxlag answers make the session retry; a retry with the first request's nonce would be
    # refused as a replay (mwoauth-invalid-authorization) instead of answering maxlag again.
    client = client_for()
    signer = client.credentials(access_token(wiki, client))
    session = ApiSession(
        wiki.base_url,
        lambda stale: signer,
        user_agent=AGENT,
        timeout=(2.0, 5.0),
        max_bytes=1 << 20,
        max_retry_after=0.0,
    )
    wiki.lag = 30.0
    with pytest.raises(RateLimited):
        session.get_json(action="query", meta="userinfo")
    assert wiki.calls["api"] == 1 + 3
