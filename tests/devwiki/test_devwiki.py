"""The development wiki, over real HTTP: MediaWiki's OAuth 2.0 server as the references describe.

Flavor "wikimedia" is current Wikimedia production (League OAuth2 9); "1.39" is MediaWiki 1.39 as
observed (reference/real-mediawiki-1.39-observed.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from flask_wikimedia.devwiki import DEV_CLIENT_ID, DevClient, DevUser, DevWiki, DevWikiError

CB = "http://127.0.0.1:5000/auth/callback"
CONF_ID = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
CONF_SECRET = "5" * 40
CONF_CB = "https://tool.example.org/auth/callback"
BANNER = "Development wiki — this is not a real login"


# ------------------------------------------------------------------------------ fixtures


def _served(flavor: str) -> Iterator[DevWiki]:
    wiki = DevWiki(flavor=flavor)
    wiki.add_client(
        DevClient(client_id=CONF_ID, secret=CONF_SECRET, redirect_uri=CONF_CB, name="ConfClient")
    )
    wiki.start()
    try:
        yield wiki
    finally:
        wiki.stop()


@pytest.fixture(params=["wikimedia", "1.39"])
def wiki(request: pytest.FixtureRequest) -> Iterator[DevWiki]:
    """A served development wiki, in each flavor."""
    yield from _served(request.param)


@pytest.fixture
def wm() -> Iterator[DevWiki]:
    yield from _served("wikimedia")


@pytest.fixture
def old() -> Iterator[DevWiki]:
    yield from _served("1.39")


# ------------------------------------------------------------------------------ helpers


def pkce(method: str = "S256") -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    if method == "plain":
        return verifier, verifier
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def auth_url(wiki: DevWiki, **params: str | None) -> str:
    query = {"response_type": "code", "client_id": DEV_CLIENT_ID, "redirect_uri": CB}
    query["state"] = "st4te"
    query.update({k: v for k, v in params.items() if v is not None})
    for key in [k for k, v in params.items() if v is None]:
        query.pop(key, None)
    return f"{wiki.base_url}/rest.php/oauth2/authorize?{urlencode(query)}"


def callback_params(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def public_code(
    wiki: DevWiki, method: str = "S256", user: str = "Alice", **params: str | None
) -> tuple[str, str]:
    """Run authorize + consent for the public dev client; return (code, verifier)."""
    verifier, challenge = pkce(method)
    location = wiki.approve(
        auth_url(wiki, code_challenge=challenge, code_challenge_method=method, **params),
        username=user,
    )
    got = callback_params(location)
    assert "code" in got, location
    return got["code"], verifier


def conf_code(wiki: DevWiki, user: str = "Alice", **params: str | None) -> str:
    url = auth_url(wiki, **{"client_id": CONF_ID, "redirect_uri": CONF_CB, **params})
    return callback_params(wiki.approve(url, username=user))["code"]


def post_token(
    wiki: DevWiki, data: dict[str, str], base: str | None = None, **kwargs: Any
) -> requests.Response:
    """POST to the token endpoint of ``wiki`` (or of the wiki at ``base``)."""
    url = f"{base or wiki.base_url}/rest.php/oauth2/access_token"
    return requests.post(url, data=data, timeout=10, **kwargs)


def exchange_public(
    wiki: DevWiki,
    code: str,
    verifier: str,
    *,
    base: str | None = None,
    allow_redirects: bool = True,
    **extra: str,
) -> requests.Response:
    """Redeem ``code`` as the built-in public client; ``extra`` form fields override."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": DEV_CLIENT_ID,
        "redirect_uri": CB,
        "code_verifier": verifier,
    }
    data.update(extra)
    return post_token(wiki, data, base, allow_redirects=allow_redirects)


def login_tokens(wiki: DevWiki, user: str = "Alice", **params: str | None) -> dict[str, Any]:
    code, verifier = public_code(wiki, user=user, **params)
    response = exchange_public(wiki, code, verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def conf_tokens(wiki: DevWiki, user: str = "Alice", **params: str | None) -> dict[str, Any]:
    code = conf_code(wiki, user, **params)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CONF_CB}
    data.update(client_id=CONF_ID, client_secret=CONF_SECRET)
    response = post_token(wiki, data)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def profile(wiki: DevWiki, token: str | None, path: str = "profile") -> requests.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return requests.get(
        f"{wiki.base_url}/rest.php/oauth2/resource/{path}", headers=headers, timeout=10
    )


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def api(
    wiki: DevWiki, bearer: str | None = None, post: bool = False, **params: str
) -> requests.Response:
    params = {"format": "json", "formatversion": "2", **params}
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    url = f"{wiki.base_url}/api.php"
    if post:
        return requests.post(url, data=params, headers=headers, timeout=10)
    return requests.get(url, params=params, headers=headers, timeout=10)


def refresh(wiki: DevWiki, refresh_token: str, **extra: str) -> requests.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    data.update({"client_id": DEV_CLIENT_ID, **extra})
    return post_token(wiki, data)


# ------------------------------------------------------------------------------ defaults


