"""Outbound calls, round 2 (issue 9 items 2, 3, 6 and the ApiError part of 9).

* Tokens go only where the request really goes: the origin is judged on the URL ``requests``
  sends, by the parsers it uses; hostile spellings never carry a Bearer token to a capture server
  on loopback, and the origin check is property-tested against ``requests``' own preparation.
* Every number and header from a wiki is hostile: ``Retry-After`` and token syntax.
* One total deadline per wiki call (connect, status line, headers, body): plain-socket servers
  that trickle or never answer cannot hold a worker.
* Errors keep no response: pickling or ``repr`` of every error type after a real failing call
  holds no token.
"""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import time

import pytest
import requests
from apps import USER_AGENT, make_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawservers import RawServer
from securitykit import (
    answer_raw,
    approve,
    begin,
    deliver,
    edit_upstream_json,
    log_in,
    run_with_deadline,
    session_ref,
    state_of,
)

from flask_wikimedia import api
from flask_wikimedia import login as login_module
from flask_wikimedia import refresh as refresh_module
from flask_wikimedia.apisession import _CredentialAuth
from flask_wikimedia.devwiki import DevClient
from flask_wikimedia.errors import ConfigurationError, WikiBadResponse, WikiUnavailable
from flask_wikimedia.oauth import OAuthClient
from flask_wikimedia.oauth1 import OAuth1Credentials
from flask_wikimedia.outbound import (
    UnsafeURL,
    WikiUnreachable,
    canonical_origin,
    check_wiki_url,
    parse_retry_after,
    prepared_url,
    request_origin,
)
from flask_wikimedia.state import get_state

TIMEOUT = (0.5, 1.0)
#: The design bound of one call (connect + read) plus slack for a loaded, shared machine.
CALL_BOUND = sum(TIMEOUT) + 1.5
APP_TOKEN = "app-token.never.expires"
OWNER_ID = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"
OWNER_SECRET = "2" * 40

# Examples, randomness and deadline come from the profile (tests/conftest.py): derandomised in
# the normal run, random under `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
PROPERTY = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def capture():
    server = RawServer("capture")
    yield server
    server.stop()


# --------------------------------------------------------------------------- item 2: origins

#: How an attacker spells "the allowed wiki" so that one parser sees it and the connection goes
#: elsewhere. {g}/{e}: the allowed wiki's and the capture server's host:port; {gh}/{eh} hosts,
#: {gp}/{ep} ports.
HAND_PICKED = [
    "http://{e}\\@{g}/w/api.php",
    "http://{g}\\@{e}/w/api.php",
    "http://{e}\\\\@{g}/w/api.php",
    "http://{g}@{e}/w/api.php",
    "http://{e}@{g}/w/api.php",
    "http://{g}:@{e}/",
    "http://{g}:{gp}@{e}/",
    "http://{e}%2f@{g}/w/api.php",
    "http://{e}%2F@{g}/w/api.php",
    "http://{e}%40{g}/w/api.php",
    "http://{g}#@{e}/",
    "http://{e}#@{g}/",
    "http://{e}?@{g}/",
    "http://{e};@{g}/",
    "http://{e}/\\..\\{g}/w/api.php",
    "http:{e}/w/api.php",
    "http:/{e}/w/api.php",
    "http:///{e}/w/api.php",
    "//{e}/w/api.php",
    "http:\\\\{e}/w/api.php",
    "http://\\{e}/w/api.php",
    "HTTP://{e}/w/api.php",
    "http://{e}\t/w/api.php",
    "http://{e}\n@{g}/",
    "http://\t{e}/",
    "http://{e}\r\n@{g}/",
    "http://{e} @{g}/",
    "http://{e}\x00@{g}/",
    "http://LOCALHOST:{ep}/w/api.php",
    "http://localhost.:{ep}/w/api.php",
    "http://127.1:{ep}/w/api.php",
    "http://127.0.1:{ep}/w/api.php",
    "http://0x7f.0.0.1:{ep}/w/api.php",
    "http://0177.0.0.1:{ep}/w/api.php",
    "http://2130706433:{ep}/w/api.php",
    "http://127.0.0.1.:{ep}/w/api.php",
    "http://[::ffff:127.0.0.1]:{ep}/w/api.php",
    "http://[::1]:{ep}/w/api.php",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{ep}/w/api.php",
    "http://127。0。0。1:{ep}/w/api.php",
    "http://{gh}:{gp}:{ep}/w/api.php",
    "http://{gh}:0{ep}/w/api.php",
    "http://{gh}:{ep}/w/api.php",
    "http://{gh}:{gp}.{eh}:{ep}/w/api.php",
    "http://{g}.{eh}:{ep}/w/api.php",
    "http://{e}/{g}/w/api.php",
    "http://{e}/w/api.php?origin=http://{g}/w",
]
SCHEMES = ["http://", "http:", "http:/", "//", "http:\\\\", "HTTP://", "http:///", "http:/\\"]
SEPARATORS = ["@", "\\@", ":@", "%40", "%2f@", "#@", "?@", "/@", "\t@", "\n@", "%00@", "\\/@"]


