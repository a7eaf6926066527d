"""What the conformance scenarios share (both files, both OAuth versions): logging a test client
in through a server's consent page, and reading the login record behind a session."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from servers import Server

from flask_wikimedia.login import REF_KEY
from flask_wikimedia.state import get_state
from flask_wikimedia.testing import finish_login, start_login


def session_record(client: FlaskClient) -> Any:
    """The decrypted login record of ``client``'s session (None: logged out)."""
    with client.session_transaction() as sess:
        ref = sess.get(REF_KEY)
    stored = get_state(client.application).store.get(ref) if ref else None
    return stored.record if stored else None


def log_in(server: Server, app: Flask, username: str) -> FlaskClient:
    """A test client logged in as ``username`` through ``server``'s consent page, sent on to
    the page it asked for."""
    client = app.test_client()
    authorize = start_login(client, "/private")
    response = finish_login(client, server.approve(authorize, username))
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == "/private"
    return client