def test_defaults_users_and_clients() -> None:
    wiki = DevWiki()
    assert [u.name for u in wiki.users.values()] == [
        "Alice",
        "Sysop",
        "Blocked",
        "NoEmail",
        "Hidden",
        "Newbie",
    ]
    assert [u.id for u in wiki.users.values()] == [1, 2, 3, 4, 5, 6]
    assert wiki.users["Alice"].editcount == 42
    assert wiki.users["Alice"].email == "alice@example.org"
    assert "block" in wiki.users["Sysop"].rights and "sysop" in wiki.users["Sysop"].groups
    assert wiki.users["Blocked"].blocked and wiki.users["Hidden"].hidden
    assert wiki.users["NoEmail"].email == "" and not wiki.users["NoEmail"].confirmed_email
    assert "autoconfirmed" not in wiki.users["Newbie"].rights
    dev = wiki.clients[DEV_CLIENT_ID]
    assert dev.secret is None and dev.redirect_uri is None and not dev.is_confidential
    assert dev.grants == ["basic", "editpage", "highvolume"]
    assert (wiki.access_token_ttl, wiki.refresh_grace, wiki.code_ttl) == (14400, 600, 600)
    assert DevWiki(flavor="1.39").refresh_grace == 0
    carol = wiki.add_user(DevUser("Carol"))
    assert carol.id == 7 and carol.email == "carol@example.org"
    assert DevClient("x", grants=["editpage"]).grants == ["basic", "editpage"]
    assert DevClient("y", grants=["authonlyprivate"]).grants == ["mwoauth-authonlyprivate"]
    owner_only = DevClient("z", secret="s", owner_only=True, owner="Alice")
    assert owner_only.allowed_grant_types == ("client_credentials",)
    with pytest.raises(ValueError):
        DevWiki(flavor="1.40")
    with pytest.raises(TypeError):
        wiki.set_user("Alice", nosuchfield=1)


# ------------------------------------------------------------------------------ the happy path


def test_public_client_s256_end_to_end(wiki: DevWiki) -> None:
    code, verifier = public_code(wiki)
    assert code.startswith("def50200") and len(code) > 500
    response = exchange_public(wiki, code, verifier)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["X-Devwiki"] == "not a real login"
    body = response.json()
    assert list(body) == ["token_type", "expires_in", "access_token", "refresh_token"]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 14400
    jwt = claims(body["access_token"])
    for claim in ("aud", "jti", "iat", "nbf", "exp", "sub", "iss", "scopes"):
        assert claim in jwt
    assert jwt["aud"] == DEV_CLIENT_ID and jwt["scopes"] == ["basic", "editpage", "highvolume"]
    assert isinstance(jwt["exp"], float if wiki.flavor == "1.39" else int)
    me = profile(wiki, body["access_token"])
    assert me.status_code == 200 and me.json()["username"] == "Alice"
    assert wiki.calls["token:authorization_code"] == 1 and wiki.calls["profile"] == 1
    assert wiki.calls["authorize"] == 2 and wiki.calls["consent"] == 2