def hostile_spellings(g: str, e: str) -> list[str]:
    gh, gp = g.rsplit(":", 1)
    eh, ep = e.rsplit(":", 1)
    picked = [u.format(g=g, e=e, gh=gh, gp=gp, eh=eh, ep=ep) for u in HAND_PICKED]
    generated = [
        f"{scheme}{first}{sep}{second}/w/api.php"
        for scheme, sep, (first, second) in itertools.product(SCHEMES, SEPARATORS, [(g, e), (e, g)])
    ]
    return list(dict.fromkeys(picked + generated))


def plainly_one_origin(url: str) -> bool:
    """A URL anybody reads the same way: these may be sent (without the token elsewhere)."""
    try:
        request_origin(url)
    except UnsafeURL:
        return False
    return True


def _fire(session: api.ApiSession, urls: list[str]) -> dict[str, str]:
    outcomes = {}
    for url in urls:
        try:
            response = session.get(url, params={"action": "query", "format": "json"})
            outcomes[url] = f"sent: {response.status_code}"
        except UnsafeURL:
            outcomes[url] = "refused"
        except (WikiUnavailable, WikiBadResponse, requests.RequestException, ValueError) as exc:
            outcomes[url] = f"failed: {type(exc).__name__}"
    return outcomes


def _assert_no_token_reached(capture: RawServer, *tokens: str) -> None:
    for raw in capture.requests:
        assert b"authorization" not in raw.lower(), raw
        for token in tokens:
            assert token.encode() not in raw, raw


def test_no_bearer_token_reaches_a_capture_server_for_hostile_spellings(app, wiki, capture):
    """Issue 9 item 2: the user's token never reaches any host but the wiki's origin, however
    the URL is spelled; ambiguous spellings are refused before anything is sent."""
    client = app.test_client()
    log_in(client, wiki, "Alice")
    good = wiki.base_url.split("://", 1)[1].split("/", 1)[0]
    urls = hostile_spellings(good, capture.hostport)
    with client:
        client.get("/private")
        session = api.user_session()
        token = login_module.current_login().record.access_token
        outcomes = _fire(session, urls)
        # Controls: the capture server does see plain requests, and the wiki gets the token.
        session.get(capture.root + "/w/api.php")
        assert session.get(session.api_url, params={"action": "query"}).request.headers[
            "Authorization"
        ] == (f"Bearer {token}")
    assert capture.requests, "the capture server saw nothing: the test would prove nothing"
    _assert_no_token_reached(capture, token)
    for url, outcome in outcomes.items():
        if not plainly_one_origin(url):
            assert outcome == "refused", (url, outcome)
    assert sum(o == "refused" for o in outcomes.values()) > len(urls) // 2


