"""Fuzzing (issue 5, item 8): hypothesis over the callback's query and over the wiki's answers
to the token and profile calls (at login and at refresh). Whatever arrives, the tool answers
with a page, never a 500, and stores a login only when everything checked out."""

from __future__ import annotations

import dataclasses
import json
import time
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from securitykit import (
    approve,
    begin,
    log_in,
    login_keys,
    query_of,
    session_ref,
    state_of,
)
from werkzeug.wrappers import Response

from flask_wikimedia.state import get_state

# Examples, randomness and deadline come from the profile (tests/conftest.py): derandomised in
# `make test`, random and many in `make fuzz`.
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PAGE_STATUSES = {303, 400, 403, 502, 503}

# --------------------------------------------------------------------------- the callback's query

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
_VALUE = st.one_of(
    _TEXT,
    st.sampled_from(["", "access_denied", "unauthorized_client", "server_error", "%00", "\r\n"]),
    st.text(max_size=5).map(lambda t: t * 3000),
)
_KEYS = st.sampled_from(
    ["code", "state", "error", "error_description", "message", "next", "iss", "scope", "x"]
)


@st.composite
def callback_queries(draw):
    """A list of (key, value) pairs; ``state`` may be the real pending state."""
    pairs = draw(st.lists(st.tuples(_KEYS, _VALUE), max_size=6))
    if draw(st.booleans()):
        pairs.append(("state", "<STATE>"))
    if draw(st.booleans()):
        pairs.append(("code", draw(st.sampled_from(["<CODE>", "x", ""]))))
    return draw(st.permutations(pairs))


@FUZZ
@given(pairs=callback_queries(), raw_tail=st.binary(max_size=40))
def test_callback_query_fuzz_never_a_500(app, wiki, pairs, raw_tail):
    client = app.test_client()
    authorize = begin(client)
    state = state_of(authorize)
    uses_code = any(v == "<CODE>" for _, v in pairs)
    code = ""
    if uses_code:
        code = query_of(approve(wiki, authorize, "Alice"))["code"][0]
    query = "&".join(
        f"{quote(k)}={quote(v.replace('<STATE>', state).replace('<CODE>', code), safe='')}"
        for k, v in pairs
    ).encode()
    if raw_tail:
        query += b"&" + raw_tail.replace(b"#", b"")
    before = wiki.calls["token"]
    response = client.get("/auth/callback", query_string=query.decode("latin-1"))
    assert response.status_code in PAGE_STATUSES
    if wiki.calls["token"] != before:
        # A token call happens only for this browser's own state, given exactly once.
        assert [v for k, v in pairs if k == "state"] == ["<STATE>"]
    if response.status_code == 303:
        assert get_state(app).store.get(session_ref(client)) is not None


# --------------------------------------------------------------------------- the wiki's answers

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
)
_ANY_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
_TOKEN_BODY = st.fixed_dictionaries(
    {},
    optional={
        "access_token": st.one_of(st.just("aaa.bbb.ccc"), _ANY_JSON),
        "refresh_token": st.one_of(st.just("def50200abc"), _ANY_JSON),
        "expires_in": st.one_of(st.integers(-10, 10**13), st.just("3600"), _ANY_JSON),
        "expires_at": _ANY_JSON,
        "token_type": st.one_of(st.just("Bearer"), _ANY_JSON),
        "error": _ANY_JSON,
        "error_description": _ANY_JSON,
        "scope": _ANY_JSON,
    },
)
_PROFILE_BODY = st.fixed_dictionaries(
    {},
    optional={
        "sub": st.one_of(st.just("42"), st.integers(-5, 10**20), _ANY_JSON),
        "username": st.one_of(st.just("Fuzzy"), _ANY_JSON),
        "editcount": st.one_of(st.integers(-5, 10**12), _ANY_JSON),
        "confirmed_email": _ANY_JSON,
        "email_verified": _ANY_JSON,
        "blocked": st.one_of(st.booleans(), _ANY_JSON),
        "registered": st.one_of(st.just("20200101000000"), st.just("20201399999999"), _ANY_JSON),
        "groups": st.one_of(st.just(["*", "user"]), _ANY_JSON),
        "rights": st.one_of(st.just(["read", "edit"]), _ANY_JSON),
        "grants": st.one_of(st.just(["basic"]), _ANY_JSON),
        "realname": _ANY_JSON,
        "email": _ANY_JSON,
    },
)


@st.composite
def wiki_answers(draw, body):
    status = draw(st.sampled_from([200, 200, 200, 400, 401, 403, 404, 429, 500, 503, 302, 307]))
    content_type = draw(
        st.sampled_from(["application/json", "text/html; charset=UTF-8", "text/plain", ""])
    )
    kind = draw(st.sampled_from(["json", "json", "json", "bytes", "any-json"]))
    if kind == "json":
        payload = json.dumps(draw(body)).encode()
    elif kind == "any-json":
        payload = json.dumps(draw(_ANY_JSON)).encode()
    else:
        payload = draw(st.binary(max_size=200))
    return status, content_type, payload


def _answer(status: int, content_type: str, payload: bytes):
    def handler(seen, forward):
        response = Response(payload, status)
        if content_type:
            response.headers["Content-Type"] = content_type
        if 300 <= status < 400:
            response.headers["Location"] = "http://127.0.0.1:9/elsewhere"
        return response

    return handler


@FUZZ
@given(token=wiki_answers(_TOKEN_BODY), profile=wiki_answers(_PROFILE_BODY))
def test_wiki_answer_fuzz_at_login_never_a_500(scripted_app, scripted, fast_redis, token, profile):
    scripted.reset()
    fast_redis.flushall()
    scripted.on("token", _answer(*token))
    scripted.on("profile", _answer(*profile))
    client = scripted_app.test_client()
    state = state_of(begin(client))
    response = client.get(f"/auth/callback?code=fuzz&state={state}")
    assert response.status_code in PAGE_STATUSES
    assert b"Traceback" not in response.data
    if response.status_code == 303:
        record = get_state(scripted_app).store.get(session_ref(client)).record
        assert isinstance(record.access_token, str) and record.access_token
        assert record.user().sub.isdigit()
    else:
        assert login_keys(fast_redis) == []


@FUZZ
@given(token=wiki_answers(_TOKEN_BODY), profile=wiki_answers(_PROFILE_BODY))
def test_wiki_answer_fuzz_at_refresh_never_a_500(scripted_app, scripted, wiki, token, profile):
    scripted.reset()
    client = scripted_app.test_client()
    log_in(client, wiki, "Alice")
    store = get_state(scripted_app).store
    ref = session_ref(client)
    stored = store.get(ref)
    store.replace(
        ref,
        stored.version,
        dataclasses.replace(stored.record, expires_at=time.time(), profile_at=0.0),
    )
    scripted.on("token", _answer(*token))
    scripted.on("profile", _answer(*profile))
    response = client.get("/private")
    assert response.status_code in {200, 302, 502, 503}
    assert b"Traceback" not in response.data
    after = store.get(ref)
    if response.status_code == 200:
        assert after is not None
        assert isinstance(after.record.access_token, str) and after.record.access_token