def test_plain_pkce_and_plain_as_default_method(wm: DevWiki) -> None:
    code, verifier = public_code(wm, method="plain")
    assert exchange_public(wm, code, verifier).status_code == 200
    # A challenge without a method is "plain": an S256 challenge then fails at the token step.
    verifier, challenge = pkce("S256")
    location = wm.approve(auth_url(wm, code_challenge=challenge))
    response = exchange_public(wm, callback_params(location)["code"], verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_consent_redirects_and_page(wm: DevWiki) -> None:
    _verifier, challenge = pkce()
    url = auth_url(wm, code_challenge=challenge, code_challenge_method="S256", scope="basic")
    first = requests.get(url, allow_redirects=False, timeout=10)
    assert first.status_code == 307
    location = first.headers["Location"]
    assert location.startswith("/w/index.php?title=Special%3AOAuth%2Fapprove")
    query = callback_params(location)
    assert query["returnto"] == "/w/rest.php/oauth2/authorize"
    assert query["returntoquery"] == urlsplit(url).query
    assert query["scope"] == "basic" and query["oauth_version"] == "2"
    page = requests.get(wm.base_url[: -len("/w")] + location, timeout=10)
    assert page.status_code == 200 and BANNER in page.text
    assert 'name="wpEditToken"' in page.text and "plain user" in page.text
    assert "sysop" in page.text and "blocked" in page.text
    assert 'name="accept"' in page.text and 'name="cancel"' in page.text
    # A forged form (wrong edit token) is refused.
    forged = requests.post(
        f"{wm.base_url}/index.php",
        data={"title": "Special:OAuth/approve", "wpEditToken": "nope", "client_id": DEV_CLIENT_ID},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 400 and BANNER in forged.text


def test_auto_approve_skips_consent(wm: DevWiki) -> None:
    wm.auto_approve = "Sysop"
    verifier, challenge = pkce()
    url = auth_url(wm, code_challenge=challenge, code_challenge_method="S256")
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"].startswith(CB + "?code=")
    tokens = exchange_public(wm, callback_params(response.headers["Location"])["code"], verifier)
    assert profile(wm, tokens.json()["access_token"]).json()["username"] == "Sysop"
    assert wm.calls["consent"] == 0


def test_state_left_out_when_not_sent(wm: DevWiki) -> None:
    _verifier, challenge = pkce()
    location = wm.approve(
        auth_url(wm, state=None, code_challenge=challenge, code_challenge_method="S256")
    )
    assert list(callback_params(location)) == ["code"]


# ------------------------------------------------------------------------------ confidential


def test_confidential_client_secret_in_body_and_basic(wiki: DevWiki) -> None:
    conf_tokens(wiki)  # secret in the body, no PKCE (allowed for confidential clients)
    code = conf_code(wiki)
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": CONF_CB}
    # Wrong secret in the body: 401 without WWW-Authenticate; the code is not burned.
    wrong = post_token(wiki, {**base, "client_id": CONF_ID, "client_secret": "0" * 40})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.json()["error_description"] == "Client authentication failed"
    assert "WWW-Authenticate" not in wrong.headers
    # Wrong secret through HTTP Basic: also WWW-Authenticate.
    basic_wrong = post_token(wiki, base, auth=(CONF_ID, "0" * 40))
    assert basic_wrong.status_code == 401
    assert basic_wrong.headers["WWW-Authenticate"] == 'Basic realm="OAuth"'
    # Empty secret.
    empty = post_token(wiki, {**base, "client_id": CONF_ID})
    if wiki.flavor == "wikimedia":
        assert empty.status_code == 400 and empty.json()["error"] == "invalid_request"
        assert empty.json()["hint"] == "Check the `client_secret` parameter"
        assert "message" not in empty.json()
    else:
        assert empty.status_code == 401 and empty.json()["error"] == "invalid_client"
        assert empty.json()["message"] == "Client authentication failed"
    # The right secret through Basic still gets the (unburned) code.
    ok = post_token(wiki, base, auth=(CONF_ID, CONF_SECRET))
    assert ok.status_code == 200, ok.text
    assert post_token(wiki, base, auth=(CONF_ID, CONF_SECRET)).status_code == 400


def test_anti_downgrade_verifier_without_challenge(wiki: DevWiki) -> None:
    code = conf_code(wiki)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CONF_CB}
    data.update(client_id=CONF_ID, client_secret=CONF_SECRET, code_verifier=pkce()[0])
    response = post_token(wiki, data)
    if wiki.flavor == "wikimedia":
        assert response.status_code == 400
        assert response.json()["hint"] == "code_verifier received when no code_challenge is present"
    else:
        assert response.status_code == 200


# ------------------------------------------------------------------------------ cancel


def test_cancel_is_unauthorized_client_without_state(wiki: DevWiki) -> None:
    _verifier, challenge = pkce()
    location = wiki.approve(
        auth_url(wiki, code_challenge=challenge, code_challenge_method="S256"), allow=False
    )
    assert location.startswith(CB + "?")
    got = callback_params(location)
    assert got["error"] == "unauthorized_client"
    assert got["error_description"] == "User has rejected the request from client application"
    assert "state" not in got and "code" not in got
    assert ("message" in got) == (wiki.flavor == "1.39")
    # Without redirect_uri in the request there is nowhere to send the user: an HTML page.
    url = auth_url(wiki, client_id=CONF_ID, redirect_uri=None)
    with pytest.raises(DevWikiError) as caught:
        wiki.approve(url, allow=False)
    assert caught.value.status == (400 if wiki.flavor == "wikimedia" else 200)
    assert BANNER in caught.value.text
    # Allowing without redirect_uri goes to the registered callback.
    assert wiki.approve(url).startswith(CONF_CB + "?code=")


# ------------------------------------------------------------------------------ codes


def test_code_single_use(wiki: DevWiki) -> None:
    code, verifier = public_code(wiki)
    assert exchange_public(wiki, code, verifier).status_code == 200
    again = exchange_public(wiki, code, verifier)
    assert again.status_code == 400
    body = again.json()
    assert body["hint"] == "Authorization code has been revoked"
    assert body["error"] == ("invalid_grant" if wiki.flavor == "wikimedia" else "invalid_request")
    garbage = exchange_public(wiki, "def50200" + "ab" * 100, verifier)
    assert garbage.status_code == 400 and garbage.json()["error"] == "invalid_request"
    assert garbage.json()["hint"] == "Cannot decrypt the authorization code"


def test_code_expires(wiki: DevWiki) -> None:
    wiki.code_ttl = 5
    code, verifier = public_code(wiki)
    wiki.advance_time(6)
    response = exchange_public(wiki, code, verifier)
    assert response.status_code == 400
    assert response.json()["hint"] == "Authorization code has expired"
    fresh, verifier = public_code(wiki)
    assert exchange_public(wiki, fresh, verifier).status_code == 200


def test_failed_pkce_does_not_burn_the_code(wiki: DevWiki) -> None:
    code, verifier = public_code(wiki)
    wrong = exchange_public(wiki, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert wrong.json()["hint"] == "Failed to verify `code_verifier`."
    data = {"grant_type": "authorization_code", "code": code, "client_id": DEV_CLIENT_ID}
    missing = post_token(wiki, {**data, "redirect_uri": CB})
    assert missing.json()["hint"] == "Check the `code_verifier` parameter"
    malformed = exchange_public(wiki, code, "short")
    assert malformed.status_code == 400 and malformed.json()["error"] == "invalid_request"
    assert exchange_public(wiki, code, verifier).status_code == 200


def test_code_issued_to_another_client(wm: DevWiki) -> None:
    wm.add_client(DevClient("0" * 32, redirect_uri=None))
    code, verifier = public_code(wm)
    response = exchange_public(wm, code, verifier, client_id="0" * 32)
    assert response.json()["hint"] == "Authorization code was not issued to this client"
    assert exchange_public(wm, code, verifier).status_code == 200


# ------------------------------------------------------------------------------ redirect_uri


def test_redirect_uri_rules_at_token(wiki: DevWiki) -> None:
    code, verifier = public_code(wiki)
    data = {"grant_type": "authorization_code", "code": code, "client_id": DEV_CLIENT_ID}
    data["code_verifier"] = verifier
    omitted = post_token(wiki, data)
    assert (
        omitted.status_code == 400
        and omitted.json()["hint"] == "Check the `redirect_uri` parameter"
    )
    other = post_token(wiki, {**data, "redirect_uri": CB + "/x"})
    assert other.status_code == 400 and other.json()["hint"] == "Invalid redirect URI"
    assert post_token(wiki, {**data, "redirect_uri": CB}).status_code == 200
    # Neither step: fine. Only at the token step: an error.
    base = {"grant_type": "authorization_code", "client_id": CONF_ID, "client_secret": CONF_SECRET}
    neither = conf_code(wiki, redirect_uri=None)
    assert post_token(wiki, {**base, "code": neither}).status_code == 200
    # Confidential clients: a token redirect_uri that is not the registered one is invalid_client.
    mismatch = post_token(wiki, {**base, "code": conf_code(wiki), "redirect_uri": CONF_CB + "x"})
    assert mismatch.status_code == 401 and mismatch.json()["error"] == "invalid_client"


def test_redirect_uri_rules_at_authorize(wiki: DevWiki) -> None:
    registered = "http://127.0.0.1:8000/cb"
    wiki.add_client(DevClient("1" * 32, secret="s" * 40, redirect_uri=registered))

    def status(redirect: str) -> int:
        url = auth_url(wiki, client_id="1" * 32, redirect_uri=redirect)
        return requests.get(url, allow_redirects=False, timeout=10).status_code

    assert status(registered) == 307
    assert status("https://evil.example/cb") == (401 if wiki.flavor == "wikimedia" else 200)
    # Loopback IPs match on any port in League 9; MediaWiki 1.39 compared strictly.
    assert status("http://127.0.0.1:9999/cb") == (307 if wiki.flavor == "wikimedia" else 200)
    assert status("http://127.0.0.1:9999/other") != 307
    # The dev client (no registered URI) takes any loopback URL, and nothing else.
    for ok in ("http://localhost:8080/cb", "http://[::1]:5000/x", "https://127.0.0.1/y"):
        assert (
            requests.get(
                auth_url(wiki, redirect_uri=ok, code_challenge="a" * 43),
                allow_redirects=False,
                timeout=10,
            ).status_code
            == 307
        )
    for bad in ("http://example.org/cb", "http://user@127.0.0.1/cb", "ftp://127.0.0.1/"):
        response = requests.get(
            auth_url(wiki, redirect_uri=bad, code_challenge="a" * 43),
            allow_redirects=False,
            timeout=10,
        )
        # A redirect URI that does not match: an error page, never a redirect (401 on
        # Wikimedia's flavour, 200 on 1.39's, like its other authorize errors).
        assert response.status_code == (401 if wiki.flavor == "wikimedia" else 200)
        assert BANNER in response.text


# ------------------------------------------------------------------------------ authorize errors


@pytest.mark.parametrize(
    ("params", "status", "hint"),
    [
        ({"response_type": "token"}, 400, "Check the `response_type` parameter"),
        ({"client_id": None}, 400, "Check the `client_id` parameter"),
        ({"client_id": "f" * 32}, 401, None),
        ({"code_challenge": None}, 400, "Code challenge must be provided for public clients"),
        ({"code_challenge": "too-short"}, 400, "Code challenge must follow the specifications"),
        ({"code_challenge_method": "S512"}, 400, "Check the `code_challenge_method` parameter"),
        ({"client_id": "owner0000000000000000000000000000"}, 401, None),
    ],
)
def test_authorize_error_pages(
    wiki: DevWiki, params: dict[str, str | None], status: int, hint: str | None
) -> None:
    wiki.add_client(
        DevClient("owner0000000000000000000000000000", secret="s", owner_only=True, owner="Alice")
    )
    query: dict[str, str | None] = {"code_challenge": "a" * 43, "code_challenge_method": "S256"}
    query.update(params)
    response = requests.get(auth_url(wiki, **query), allow_redirects=False, timeout=10)
    assert response.status_code == (status if wiki.flavor == "wikimedia" else 200)
    assert response.headers["Content-Type"].startswith("text/html")
    assert BANNER in response.text and "Application Connection Error" in response.text
    if hint is not None:
        assert hint in response.text


def test_unknown_scope_redirects_with_invalid_scope(wiki: DevWiki) -> None:
    url = auth_url(wiki, scope="openid profile", code_challenge="a" * 43)
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    got = callback_params(response.headers["Location"])
    assert got["error"] == "invalid_scope"
    assert got["error_description"] == "The requested scope is invalid, unknown, or malformed"
    assert got["hint"] == "Check the `openid` scope"
    if wiki.flavor == "wikimedia":
        assert got["state"] == "st4te" and "message" not in got
    else:
        assert "state" not in got and "message" in got


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (None, ["basic", "editpage", "highvolume"]),
        ("", ["basic", "editpage", "highvolume"]),
        ("#default", ["basic", "editpage", "highvolume"]),
        ("basic createaccount", ["basic"]),
        ("editpage", ["basic", "editpage"]),
        ("useoauth highvolume", ["basic", "highvolume"]),
    ],
)
def test_scopes_are_narrowed_to_the_clients_grants(
    wm: DevWiki, scope: str | None, expected: list[str]
) -> None:
    tokens = login_tokens(wm, scope=scope)
    assert claims(tokens["access_token"])["scopes"] == expected
    assert profile(wm, tokens["access_token"]).json()["grants"] == expected


