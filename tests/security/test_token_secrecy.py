"""Tokens at rest and in transit (catalogue TL-1 … TL-6): never in cookies, URLs, pages, logs
at DEBUG level, signals, or in clear in Redis."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import re
import time
import zlib
from html.parser import HTMLParser

import pytest
from apps import CLIENT_SECRET
from securitykit import (
    approve,
    assert_clean_page,
    begin,
    build_app,
    deliver,
    log_in,
    log_out,
    pending_of,
    query_of,
    raw_values,
    session_ref,
    set_cookie_headers,
)

from flask_wikimedia import signals
from flask_wikimedia.api import user_session
from flask_wikimedia.state import get_state


def decoded_forms(value: str) -> list[bytes]:
    """A cookie value as an attacker would try to read it: raw, base64, zlib-inflated."""
    forms = [value.encode()]
    for part in re.split(r"[.]", value.lstrip(".")):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except ValueError:
            continue
        forms.append(raw)
        with contextlib.suppress(zlib.error):
            forms.append(zlib.decompress(raw))
    return forms


class Flow:
    """A complete life of one login, recording every response, token and id along the way."""

    def __init__(self, app, wiki) -> None:
        self.app, self.wiki = app, wiki
        self.client = app.test_client()
        self.responses = []
        self.secrets: dict[str, str] = {"client secret": CLIENT_SECRET}
        # While the test plays the browser on the wiki's consent page, the log records are the
        # browser's (requests/urllib3 in this process), not the tool's: they are left out.
        self.browsing = False

    def tool_records_only(self, record: logging.LogRecord) -> bool:
        return not self.browsing and not record.name.startswith("flask_wikimedia.devwiki")

    def get(self, path: str, **kwargs):
        response = self.client.get(path, **kwargs)
        self.responses.append(response)
        return response

    def run(self) -> Flow:
        authorize = begin(self.client, "/private")
        state = query_of(authorize)["state"][0]
        self.browsing = True
        try:
            callback = approve(self.wiki, authorize, "Alice")
        finally:
            self.browsing = False
        self.secrets["code"] = query_of(callback)["code"][0]
        self.secrets["state"] = state
        (pending,) = pending_of(self.app, self.client)
        self.secrets["code verifier"] = pending.code_verifier
        self.responses.append(deliver(self.client, callback))
        ref = session_ref(self.client)
        assert ref
        self.secrets["login reference"] = ref
        store = get_state(self.app).store
        stored = store.get(ref)
        self.secrets["access token"] = stored.record.access_token
        self.secrets["refresh token"] = stored.record.refresh_token
        sid = self.client.get_cookie("session")
        # The session id is in the cookie by design; it must not show up anywhere else.
        self.session_id = sid.value if sid else None
        for path in ("/me", "/private", "/api/whoami", "/probe/api"):
            self.get(path)
        # Make the access token due, so the next request refreshes it.
        store.replace(
            ref, stored.version, dataclasses.replace(stored.record, expires_at=time.time())
        )
        self.get("/private")
        refreshed = store.get(ref).record
        assert refreshed.access_token != self.secrets["access token"]
        self.secrets["new access token"] = refreshed.access_token
        self.secrets["new refresh token"] = refreshed.refresh_token
        self.get("/fresh")  # a profile re-read
        self.get("/auth/callback?code=junk&state=junk")
        self.responses.append(log_out(self.client))
        return self


def add_api_probe(app) -> None:
    @app.get("/probe/api")
    def probe_api() -> dict:
        return {"userinfo": user_session().get_json(action="query", meta="userinfo")["query"]}


@pytest.fixture
def flow(any_app, wiki):
    add_api_probe(any_app)
    return Flow(any_app, wiki)


def test_no_token_or_secret_in_any_cookie(flow):
    """TL-1: cookies carry an opaque id or sealed data only, whatever the session setup."""
    flow.run()
    values = [cookie.value for cookie in flow.client._cookies.values()]
    for response in flow.responses:
        values += [h.split(";")[0].partition("=")[2] for h in set_cookie_headers(response)]
    for name, secret in flow.secrets.items():
        if name == "login reference":
            continue  # the signed cookie session holds the reference, which is its job
        for value in values:
            for form in decoded_forms(value):
                assert secret.encode() not in form, f"{name} found in a cookie"


def test_no_token_or_id_in_any_url_or_page(flow):
    """TL-3/TL-5: no token, code, verifier or session id in a Location or a page body."""
    flow.run()
    secrets = dict(flow.secrets)
    if flow.session_id:
        secrets["session id"] = flow.session_id
    for response in flow.responses:
        body = response.get_data(as_text=True)
        location = response.headers.get("Location", "")
        for name, secret in secrets.items():
            assert secret not in location, f"{name} in a Location header"
            assert secret not in body, f"{name} in a page"


def test_nothing_secret_is_logged_at_debug_level(flow, caplog):
    """TL-2: the whole life of a login, with every logger at DEBUG, logs no secret."""
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "authlib", "oauthlib", "requests_oauthlib"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.handler.addFilter(flow.tool_records_only)
    flow.run()
    secrets = dict(flow.secrets)
    if flow.session_id:
        secrets["session id"] = flow.session_id
    ours = caplog.records
    assert ours, "the flow logged nothing at all: is capturing working?"
    text = "\n".join(r.getMessage() + repr(r.args) + str(r.exc_info) for r in ours)
    for name, secret in secrets.items():
        assert secret not in text, f"{name} was logged"


def test_signals_carry_no_token(flow):
    """TL-5: receivers of our signals (often loggers or Sentry) never get a token."""
    received: list[str] = []

    def listen(sender, **kwargs) -> None:
        received.append(repr(kwargs))

    connected = [
        signals.logged_in,
        signals.logged_out,
        signals.login_failed,
        signals.token_refreshed,
    ]
    for signal in connected:
        signal.connect(listen)
    try:
        flow.run()
    finally:
        for signal in connected:
            signal.disconnect(listen)
    assert len(received) >= 4
    for name, secret in flow.secrets.items():
        assert all(secret not in item for item in received), f"{name} in a signal"


def test_bearer_token_only_in_the_authorization_header(scripted, fast_redis, wiki):
    """TL-3: the profile and API calls carry the token in the header, never in the URL."""
    app = build_app(wiki, fast_redis, "flask-session", WIKIMEDIA_WIKI_URL=scripted.base_url)
    add_api_probe(app)
    flow = Flow(app, wiki).run()
    access = [flow.secrets["access token"], flow.secrets["new access token"]]
    seen = scripted.seen
    assert any(s.endpoint == "profile" for s in seen)
    assert any(s.endpoint == "api" for s in seen)
    for request in seen:
        for token in access:
            assert token not in request.path + request.query
            if request.endpoint != "token":
                assert token not in request.body.decode("latin-1")
        if request.endpoint in ("profile", "api"):
            assert request.headers["Authorization"].startswith("Bearer ")


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        for key, value in attrs:
            if key in ("src", "href", "action") and value:
                self.urls.append(value)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("code=x&state=forged", 400),
        ("error=access_denied", 403),
        ("error=server_error", 400),
        ("", 400),
    ],
)
def test_callback_pages_send_no_referer_and_load_nothing_from_elsewhere(client, query, status):
    """TL-4: the callback's own pages (errors included) leak nothing through Referer."""
    client.get("/auth/login")
    response = client.get(f"/auth/callback?{query}")
    assert response.status_code == status
    assert response.headers["Referrer-Policy"] == "no-referrer"
    parser = _Resources()
    parser.feed(response.get_data(as_text=True))
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url