def test_app_token_never_reaches_a_capture_server(wiki, fast_redis, capture):
    """The never-expiring app token is held to the same rule."""
    app = make_app(wiki, fast_redis, WIKIMEDIA_APP_TOKEN=APP_TOKEN, WIKIMEDIA_TIMEOUT=TIMEOUT)
    good = wiki.base_url.split("://", 1)[1].split("/", 1)[0]
    with app.app_context():
        session = api.app_session(assert_user=False)
        _fire(session, hostile_spellings(good, capture.hostport))
        session.get(capture.root + "/w/api.php")
    assert capture.requests
    _assert_no_token_reached(capture, APP_TOKEN)


def test_oauth1_signature_never_reaches_a_capture_server(wiki, capture):
    """OAuth 1.0a credentials are judged at the same point as the Bearer token: requests to
    the wiki's origin are signed, hostile spellings are refused or go out unsigned."""
    creds = OAuth1Credentials("consumer-key", "consumer-secret", "access-key", "access-secret")
    session = api.ApiSession(
        wiki.base_url, lambda stale: creds, user_agent=USER_AGENT, timeout=TIMEOUT, max_bytes=1000
    )
    good = wiki.base_url.split("://", 1)[1].split("/", 1)[0]
    urls = hostile_spellings(good, capture.hostport)
    outcomes = _fire(session, urls)
    session.get(capture.root + "/w/api.php")  # control: the capture server sees plain requests
    signer = _CredentialAuth(session, None, None)
    signed = session.prepare_request(requests.Request("GET", session.api_url, auth=signer))
    assert signed.headers["Authorization"].startswith("OAuth ") and signer.token is creds
    assert capture.requests, "the capture server saw nothing: the test would prove nothing"
    _assert_no_token_reached(capture, "access-key", "oauth_signature")
    for url, outcome in outcomes.items():
        if not plainly_one_origin(url):
            assert outcome == "refused", (url, outcome)


def test_send_refuses_a_token_for_another_origin_whoever_attached_it(capture):
    """The last look in ``send``: a prepared request carrying a Bearer header to another
    origin is refused, not sent (defence in depth behind the auth hook)."""
    session = _standalone_session("http://127.0.0.1:9/w")
    prepared = requests.Request(
        "GET", capture.root + "/", headers={"Authorization": "Bearer x"}
    ).prepare()
    with pytest.raises(UnsafeURL):
        session.send(prepared)
    assert capture.requests == []


def _standalone_session(wiki_url: str) -> api.ApiSession:
    return api.ApiSession(
        wiki_url,
        lambda stale: "tok",
        user_agent=USER_AGENT,
        timeout=TIMEOUT,
        max_bytes=1000,
    )


ALLOWED = "http://127.0.0.1:8080/w"
_PIECES = st.sampled_from(
    [
        "127.0.0.1", "127.0.0.1:8080", "127.0.0.1:8081", "evil", "evil:8080", "localhost:8080",
        "127.1:8080", "[::1]:8080", "@", ":", "\\", "/", "//", "%2f", "%40", "#", "?", ".",
        "\t", "\n", " ", "\uff11\uff12\uff17", "。", "0", "8080", "http:", "https:", "HTTP:", "xn--", "%00",
    ]
)  # fmt: skip