# ------------------------------------------------------------------------------ refresh


def test_refresh_rotation_and_grace_wikimedia(wm: DevWiki) -> None:
    first = login_tokens(wm)
    second = refresh(wm, first["refresh_token"])
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"]
    # The old access token dies at once (edge-style 401).
    dead = profile(wm, first["access_token"])
    assert dead.status_code == 401
    assert dead.headers["WWW-Authenticate"] == 'Bearer realm="devwiki", error="invalid_token"'
    assert profile(wm, pair["access_token"]).status_code == 200
    # Within the grace period the old refresh token works again (a fresh pair each time).
    retry = refresh(wm, first["refresh_token"])
    assert retry.status_code == 200 and retry.json()["refresh_token"] != pair["refresh_token"]
    assert profile(wm, pair["access_token"]).status_code == 200
    wm.advance_time(601)
    late = refresh(wm, first["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    assert late.json()["error_description"] == "The refresh token is invalid."
    assert late.json()["hint"] == "Token has been revoked"
    assert wm.calls["token:refresh_token"] == 3


def test_refresh_narrows_scopes(wm: DevWiki) -> None:
    tokens = login_tokens(wm)
    narrowed = refresh(wm, tokens["refresh_token"], scope="basic")
    assert narrowed.status_code == 200
    assert claims(narrowed.json()["access_token"])["scopes"] == ["basic"]
    wider = refresh(wm, narrowed.json()["refresh_token"], scope="basic editpage")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


def test_refresh_errors_1_39(old: DevWiki) -> None:
    old.add_client(DevClient("2" * 32, secret="p" * 40, confidential=False, redirect_uri=None))
    # A public client without a secret cannot refresh on 1.39 (T323855).
    tokens = login_tokens(old)
    response = refresh(old, tokens["refresh_token"])
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # A public client that has a secret refreshes with it; the old token is dead at once.
    verifier, challenge = pkce()
    url = auth_url(old, client_id="2" * 32, code_challenge=challenge, code_challenge_method="S256")
    code = callback_params(old.approve(url))["code"]
    exchanged = exchange_public(old, code, verifier, client_id="2" * 32)
    assert exchanged.status_code == 200  # no secret needed for the code exchange
    first = exchanged.json()
    secret = {"client_id": "2" * 32, "client_secret": "p" * 40}
    assert refresh(old, first["refresh_token"], **secret).status_code == 200
    reuse = refresh(old, first["refresh_token"], **secret)
    assert reuse.status_code == 401
    body = reuse.json()  # 1.39's body: invalid_request, not invalid_grant, and nothing more
    assert (body["error"], body["hint"]) == ("invalid_request", "Token has been revoked")
    assert body["error_description"] == body["message"] == "The refresh token is invalid."
    assert len(body) == 4
    revoked = profile(old, first["access_token"])
    assert revoked.status_code == 401 and revoked.json()["hint"] == "Access token has been revoked"


def test_refresh_token_expiry_and_garbage(wiki: DevWiki) -> None:
    if wiki.flavor == "1.39":
        wiki.clients[DEV_CLIENT_ID].secret = "d" * 40  # lets the public client refresh
    extra = {"client_secret": "d" * 40} if wiki.flavor == "1.39" else {}
    wiki.refresh_token_ttl = 60
    tokens = login_tokens(wiki)
    wiki.advance_time(61)
    expired = refresh(wiki, tokens["refresh_token"], **extra)
    assert expired.json()["hint"] == "Token has expired"
    assert expired.status_code == (400 if wiki.flavor == "wikimedia" else 401)
    garbage = refresh(wiki, "def50200" + "00" * 50, **extra)
    assert garbage.json()["hint"] == "Cannot decrypt the refresh token"


def test_revoke_and_expire(wm: DevWiki) -> None:
    tokens = login_tokens(wm)
    wm.expire_access_tokens("Alice")
    assert profile(wm, tokens["access_token"]).status_code == 401
    renewed = refresh(wm, tokens["refresh_token"]).json()
    assert profile(wm, renewed["access_token"]).status_code == 200
    wm.revoke_tokens("Alice")
    assert profile(wm, renewed["access_token"]).status_code == 401
    assert refresh(wm, renewed["refresh_token"]).json()["hint"] == "Token has been revoked"


# ------------------------------------------------------------------------------ profile


def test_profile_fields_per_flavor(wiki: DevWiki) -> None:
    tokens = login_tokens(wiki)
    response = profile(wiki, tokens["access_token"])
    body = response.json()
    assert isinstance(body["sub"], str) and body["sub"] == str(wiki.users["Alice"].id)
    assert body["registered"] == "20200101000000" and body["editcount"] == 42
    assert body["groups"] == ["*", "user", "autoconfirmed"]
    assert body["grants"] == ["basic", "editpage", "highvolume"]
    assert "email" not in body and "realname" not in body
    if wiki.flavor == "wikimedia":
        assert response.headers["Content-Type"] == "application/json"
        assert body["email_verified"] is True and "createpage" in body["rights"]
    else:
        assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
        assert "email_verified" not in body
        assert "createpage" not in body["rights"] and "edit" in body["rights"]


@pytest.mark.parametrize("grant", ["privateinfo", "mwoauth-authonlyprivate"])
def test_email_and_realname_need_private_grants(wm: DevWiki, grant: str) -> None:
    wm.add_client(DevClient("3" * 32, grants=[grant]))
    for name, email in (("Alice", "alice@example.org"), ("NoEmail", "")):
        code, verifier = public_code(wm, client_id="3" * 32, user=name)
        tokens = exchange_public(wm, code, verifier, client_id="3" * 32).json()
        body = profile(wm, tokens["access_token"]).json()
        assert body["email"] == email
        assert body["realname"] == ("Alice Example" if name == "Alice" else "")


def test_hidden_user_and_set_user(wiki: DevWiki) -> None:
    hidden = login_tokens(wiki, user="Hidden")
    assert profile(wiki, hidden["access_token"]).json() == {
        "sub": str(wiki.users["Hidden"].id),
        "blocked": True,
    }
    tokens = login_tokens(wiki)
    wiki.set_user("Alice", blocked=True, groups=["*", "user", "autoconfirmed", "sysop"])
    body = profile(wiki, tokens["access_token"]).json()
    assert body["blocked"] is True and "sysop" in body["groups"]


def test_profile_bad_tokens(wiki: DevWiki) -> None:
    missing = profile(wiki, None)
    if wiki.flavor == "1.39":  # the real 1.39 crashes without the header (conformance suite)
        assert missing.status_code == 500 and missing.json()["httpCode"] == 500
    else:
        assert missing.status_code == 401 and missing.json()["error"] == "access_denied"
        assert missing.json()["hint"] == 'Missing "Authorization" header'
    tokens = login_tokens(wiki)
    lowercase = requests.get(
        f"{wiki.base_url}/rest.php/oauth2/resource/profile",
        headers={"Authorization": "bearer " + tokens["access_token"]},
        timeout=10,
    )
    assert lowercase.status_code == 401
    garbage = profile(wiki, "garbage")
    tampered = profile(wiki, tokens["access_token"][:-4] + "AAAA")
    wiki.expire_access_tokens()
    expired = profile(wiki, tokens["access_token"])
    for response in (garbage, tampered, expired):
        assert response.status_code == 401
        if wiki.flavor == "wikimedia":
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        else:
            assert "WWW-Authenticate" not in response.headers
            assert response.json()["error"] == "access_denied"
    if wiki.flavor == "1.39":
        assert garbage.json()["hint"] == "The JWT string must have two dots"
        assert tampered.json()["hint"] == "Access token could not be verified"
        assert expired.json()["hint"] == "Access token could not be verified"


def test_scopes_resource(wiki: DevWiki) -> None:
    tokens = login_tokens(wiki, scope="basic")
    body = profile(wiki, tokens["access_token"], "scopes").json()
    if wiki.flavor == "wikimedia":
        assert body == {"scopes": ["basic", "editpage", "highvolume"]}
    else:
        assert body == {"scopes": {"0": "basic", "2": "editpage", "3": "highvolume"}}
    unknown = profile(wiki, tokens["access_token"], "foo")
    assert unknown.status_code == 400 and unknown.json()["error"] == "parameter-validation-failed"
    assert wiki.calls["scopes"] == 1


# ------------------------------------------------------------------------------ token endpoint


def test_token_endpoint_method_and_content_type(wiki: DevWiki) -> None:
    url = f"{wiki.base_url}/rest.php/oauth2/access_token"
    get = requests.get(url, timeout=10)
    assert get.status_code == 405 and get.headers["Allow"] == "POST"
    assert get.json()["httpCode"] == 405 and get.json()["httpReason"] == "Method Not Allowed"
    assert "messageTranslations" in get.json()
    as_json = requests.post(url, json={"grant_type": "client_credentials"}, timeout=10)
    if wiki.flavor == "wikimedia":
        assert as_json.status_code == 415 and as_json.json()["httpCode"] == 415
    else:
        assert (
            as_json.status_code == 400
            and as_json.json()["hint"] == "Check the `grant_type` parameter"
        )
    for grant in ("", "password"):
        response = post_token(wiki, {"grant_type": grant, "client_id": DEV_CLIENT_ID})
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"
        assert response.json()["hint"] == "Check the `grant_type` parameter"
    no_client = post_token(wiki, {"grant_type": "authorization_code", "code": "x"})
    assert no_client.json()["hint"] == "Check the `client_id` parameter"
    unknown = post_token(wiki, {"grant_type": "authorization_code", "client_id": "9" * 32})
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"


def test_client_credentials(wiki: DevWiki) -> None:
    wiki.add_client(
        DevClient("4" * 32, secret="o" * 40, owner_only=True, owner="Sysop", grants=["editpage"])
    )
    wiki.add_client(
        DevClient(
            "5" * 32,
            secret="n" * 40,
            redirect_uri=CONF_CB,
            allowed_grant_types=("authorization_code", "refresh_token", "client_credentials"),
        )
    )
    owner = post_token(wiki, {"grant_type": "client_credentials"}, auth=("4" * 32, "o" * 40))
    assert owner.status_code == 200 and "refresh_token" not in owner.json()
    assert owner.json()["expires_in"] == 14400
    assert profile(wiki, owner.json()["access_token"]).json()["username"] == "Sysop"
    anonymous = post_token(
        wiki, {"grant_type": "client_credentials", "client_id": "5" * 32, "client_secret": "n" * 40}
    )
    assert anonymous.status_code == 200
    info = api(wiki, anonymous.json()["access_token"], action="query", meta="userinfo").json()
    assert info["query"]["userinfo"]["anon"] is True
    for client_id, secret in ((CONF_ID, CONF_SECRET), (DEV_CLIENT_ID, "")):
        data = {"grant_type": "client_credentials", "client_id": client_id}
        refused = post_token(wiki, {**data, "client_secret": secret})
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    # Owner-only clients cannot use the dialog, but their owner has a ready, lasting token.
    ready = wiki.owner_only_token("4" * 32)
    assert ready == wiki.owner_only_token("4" * 32)
    assert claims(ready)["sub"] == str(wiki.users["Sysop"].id)
    wiki.advance_time(10 * 365 * 86400)
    assert profile(wiki, ready).json()["username"] == "Sysop"


# ------------------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "status", "check"),
    [
        (
            "500",
            500,
            lambda r: BANNER in r.text and r.headers["Content-Type"].startswith("text/html"),
        ),
        ("503", 503, lambda r: BANNER in r.text),
        ("garbage", 200, lambda r: r.text == "<html>oops"),
        ("badjson", 200, lambda r: r.text == '{"access_token": '),
        ("oversized", 200, lambda r: len(r.content) >= 5 * 1024 * 1024),
        ("redirect", 302, lambda r: r.headers["Location"] == "http://127.0.0.1:1/elsewhere"),
    ],
)
def test_token_faults(wm: DevWiki, kind: str, status: int, check: Any) -> None:
    wm.inject_fault("token", kind, times=2)
    code, verifier = public_code(wm)
    for _ in range(2):
        response = exchange_public(wm, code, verifier, allow_redirects=False)
        assert response.status_code == status and check(response)
        assert response.headers["X-Devwiki"] == "not a real login"
    assert exchange_public(wm, code, verifier).status_code == 200
    assert wm.calls["token:authorization_code"] == 3


@pytest.mark.parametrize("endpoint", ["authorize", "profile", "api", "rest"])
def test_faults_on_other_endpoints(wm: DevWiki, endpoint: str) -> None:
    wm.inject_fault(endpoint, "503")
    urls = {
        "authorize": auth_url(wm, code_challenge="a" * 43),
        "profile": f"{wm.base_url}/rest.php/oauth2/resource/profile",
        "api": f"{wm.base_url}/api.php?action=query&meta=userinfo&format=json",
        "rest": f"{wm.base_url}/rest.php/v1/page/Main_Page",
    }
    assert requests.get(urls[endpoint], allow_redirects=False, timeout=10).status_code == 503
    assert requests.get(urls[endpoint], allow_redirects=False, timeout=10).status_code != 503
    if endpoint == "authorize":
        wm.inject_fault("authorize", "500")
        with pytest.raises(DevWikiError) as caught:
            wm.approve(urls["authorize"])
        assert caught.value.status == 500


def test_profile_only_faults(wm: DevWiki) -> None:
    tokens = login_tokens(wm)
    wm.inject_fault("profile", "wrongtypes")
    wm.inject_fault("profile", "missingfields")
    assert profile(wm, tokens["access_token"]).json() == {
        "sub": [],
        "username": 5,
        "groups": "sysop",
        "rights": None,
        "blocked": "no",
    }
    assert profile(wm, tokens["access_token"]).json() == {"sub": "7"}
    assert profile(wm, tokens["access_token"]).json()["username"] == "Alice"
    with pytest.raises(ValueError):
        wm.inject_fault("token", "wrongtypes")
    with pytest.raises(ValueError):
        wm.inject_fault("nowhere", "500")


def test_hang_waits_and_clear_faults_wakes_it(wm: DevWiki) -> None:
    url = f"{wm.base_url}/rest.php/oauth2/resource/profile"
    wm.inject_fault("profile", "hang", delay=0.3)
    started = time.monotonic()
    assert requests.get(url, timeout=10).status_code == 401  # answers normally afterwards
    assert time.monotonic() - started >= 0.3
    wm.inject_fault("profile", "hang", delay=30)
    with pytest.raises(requests.Timeout):
        requests.get(url, timeout=0.3)
    wm.inject_fault("profile", "hang", delay=30)
    results: list[int] = []
    worker = threading.Thread(
        target=lambda: results.append(requests.get(url, timeout=10).status_code)
    )
    started = time.monotonic()
    worker.start()
    time.sleep(0.2)
    wm.clear_faults()
    worker.join(10)
    assert results == [401] and time.monotonic() - started < 5


# ------------------------------------------------------------------------------ api.php


def test_api_userinfo_tokens_and_edit(wiki: DevWiki) -> None:
    tokens = login_tokens(wiki)
    access = tokens["access_token"]
    info = api(wiki, access, action="query", meta="userinfo", uiprop="groups|rights|editcount")
    userinfo = info.json()["query"]["userinfo"]
    assert userinfo["name"] == "Alice" and userinfo["editcount"] == 42
    assert "edit" in userinfo["rights"] and "createpage" not in userinfo["rights"]
    csrf = api(wiki, access, action="query", meta="tokens").json()["query"]["tokens"]["csrftoken"]
    assert csrf.endswith("+\\") and len(csrf) > 2
    edit = api(
        wiki,
        access,
        post=True,
        action="edit",
        title="Sandbox",
        appendtext="\nHi",
        summary="test edit",
        token=csrf,
    )
    result = edit.json()["edit"]
    assert result["result"] == "Success" and result["title"] == "Sandbox"
    assert result["newrevid"] == 1
    assert wiki.pages["Sandbox"].endswith("\nHi")
    assert wiki.edits == [
        {"title": "Sandbox", "user": "Alice", "summary": "test edit", "text": wiki.pages["Sandbox"]}
    ]
    created = api(wiki, access, post=True, action="edit", title="new_page", text="New", token=csrf)
    assert created.json()["edit"]["title"] == "New page" and created.json()["edit"]["new"] is True
    contribs = api(wiki, access, action="query", list="usercontribs", ucuser="Alice").json()
    assert [c["title"] for c in contribs["query"]["usercontribs"]] == ["New page", "Sandbox"]
    read = api(
        wiki, action="query", prop="revisions", titles="New_page", rvprop="content", rvslots="main"
    ).json()
    assert read["query"]["pages"][0]["revisions"][0]["slots"]["main"]["content"] == "New"
    missing = api(wiki, action="query", prop="revisions", titles="Nope", rvprop="content").json()
    assert missing["query"]["pages"][0]["missing"] is True
    # Errors: bad CSRF token, GET, anonymous.
    bad = api(wiki, access, post=True, action="edit", title="Sandbox", text="x", token="+\\")
    assert bad.json()["error"]["code"] == "badtoken"
    assert bad.headers["MediaWiki-API-Error"] == "badtoken"
    get = api(wiki, access, action="edit", title="Sandbox", text="x", token=csrf)
    assert get.json()["error"]["code"] == "mustbeposted"
    anon = api(wiki, post=True, action="edit", title="Sandbox", text="x", token="+\\")
    assert anon.json()["error"]["code"] == "permissiondenied"


def test_api_edit_needs_grant_and_unblocked_user(wm: DevWiki) -> None:
    for user, scope, code in (("Alice", "basic", "permissiondenied"), ("Blocked", None, "blocked")):
        access = login_tokens(wm, user=user, scope=scope)["access_token"]
        csrf = api(wm, access, action="query", meta="tokens").json()["query"]["tokens"]["csrftoken"]
        response = api(wm, access, post=True, action="edit", title="Sandbox", text="x", token=csrf)
        assert response.status_code == 200 and response.json()["error"]["code"] == code
    assert wm.edits == []


def test_api_auth_only_token_cannot_read(wm: DevWiki) -> None:
    wm.add_client(DevClient("6" * 32, grants=["mwoauth-authonly"]))
    code, verifier = public_code(wm, client_id="6" * 32)
    access = exchange_public(wm, code, verifier, client_id="6" * 32).json()["access_token"]
    response = api(wm, access, action="query", meta="userinfo")
    assert response.json()["error"]["code"] == "readapidenied"


def test_api_assert_maxlag_and_invalid_token(wiki: DevWiki) -> None:
    anon = api(wiki, action="query", meta="userinfo", **{"assert": "user"})
    assert anon.status_code == 200 and anon.json()["error"]["code"] == "assertuserfailed"
    assert anon.headers["MediaWiki-API-Error"] == "assertuserfailed"
    access = login_tokens(wiki)["access_token"]
    ok = api(wiki, access, action="query", meta="userinfo", maxlag="5", **{"assert": "user"})
    assert ok.json()["query"]["userinfo"]["name"] == "Alice"
    wiki.lag = 10.0
    lagged = api(wiki, access, action="query", meta="userinfo", maxlag="5")
    assert lagged.status_code == 200 and lagged.json()["error"]["code"] == "maxlag"
    assert lagged.headers["Retry-After"] == "5"
    assert lagged.headers["MediaWiki-API-Error"] == "maxlag"
    assert api(wiki, access, action="query", meta="userinfo").status_code == 200
    wiki.revoke_tokens("Alice")
    for token in (access, "garbage"):
        bad = api(wiki, token, action="query", meta="userinfo")
        assert bad.status_code == 200
        assert bad.headers["MediaWiki-API-Error"] == "mwoauth-invalid-authorization"
        assert bad.json()["error"]["info"] == (
            "The authorization headers in your request are not valid: Invalid access token"
        )
    assert wiki.calls["api"] == 6


# ------------------------------------------------------------------------------ REST and pages


def test_rest_pages_and_unknown_paths(wiki: DevWiki) -> None:
    page = requests.get(f"{wiki.base_url}/rest.php/v1/page/Main_Page", timeout=10)
    assert page.status_code == 200 and page.json()["title"] == "Main Page"
    assert "development wiki" in page.json()["source"]
    missing = requests.get(f"{wiki.base_url}/rest.php/v1/page/Nope", timeout=10)
    assert missing.status_code == 404 and missing.json()["httpReason"] == "Not Found"
    unknown = requests.get(f"{wiki.base_url}/rest.php/oauth2/nothing", timeout=10)
    assert unknown.status_code == 404
    assert set(unknown.json()) >= {"messageTranslations", "httpCode", "httpReason"}
    well_known = requests.get(
        f"{wiki.base_url}/rest.php/.well-known/openid-configuration", timeout=10
    )
    assert well_known.status_code == 404
    access = login_tokens(wiki)["access_token"]
    put = requests.put(
        f"{wiki.base_url}/rest.php/v1/page/REST_page",
        json={"source": "via REST", "comment": "rest"},
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert put.status_code == 201 and wiki.pages["REST page"] == "via REST"
    index = requests.get(f"{wiki.base_url}/", timeout=10)
    assert BANNER in index.text and DEV_CLIENT_ID in index.text and "Newbie" in index.text


def test_mounted_under_a_prefix(wm: DevWiki) -> None:
    """Inside a tool at /_devwiki, every URL the wiki makes carries the prefix."""
    mounted = DispatcherMiddleware(wm.create_app(), {"/_devwiki": wm.create_app()})
    server = make_server("127.0.0.1", 0, mounted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.port}/_devwiki/w"
        verifier, challenge = pkce()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": DEV_CLIENT_ID,
                "redirect_uri": CB,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        url = f"{base}/rest.php/oauth2/authorize?{query}"
        first = requests.get(url, allow_redirects=False, timeout=10)
        assert first.headers["Location"].startswith("/_devwiki/w/index.php?")
        page = requests.get(
            f"http://127.0.0.1:{server.port}{first.headers['Location']}", timeout=10
        )
        assert 'action="/_devwiki/w/index.php"' in page.text
        location = wm.approve(url, username="Sysop")
        code = callback_params(location)["code"]
        token = exchange_public(wm, code, verifier, base=base)
        assert token.status_code == 200
        assert claims(token.json()["access_token"])["iss"] == f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()


def test_serve_context_manager_and_main_module() -> None:
    wiki = DevWiki()
    with wiki.serve() as base_url:
        assert base_url == wiki.base_url and base_url.endswith("/w")
        assert requests.get(base_url + "/", timeout=10).headers["X-Devwiki"] == "not a real login"
    assert wiki.base_url is None
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_wikimedia.devwiki", "--port", "0", "--flavor", "1.39"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert "not a real login" in lines[0]
        base = lines[1].split("=", 1)[1].strip()
        assert DEV_CLIENT_ID in lines[2]
        assert requests.get(base + "/", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(10)