def test_error_pages_after_login_show_no_token(app, client, wiki):
    """TL-5: a wiki failure while a login exists renders a page without any token."""
    log_in(client, wiki, "Alice")
    record = get_state(app).store.get(session_ref(client)).record
    wiki.inject_fault("profile", "500")
    page = client.get("/fresh")
    assert page.status_code == 503
    assert_clean_page(page, record.access_token, record.refresh_token)
    store = get_state(app).store
    ref = session_ref(client)
    stored = store.get(ref)
    store.replace(ref, stored.version, dataclasses.replace(stored.record, expires_at=time.time()))
    wiki.inject_fault("token", "badjson")
    page = client.get("/private")
    assert page.status_code == 502
    assert_clean_page(page, record.access_token, record.refresh_token)
    assert client.get("/api/whoami", headers={"Accept": "application/json"}).status_code == 200


def test_redis_holds_no_token_profile_or_name_in_clear(any_app, wiki, fast_redis):
    """TL-6: what a neighbour on the shared Redis could read: no token, no username."""
    client = any_app.test_client()
    log_in(client, wiki, "Alice")
    client.get("/me")  # a CSRF token in the session too
    record = get_state(any_app).store.get(session_ref(client)).record
    raw = raw_values(fast_redis)
    assert raw, "nothing stored? the test would prove nothing"
    for secret in (record.access_token, record.refresh_token, "Alice", CLIENT_SECRET):
        assert secret.encode() not in raw
    for part in (record.access_token.split(".")[1], record.refresh_token[8:72]):
        assert part.encode() not in raw
