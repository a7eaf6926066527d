"""Open redirects through ``next`` (catalogue OR-1 … OR-6 and the §4 vector list).

Each vector goes through the whole login (``/auth/login?next=v`` → the wiki → callback) and
the final ``Location`` is checked twice: against the expected string, and by resolving it the
way a browser would (:func:`securitykit.browser_target`), so a value that Python thinks is a
path but a browser reads as another host cannot pass.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from securitykit import (
    ORIGIN,
    approve,
    begin,
    csrf_token,
    deliver,
    log_in,
    pending_of,
    query_of,
    same_origin,
)

from flask_wikimedia.redirects import safe_next

EVIL = "evil.example"
HERE = "localhost"

#: Catalogue §4: Django's bad-URL corpus as extended by CTFd, plus this tool's own origin.
OFF_SITE = [
    f"//{EVIL}",
    f"///{EVIL}",
    f"////{EVIL}",
    f"/\\{EVIL}",
    f"\\\\{EVIL}",
    f"/\\/{EVIL}",
    f"\\/\\/{EVIL}/",
    f"/\t/{EVIL}",
    f"//\t/{EVIL}",
    f"/%09/{EVIL}",
    f"\x08//{EVIL}",
    f"\x00//{EVIL}",
    f" //{EVIL}",
    f"\t//{EVIL}",
    f"https:{EVIL}",
    f"http:{EVIL}",
    "http:999999999",
    f"https://{HERE}@{EVIL}/",
    f"//user:pass@{EVIL}/",
    f"https://{EVIL}\\@{HERE}/",
    f"https://{HERE}.{EVIL}/",
    f"https://{HERE}./",
    f"http://{HERE}:8443/",
    f"https://{HERE}/",
    f"http://{HERE}/",
    "//evil%E3%80%82example",
    f"/\u3002{EVIL}",
    f"\uff0f\uff0f{EVIL}",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "\njavascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    f"/%2F%2F{EVIL}",
    f"/%2f%2f{EVIL}",
    f"/%5C{EVIL}",
    f"/%5c/{EVIL}",
    "/%0d%0aSet-Cookie:x=y",
    "/\r\nSet-Cookie: x=y",
    f"/\nLocation: //{EVIL}",
    "/%00",
    f"{EVIL}",
    f"{EVIL}/path",
    "." + "/" + EVIL,
    "/" + "a" * 100_000,
    "",
]

#: Same-origin paths that must survive byte for byte (catalogue §4 "allow").
SAME_SITE = [
    "/",
    "/page",
    "/page?x=1#f",
    "/view/?param=//example.com",
    "/view/?param=https://example.com",
    "/url%20with%20spaces/",
    "/private?tab=rights&lang=de",
    "/@" + EVIL,
    "/a:b/c;d",
]


@pytest.mark.parametrize("nxt", OFF_SITE, ids=lambda v: ascii(v)[:40])
def test_off_site_next_falls_back_to_the_start_page(client, wiki, nxt):
    """OR-1/OR-4/OR-5/OR-6: the login still works and ends on the start page."""
    response = log_in(client, wiki, "Alice", next=nxt)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert "x=y" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("nxt", SAME_SITE)
def test_same_origin_next_is_kept_exactly(client, wiki, nxt):
    """OR-1/OR-5: a path on this site comes back byte for byte, never decoded."""
    response = log_in(client, wiki, "Alice", next=nxt)
    assert response.status_code == 303
    assert response.headers["Location"] == nxt
    assert same_origin(f"{ORIGIN}/", response.headers["Location"])


@pytest.mark.parametrize("nxt", OFF_SITE + SAME_SITE, ids=lambda v: ascii(v)[:40])
def test_the_browser_model_agrees(nxt):
    """The vectors really are what they claim: our browser model sends every off-site vector
    that a browser would follow elsewhere, and every same-site one home."""
    expected_home = nxt in SAME_SITE or not nxt
    target_home = same_origin(f"{ORIGIN}/", nxt)
    if expected_home:
        assert target_home
    elif target_home:
        # Harmless forms (a relative path like "evil.example", "https:evil.example" on an http
        # page...) that we refuse anyway because they are not absolute paths.
        assert safe_next(nxt) == "/"


def test_next_is_not_sent_to_the_wiki(client):
    """OR-2: ``next`` stays in the sealed pending login, out of the wiki's logs."""
    authorize = begin(client, "/private?secret-ish=1")
    assert "private" not in authorize
    assert "next" not in query_of(authorize)