@st.composite
def url_spellings(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http://", "https://", "http:", "http:/", "//", "HtTp://", ""]))
    pieces = draw(st.lists(_PIECES, min_size=1, max_size=6))
    tail = draw(st.text(min_size=0, max_size=6))
    return scheme + "".join(pieces) + draw(st.sampled_from(["", "/w/api.php", "/"])) + tail


@PROPERTY
@given(url=url_spellings())
def test_token_is_attached_only_when_requests_connects_to_the_allowed_origin(url):
    """Property: whenever the auth hook attaches the token, the host ``requests``' adapter
    picks for the connection (its own pool key, and urllib3's reading of the URL) is exactly
    the allowed origin; and no token is attached to a URL that could be read two ways."""
    session = _standalone_session(ALLOWED)
    bearer = _CredentialAuth(session, None, None)
    try:
        prepared = session.prepare_request(requests.Request("GET", url, auth=bearer))
    except (UnsafeURL, requests.RequestException, ValueError, UnicodeError):
        assert bearer.token is None
        return
    if "Authorization" not in prepared.headers:
        return
    host_params, _ = requests.adapters.HTTPAdapter().build_connection_pool_key_attributes(
        prepared, True
    )
    parsed = requests.adapters.parse_url(prepared.url)
    assert (host_params["scheme"], host_params["host"], host_params["port"] or 80) == (
        "http",
        "127.0.0.1",
        8080,
    )
    assert (parsed.scheme, parsed.host, parsed.port) == ("http", "127.0.0.1", 8080)
    # Whatever was attached also passes the caller-side check (no two readings).
    assert request_origin(url) == ("http", "127.0.0.1", 8080)


@PROPERTY
@given(url=url_spellings())
def test_canonical_origin_agrees_with_both_parsers_requests_uses(url):
    """Property: an accepted URL is read identically by urllib.parse (requests' adapter) and
    urllib3's parse_url (requests' preparation)."""
    try:
        scheme, host, port = canonical_origin(prepared_url(url))
    except UnsafeURL:
        return
    prepared = prepared_url(url)
    parsed = requests.adapters.parse_url(prepared)
    split = requests.adapters.urlparse(prepared)
    default = {"http": 80, "https": 443}[scheme]
    assert (parsed.scheme, parsed.host, parsed.port or default) == (scheme, host, port)
    assert (split.scheme, split.hostname, split.port or default) == (scheme, host.strip("[]"), port)
    assert parsed.auth is None and "@" not in split.netloc


@pytest.mark.parametrize(
    "url",
    [
        "https://evil\\@meta.wikimedia.org/w",
        "https://meta.wikimedia.org\\@evil/w",
        "https://evil@meta.wikimedia.org/w",
        "https://meta.wikimedia.org@evil/w",
        "https://meta.wikimedia.org/w?x=1",
        "https://meta.wikimedia.org/w#frag",
        "https:meta.wikimedia.org/w",
        "//meta.wikimedia.org/w",
        "https://meta.wikimedia.org\t/w",
        "https://meta.wikimedia.org./w",
        "https://127.1/w",
        "https:///w",
        "https://\uff4d\uff45\uff54\uff41.wikimedia.org/w",
        "ftp://meta.wikimedia.org/w",
        "http://meta.wikimedia.org/w",
        "https://meta.wikimedia.org:99999/w",
    ],
)
def test_startup_refuses_a_wiki_url_that_could_send_tokens_elsewhere(wiki, url):
    """Issue 9 item 2, the startup check: WIKIMEDIA_WIKI_URL is read with requests' parser."""
    with pytest.raises(ConfigurationError, match="WIKIMEDIA_WIKI_URL"):
        make_app(
            wiki,
            None,
            WIKIMEDIA_WIKI_URL=url,
            TESTING=False,
            WIKIMEDIA_REDIRECT_URI="https://tool.example/auth/callback",
        )


@pytest.mark.parametrize(
    "url",
    ["https://meta.wikimedia.org/w", "https://META.wikimedia.org/w/", "http://127.0.0.1:8/w"],
)
def test_startup_accepts_plain_wiki_urls(url):
    assert check_wiki_url(url, allow_http=False) == url


# --------------------------------------------------------------------------- item 3: numbers

HOSTILE_RETRY_AFTER = [
    "nan", "NaN", "inf", "-inf", "-1", "1e309", "1e3", "0x10", "٣", "5, 6", "", " ",
    "99999999999999999999999", "Wed, 21 Oct 2099 07:28:00 GMT", "Wed, 21 Oct 1999 07:28:00 GMT",
    "Mon, 99 Foo 2015 99:99:99 GMT", "soon", "1.5",
]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE_RETRY_AFTER, ids=repr)
def test_retry_after_is_parsed_strictly_and_clamped(value):
    seconds = parse_retry_after(value, 2.0)
    assert seconds is None or 0.0 <= seconds <= 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0", 0.0), ("120", 10.0), ("Wed, 21 Oct 1999 07:28:00 GMT", 0.0)],
)
def test_retry_after_reads_delta_seconds_and_dates(value, expected):
    assert parse_retry_after(value, 10.0) == expected


