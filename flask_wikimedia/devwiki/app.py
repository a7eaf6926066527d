"""The development wiki's Flask app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import actionapi, oauth, site
from .common import html_page, rest_error

if TYPE_CHECKING:
    from .wiki import DevWiki


def create_app(wiki: DevWiki) -> Flask:
    """Build the WSGI app serving ``wiki`` (routes under ``/w/``; respects ``SCRIPT_NAME``)."""
    app = Flask(__name__, template_folder="templates")
    app.extensions["devwiki"] = wiki
    app.register_blueprint(site.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(actionapi.bp)

    @app.after_request
    def mark_not_real(response: Response) -> Response:
        response.headers["X-Devwiki"] = "not a real login"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if "/rest.php" in request.path:
            return rest_error(status, error.description or error.name)
        response = html_page("fault.html", status, heading=error.name, text=error.description or "")
        if status == 405:
            response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or [])
        return response

    return app
