"""Helpers shared by the development wiki's views: JSON answers, error shapes, injected faults."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, render_template
from werkzeug.http import HTTP_STATUS_CODES

if TYPE_CHECKING:
    from .faults import Fault
    from .wiki import DevWiki

BANNER = "Development wiki — this is not a real login"
OVERSIZED_BYTES = 5 * 1024 * 1024


def get_wiki() -> DevWiki:
    """The :class:`DevWiki` whose app is handling this request."""
    wiki: DevWiki = current_app.extensions["devwiki"]
    return wiki


def count(*keys: str) -> None:
    """Bump request counters in ``wiki.calls``."""
    wiki = get_wiki()
    with wiki.lock:
        for key in keys:
            wiki.calls[key] += 1


def dump_json(obj: Any, *, escape_html: bool = False) -> str:
    """JSON text; ``escape_html`` mimics MediaWiki's FormatJson (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(obj)
    if escape_html:
        text = text.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026")
    return text


def json_response(
    obj: Any,
    status: int = 200,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    escape_html: bool = False,
) -> Response:
    response = Response(dump_json(obj, escape_html=escape_html), status, content_type=content_type)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def rest_error(
    status: int,
    message: str,
    *,
    error_key: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error in the MediaWiki REST framework's shape (404, 405, 415...)."""
    body: dict[str, Any] = {}
    if error_key is not None and get_wiki().flavor == "wikimedia":
        body["errorKey"] = error_key
    body["messageTranslations"] = {"en": message}
    body["httpCode"] = status
    body["httpReason"] = HTTP_STATUS_CODES.get(status, "Error")
    body.update(extra or {})
    return json_response(body, status, headers=headers)


def html_page(template: str, status: int = 200, **context: Any) -> Response:
    """Render one of the development wiki's HTML pages (all carry the banner)."""
    body = render_template(f"devwiki/{template}", banner=BANNER, **context)
    return Response(body, status, content_type="text/html; charset=utf-8")


def fault_response(endpoint: str) -> Response | None:
    """Answer with the next injected fault for ``endpoint``, if any (``hang`` just waits)."""
    fault = get_wiki().take_fault(endpoint)
    if fault is None:
        return None
    return respond_to_fault(fault)


def respond_to_fault(fault: Fault) -> Response | None:
    """The answer for one fault already taken from the queue (None: answer normally)."""
    wiki = get_wiki()
    kind = fault.kind
    if kind == "hang":
        wiki.hang(fault.delay)
        return None
    if kind == "500":
        return html_page(
            "fault.html",
            500,
            heading="Internal error",
            text="[devwiki] Exception caught inside exception handler (injected fault).",
        )
    if kind == "503":
        response = html_page(
            "fault.html",
            503,
            heading="Service Unavailable",
            text=(
                "Our servers are currently under maintenance or experiencing a technical "
                "problem. Please try again in a few minutes (injected fault)."
            ),
        )
        response.headers["Retry-After"] = wiki.retry_after
        return response
    if kind == "429":
        # What Wikimedia's API gateway answers a client over its rate limit.
        response = json_response(
            {"httpCode": 429, "httpReason": "Too Many Requests (injected fault)"}, 429
        )
        response.headers["Retry-After"] = wiki.retry_after
        return response
    if kind == "garbage":
        return Response("<html>oops", 200, content_type="text/html")
    if kind == "badjson":
        return Response('{"access_token": ', 200, content_type="application/json")
    if kind == "oversized":
        filler = "x" * OVERSIZED_BYTES
        return Response('{"access_token": "' + filler + '"}', 200, content_type="application/json")
    if kind == "redirect":
        response = Response("", 302)
        response.headers["Location"] = "http://127.0.0.1:1/elsewhere"
        return response
    if kind == "wrongtypes":
        return json_response(
            {"sub": [], "username": 5, "groups": "sysop", "rights": None, "blocked": "no"}
        )
    if kind == "missingfields":
        return json_response({"sub": "7"})
    raise AssertionError(f"unknown fault {kind!r}")  # pragma: no cover