@pytest.mark.parametrize("value", HOSTILE_RETRY_AFTER, ids=repr)
@pytest.mark.parametrize("fault", ["503", "429", "maxlag"])
def test_hostile_retry_after_on_api_calls_is_never_a_500(app, wiki, value, fault):
    """``Retry-After: nan`` used to raise inside time.sleep: now any value is a bounded wait
    or none, and the view answers with the API's result or a clear 429/503."""
    wiki.retry_after = value

    @app.get("/probe/api")
    def probe_api() -> tuple[str, int]:
        session = api.user_session(max_retries=1, max_retry_after=0.2)
        try:
            answer = session.get_json(action="query", meta="userinfo")
        except api.RateLimited as exc:  # what a tool does with a rate limit that did not clear
            return exc.code, 429
        return str(answer["query"]["userinfo"]["name"]), 200

    client = app.test_client()
    log_in(client, wiki, "Alice")
    if fault == "maxlag":
        wiki.lag = 10.0
    else:
        wiki.inject_fault("api", fault, times=2)
    started = time.monotonic()
    response = client.get("/probe/api")
    assert time.monotonic() - started < 2 * CALL_BOUND
    assert response.status_code != 500
    assert "Traceback" not in response.text
    wiki.lag = 0.0
    wiki.clear_faults()


HOSTILE_TOKENS = ["\u0100", "a\nb", "a b", "Bearer abc", "a\r\nX-Evil: 1", "", "=abc", "ab=c", "é"]


@pytest.mark.parametrize("access_token", HOSTILE_TOKENS, ids=repr)
@pytest.mark.parametrize("moment", ["login", "refresh"])
def test_token_answer_with_an_unusable_access_token_is_a_502(
    scripted_app, scripted, wiki, fast_redis, access_token, moment
):
    """``"access_token": "\\u0100"`` used to be a 500 (UnicodeEncodeError sending the header):
    RFC 6750 b64token is checked at the token endpoint, at login and at refresh."""
    client = scripted_app.test_client()
    if moment == "login":
        callback = approve(wiki, begin(client), "Alice")
        scripted.on("token", edit_upstream_json(lambda t: t.update(access_token=access_token)))
        response = deliver(client, callback)
    else:
        log_in(client, wiki, "Alice")
        _make_due(scripted_app, client)
        scripted.on("token", edit_upstream_json(lambda t: t.update(access_token=access_token)))
        response = client.get("/private")
    assert response.status_code == 502
    assert "Traceback" not in response.text


@pytest.mark.parametrize("refresh_token", ["\u0100", "a\nb", "\x7f"], ids=repr)
def test_token_answer_with_an_unusable_refresh_token_is_a_502(
    scripted_app, scripted, wiki, refresh_token
):
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    scripted.on("token", edit_upstream_json(lambda t: t.update(refresh_token=refresh_token)))
    assert deliver(client, callback).status_code == 502


@pytest.mark.parametrize(
    "expires_in", ["NaN", "Infinity", "-Infinity", "1e309", '"\\u00b2"', '"\\u0967\\u0968"']
)
def test_token_answer_with_a_non_finite_expiry_is_a_502(scripted_app, scripted, wiki, expires_in):
    """Python's json reads NaN and Infinity; a wiki sending them gets a 502, not a 500 or a
    token that never expires. Digits other than ASCII (``str.isdigit`` accepts them) too."""
    client = scripted_app.test_client()
    callback = approve(wiki, begin(client), "Alice")
    body = f'{{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": {expires_in}}}'
    scripted.on("token", answer_raw(body.encode(), 200, "application/json"))
    assert deliver(client, callback).status_code == 502


def test_client_credentials_token_is_checked_too(wiki, fast_redis, scripted):
    wiki.add_client(DevClient(OWNER_ID, secret=OWNER_SECRET, owner_only=True, owner="Sysop"))
    app = make_app(
        wiki,
        fast_redis,
        WIKIMEDIA_CLIENT_ID=OWNER_ID,
        WIKIMEDIA_CLIENT_SECRET=OWNER_SECRET,
        WIKIMEDIA_WIKI_URL=scripted.base_url,
        WIKIMEDIA_TIMEOUT=TIMEOUT,
    )
    scripted.on("token", edit_upstream_json(lambda t: t.update(access_token="\u0100")))
    with app.app_context(), pytest.raises(WikiBadResponse):
        api.app_session(assert_user=False).get_json(action="query")


