"""Helpers shared by the refresh, freshness, API and policy tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.login import REF_KEY
from flask_wikimedia.refresh import REFRESH_MARGIN
from flask_wikimedia.state import get_state
from flask_wikimedia.store import Stored
from flask_wikimedia.testing import login

LONG_TTL = 14400


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_ref(client: FlaskClient) -> str | None:
    with client.session_transaction() as sess:
        ref = sess.get(REF_KEY)
    return ref if isinstance(ref, str) else None


def stored(app: Flask, client: FlaskClient) -> Stored | None:
    """The login record behind ``client``'s session, as the store holds it now."""
    ref = session_ref(client)
    return get_state(app).store.get(ref) if ref else None


def login_due_for_refresh(client: FlaskClient, wiki: DevWiki, username: str = "Alice") -> Stored:
    """Log in with a token that is inside the refresh margin at once, then make the wiki treat
    it as expired too (as it would be a minute later). Later tokens live 4 hours again."""
    wiki.access_token_ttl = int(REFRESH_MARGIN)
    try:
        response = login(client, wiki, username)
    finally:
        wiki.access_token_ttl = LONG_TTL
    assert response.status_code == 303, response.text
    wiki.expire_access_tokens()
    record = stored(client.application, client)
    assert record is not None
    assert record.record.expires_at - time.time() < REFRESH_MARGIN
    return record


def clone(client: FlaskClient) -> FlaskClient:
    """Another test client with the same session cookie (a second tab, another worker)."""
    other = client.application.test_client()
    cookie = client.get_cookie("session")
    assert cookie is not None
    other.set_cookie("session", cookie.value)
    return other


def in_parallel(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` for i in range(count) on as many threads, all at once."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))
