"""The development wiki's Flask app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import actionapi, authorize, resource, site, token
from .common import html_page, rest_error

if TYPE_CHECKING:
    from .wiki import DevWiki


#: The development wiki's icon: grey, so that its tab never passes for a real wiki's.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
    'rx="7" fill="#72777d"/><path d="M7 10l4 13 5-10 5 10 4-13" fill="none" stroke="#fff" '
    'stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>'
)


def create_app(wiki: DevWiki) -> Flask:
    """Build the WSGI app serving ``wiki`` (routes under ``/w/``; respects ``SCRIPT_NAME``)."""
    app = Flask(__name__, template_folder="templates")
    app.extensions["devwiki"] = wiki
    app.register_blueprint(site.bp)
    app.register_blueprint(authorize.bp)
    app.register_blueprint(token.bp)
    app.register_blueprint(resource.bp)
    app.register_blueprint(actionapi.bp)

    @app.after_request
    def mark_not_real(response: Response) -> Response:
        response.headers["X-Devwiki"] = "not a real login"
        return response

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for it on every page; a grey "dev" square rather than a 404 in the logs.
        return Response(
            FAVICON, mimetype="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
        )

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