@pytest.mark.parametrize("token", ["Bearer abc", "abc def", "\u0100", "abc\n"], ids=repr)
def test_app_token_config_must_be_a_bearer_token(wiki, token):
    with pytest.raises(ConfigurationError, match="WIKIMEDIA_APP_TOKEN"):
        make_app(wiki, None, WIKIMEDIA_APP_TOKEN=token)


def _make_due(app, client) -> None:
    store = get_state(app).store
    ref = session_ref(client)
    stored = store.get(ref)
    store.replace(ref, stored.version, dataclasses.replace(stored.record, expires_at=time.time()))


# --------------------------------------------------------------------------- item 6: deadline


def _oauth() -> OAuthClient:
    return OAuthClient(
        client_id="c",
        client_secret="s",
        scopes=None,
        user_agent=USER_AGENT,
        timeout=TIMEOUT,
        max_bytes=1_000_000,
    )


CALLS = {
    "token-exchange": lambda url: _oauth().exchange_code(
        url, code="x", redirect_uri="http://localhost/cb", code_verifier="v" * 43
    ),
    "refresh": lambda url: _oauth().refresh(url, "refresh-token"),
    "client-credentials": lambda url: _oauth().client_credentials(url),
    "profile": lambda url: _oauth().profile(url, "access-token"),
    "api.php": lambda url: _standalone_session(url).get_json(action="query"),
}


@pytest.mark.parametrize("mode", ["trickle-head", "silent", "trickle-body"])
@pytest.mark.parametrize("call", CALLS)
def test_every_wiki_call_ends_within_its_total_deadline(call, mode):
    """Issue 9 item 6: a wiki that trickles its status line and headers a byte at a time
    (each byte well inside the read timeout), never answers, or trickles its body, gets a
    503-style error within connect + read timeout (plus slack), for every kind of call."""
    server = RawServer(mode, interval=0.05)
    try:
        started = time.monotonic()
        finished, result = run_with_deadline(lambda: CALLS[call](server.root + "/w"), 8.0)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert finished, f"{call} was still talking to a {mode} wiki after 8 s"
    assert isinstance(result, WikiUnreachable | WikiUnavailable), repr(result)
    assert elapsed < CALL_BOUND, elapsed


def test_trickled_headers_at_the_callback_are_a_503_in_bounded_time(fast_redis, wiki):
    """End to end: the code exchange against a wiki trickling its headers is a clear 503."""
    server = RawServer("trickle-head", interval=0.05)
    try:
        app = make_app(
            wiki, fast_redis, WIKIMEDIA_WIKI_URL=server.root + "/w", WIKIMEDIA_TIMEOUT=TIMEOUT
        )
        client = app.test_client()
        state = state_of(begin(client))
        finished, response = run_with_deadline(
            lambda: client.get(f"/auth/callback?code=x&state={state}"), CALL_BOUND
        )
    finally:
        server.stop()
    assert finished
    assert response.status_code == 503
    assert "Traceback" not in response.text


def test_the_clock_starts_when_the_request_is_sent_not_before_a_refresh(app, wiki):
    """The token provider runs inside ``requests``' preparation (the auth hook) and may refresh,
    with wiki calls of its own: the API call still gets its whole deadline once it is sent, so
    a slow refresh followed by a slow but working answer is not a 503."""
    client = app.test_client()
    log_in(client, wiki, "Alice")
    with client:
        client.get("/private")
        token = login_module.current_login().record.access_token

    def slow_refresh(stale: str | None) -> str:
        time.sleep(sum(TIMEOUT) * 0.8)  # a refresh's wiki calls, inside the deadline of each
        return token

    session = api.ApiSession(
        wiki.base_url, slow_refresh, user_agent=USER_AGENT, timeout=TIMEOUT, max_bytes=100000
    )
    wiki.inject_fault("api", "hang", delay=TIMEOUT[1] * 0.5)
    answer = session.get_json(action="query", meta="userinfo")
    assert answer["query"]["userinfo"]["name"] == "Alice"