def test_next_in_the_callback_query_is_ignored(client, wiki):
    """OR-2: the callback redirects to the ``next`` recorded at login, nothing else."""
    callback = approve(wiki, begin(client, "/recorded"), "Alice")
    response = deliver(client, callback + f"&next=//{EVIL}")
    assert response.headers["Location"] == "/recorded"


def test_referer_is_not_a_return_target(client, wiki):
    """OR-3: a login started from another site's link does not go back there."""
    authorize = begin(client, None, Referer=f"https://{EVIL}/phish")
    response = deliver(client, approve(wiki, authorize, "Alice"))
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("nxt", [f"//{EVIL}", f"/\\{EVIL}", "javascript:alert(1)", "/ok"])
def test_logout_next_goes_through_the_same_check(client, wiki, nxt):
    """OR-3: the logout form's ``next`` is validated like the login's."""
    log_in(client, wiki, "Alice")
    response = client.post("/auth/logout", data={"csrf_token": csrf_token(client), "next": nxt})
    assert response.status_code == 303
    assert response.headers["Location"] == (nxt if nxt == "/ok" else "/")


def test_oversized_next_is_not_stored(app, client):
    """OR-6: a huge ``next`` is dropped before it reaches the pending-login cookie."""
    begin(client, "/" + "a" * 100_000)
    (entry,) = pending_of(app, client)
    assert entry.next == "/"
    cookie = client.get_cookie("wikimedia_login", path="/auth")
    assert cookie is not None and len(cookie.value) < 1024


# --------------------------------------------------------------------------- properties

_PIECES = st.sampled_from(
    [
        "/",
        "//",
        "\\",
        "/\\",
        "\t",
        "\n",
        "\r",
        "\x00",
        " ",
        "@",
        ":",
        "%2f",
        "%5c",
        "%09",
        "http:",
        "https:",
        "javascript:",
        "evil.example",
        "localhost",
        ".",
        "?",
        "#",
        "\u3002",
        "\uff0f",
        "%E3%80%82",
        "data:",
        "user@",
        ":8443",
    ]
)
_NEXT = st.one_of(
    st.lists(_PIECES, max_size=8).map("".join),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
    st.builds(lambda a, b: a + b, st.sampled_from(["/", "//", "/\\", "\\"]), st.text(max_size=30)),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nxt=_NEXT)
def test_no_next_value_leads_off_site_or_to_an_error(app, nxt):
    """OR-1 property: whatever ``next`` is, /auth/login answers 302 and the recorded target,
    resolved the way a browser would, is on this site."""
    client = app.test_client()
    response = client.get(f"/auth/login?next={quote(nxt, safe='')}")
    assert response.status_code == 302
    (entry,) = pending_of(app, client)
    assert entry.next in (nxt, "/")  # kept as it is, or replaced by the default
    assert same_origin(f"{ORIGIN}/somewhere/deep", entry.next)
    assert same_origin("https://tool.toolforge.org/x", entry.next)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nxt=_NEXT)
def test_safe_next_never_returns_an_off_site_target(nxt):
    """OR-1 property on the validator itself, on an https origin with a port."""
    result = safe_next(nxt, "/home")
    assert result in (nxt, "/home")
    assert same_origin("https://tool.toolforge.org:8443/a/b", result)
