"""``/healthz`` for Toolforge's health check, and ``/healthz?deep=1`` for people and monitors.

The plain check is what Kubernetes polls (``health-check-path`` in service.template): no
session, no Redis, no wiki, so a wiki outage never gets the tool restarted. The deep check
says whether Redis and the wiki answer, as ``ok``/``down`` words only: no host names,
versions or error texts. Its result is kept in this process for a few seconds (it is not login
state), so polling it cannot turn into load on Redis or the wiki.
"""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from flask_wikimedia.api import anonymous_session, resolve_wiki
from flask_wikimedia.failures import WikiHTTPError
from flask_wikimedia.sessions import REDIS_TROUBLE

bp = Blueprint("health", __name__)

#: How long a deep check's answer is reused, in seconds.
DEEP_CACHE_SECONDS = 5.0
#: Each probe gets at most this long (connect, read), well inside Kubernetes' probe timeout.
PROBE_TIMEOUT = (1.5, 1.5)

_lock = threading.Lock()
_cached: dict[str, tuple[float, dict[str, str]]] = {}


@bp.get("/healthz")
def healthz() -> Response:
    if request.args.get("deep") not in ("1", "true", "yes"):
        return Response("ok\n", mimetype="text/plain")
    checks = deep_checks()
    healthy = all(value in ("ok", "unused") for value in checks.values())
    response = jsonify(status="ok" if healthy else "degraded", **checks)
    response.status_code = 200 if healthy else 503
    return response


def deep_checks() -> dict[str, str]:
    """``{"redis": "ok"|"down"|"unused", "wiki": "ok"|"down"}``, at most DEEP_CACHE_SECONDS old."""
    key = str(id(current_app._get_current_object()))  # type: ignore[attr-defined]
    with _lock:
        now = time.monotonic()
        cached = _cached.get(key)
        if cached is not None and now - cached[0] < DEEP_CACHE_SECONDS:
            return cached[1]
        result = {"redis": _redis_status(), "wiki": _wiki_status()}
        _cached[key] = (time.monotonic(), result)
        return result


def _redis_status() -> str:
    client = current_app.extensions.get("template_tool.redis")
    if client is None:
        return "unused"  # local development: cookie sessions, no Redis
    try:
        return "ok" if client.ping() else "down"
    except REDIS_TROUBLE:  # one server's errors, or a cluster's own
        return "down"


def _wiki_status() -> str:
    session = anonymous_session(timeout=PROBE_TIMEOUT, max_bytes=64 * 1024)
    try:
        # The cheapest question api.php answers: no login, no database-heavy work.
        answer = session.get(
            f"{resolve_wiki(None)}/api.php",
            params={"action": "query", "meta": "siteinfo", "format": "json"},
        )
    except WikiHTTPError:
        return "down"
    finally:
        session.close()
    return "ok" if answer.status_code == 200 else "down"