def test_refresh_lock_outlives_the_holders_two_calls(app):
    """The refresh lock's lifetime argument: the holder makes at most two wiki calls (token,
    profile), each bounded by the total deadline, so the lock must outlive both."""
    state = get_state(app)
    assert refresh_module.lock_ttl(state) > 2 * sum(state.oauth.timeout)


# --------------------------------------------------------------------------- item 9: errors


def _errors_after_real_failures(app, wiki) -> list[BaseException]:
    """Every error type an API call raises, each from a real failing call to the dev wiki."""
    raised: list[BaseException] = []
    client = app.test_client()
    log_in(client, wiki, "Alice")
    with client:
        client.get("/private")

        def catch(func) -> None:
            try:
                func()
            except Exception as exc:  # collected for inspection
                raised.append(exc)
            else:  # pragma: no cover
                raise AssertionError("the call was meant to fail")

        session = api.user_session(max_retries=0)
        catch(lambda: session.get_json(action="nonsense"))  # api.ApiError
        catch(lambda: api.user_session(assert_user=True).rest("GET", "/v1/page/Does_not_exist_9"))
        wiki.lag = 10.0
        catch(lambda: session.get_json(action="query"))  # api.RateLimited
        wiki.lag = 0.0
        wiki.inject_fault("api", "429")
        catch(lambda: session.get_json(action="query"))  # api.RateLimited (HTTP 429)
        wiki.inject_fault("api", "500")
        catch(lambda: session.get_json(action="query"))  # WikiUnavailable
        wiki.inject_fault("api", "garbage")
        catch(lambda: session.get_json(action="query"))  # WikiBadResponse
        wiki.inject_fault("api", "hang", delay=5.0)
        catch(lambda: session.get_json(action="query"))  # WikiUnavailable from a read timeout
        wiki.clear_faults()
        anonymous = api.ApiSession(
            session.wiki_url,
            lambda stale: "not.a.real.token",
            user_agent=USER_AGENT,
            timeout=TIMEOUT,
            max_bytes=100000,
        )
        catch(lambda: anonymous.get_json(action="query"))  # api.InvalidAuthorization
    return raised


def _chain(error: BaseException) -> list[BaseException]:
    links, seen = [], set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


def test_errors_after_a_real_failing_call_hold_no_token(app, wiki):
    """Issue 9 item 9: pickling or repr of an error must not write out the Bearer token."""
    client = app.test_client()
    log_in(client, wiki, "Alice")
    with client:
        client.get("/private")
        token = login_module.current_login().record.access_token
    errors = _errors_after_real_failures(app, wiki)
    kinds = {type(e) for e in errors}
    assert {api.ApiError, api.RateLimited, api.InvalidAuthorization} <= kinds
    assert {WikiUnavailable, WikiBadResponse} <= kinds
    for error in errors:
        for text in (repr(error), str(error), pickle.dumps(error)):
            blob = text if isinstance(text, bytes) else text.encode()
            assert token.encode() not in blob, type(error)
            assert b"Bearer" not in blob, type(error)
            assert b"not.a.real.token" not in blob
        for link in _chain(error):  # what a logger or error tracker walking the chain finds
            for attribute in ("request", "response"):
                held = getattr(link, attribute, None)
                headers = getattr(held, "headers", None) or {}
                assert "Authorization" not in headers, (type(error), type(link))
        if isinstance(error, api.ApiError):
            assert not hasattr(error, "response")
            copy = pickle.loads(pickle.dumps(error))
            assert (type(copy), copy.code, copy.info, copy.status) == (
                type(error),
                error.code,
                error.info,
                error.status,
            )


def test_assert_user_failed_keeps_no_response_either():
    error = api.AssertUserFailed("assertuserfailed", "anonymous", status=200)
    assert pickle.loads(pickle.dumps(error)).status == 200
    assert "response" not in repr(error)
