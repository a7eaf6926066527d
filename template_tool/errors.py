"""Error pages in the tool's look: 400, 403, 404, 405, 500, 503, and the extension's errors.

Error pages show who is logged in when that is safe to find out (``wikimedia_account`` gives
nobody when Redis or the wiki is what just failed), in the user's language.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify, render_template
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from flask_wikimedia.errors import (
    StoreUnavailable,
    WikimediaError,
    wants_json,
)

log = logging.getLogger("template_tool")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(redis.RedisError, redis_error)
    # A wiki that does not answer, or answers nonsense, reaches views as the extension's
    # WikiUnavailable (503) or WikiBadResponse (502): WikimediaErrors, handled above.
    app.register_error_handler(InternalServerError, internal_error)


def http_error(error: HTTPException) -> Response:
    if isinstance(error, WikimediaError):
        # The extension's errors render templates/wikimedia/error.html (ours, below) or JSON.
        response = error.get_response()
        assert isinstance(response, Response)
        return response
    code = error.code or 500
    if request_ctx.url_adapter is None:
        # Flask refused the request before routing (an untrusted Host with TRUSTED_HOSTS set):
        # no URLs can be built, so no page template either. A plain answer says enough.
        response = Response(f"{code} {error.name}\n", mimetype="text/plain")
    elif wants_json():
        response = jsonify(error=error.name, status=code, message=error.description)
    else:
        html = render_template("error.html", error=error, error_key=error_key(error))
        response = Response(html, mimetype="text/html")
    response.status_code = code
    for key, value in error.get_headers():  # Allow (405), Retry-After (503), ...
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


#: The status codes that have their own messages (tool-error-<code>-title/-text in i18n/).
OWN_MESSAGES = (400, 403, 404, 405, 503)


def error_key(error: HTTPException) -> str:
    """Which of the tool's error messages fit: ``csrf``, a status code, or ``generic``."""
    if isinstance(error, CSRFError):
        return "csrf"
    return str(error.code) if error.code in OWN_MESSAGES else "generic"


def redis_error(error: redis.RedisError) -> Response:
    """A Redis error that escaped the session and login stores: still a 503, not a traceback."""
    log.warning("Redis error in a view: %r", error)
    return http_error(StoreUnavailable())


def internal_error(error: InternalServerError) -> Response:
    original = error.original_exception
    if isinstance(original, redis.RedisError):
        return redis_error(original)
    if isinstance(original, HTTPException):
        return http_error(original)
    # Flask already logged the traceback; the page says nothing about it.
    return http_error(InternalServerError())
