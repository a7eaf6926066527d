"""OAuth 1.0a entries in the pending-login cookie: only well-formed ones are ever redeemed."""

from __future__ import annotations

import time

import pytest

from flask_wikimedia import pending
from flask_wikimedia.crypto import Sealer

SEALER = Sealer("test-secret-key-that-is-long-enough-0123456789", "pending-login", [])
TOKEN = "0123456789abcdef0123456789abcdef"


def entry(**changes) -> pending.PendingLogin:
    fields = {
        "state": TOKEN,
        "code_verifier": "",
        "next": "/",
        "redirect_uri": "http://localhost/auth/callback",
        "created_at": time.time(),
        "oauth_version": "1.0a",
        "token_secret": "fedcba9876543210fedcba9876543210",
    }
    fields.update(changes)
    return pending.PendingLogin(**fields)


def test_a_1_0a_entry_round_trips():
    item = entry()
    assert pending.read(SEALER, pending.write(SEALER, [item])) == [item]


@pytest.mark.parametrize(
    "changes",
    [
        {"token_secret": ""},  # a 1.0a entry must carry its request token secret
        {"code_verifier": "x" * 64},  # and no PKCE verifier: the two kinds never mix
        {"oauth_version": "1.0"},  # an unknown version
        {"oauth_version": "2.0"},  # a 2.0 entry without a verifier (a PKCE downgrade)
        {"state": "short"},  # a request token that cannot be a state
    ],
)
def test_malformed_1_0a_entries_are_dropped(changes):
    assert pending.read(SEALER, pending.write(SEALER, [entry(**changes)])) == []
