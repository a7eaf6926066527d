"""The front page, the profile page, and /favicon.ico."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_from_directory
from werkzeug.wrappers import Response

from flask_wikimedia import current_user, login_required

from .jobs import cached_wiki_info

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html", wiki_info=cached_wiki_info())


@bp.get("/profile")
@login_required
def profile() -> str:
    return render_template("profile.html", user=current_user)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says: the SVG icon, not a 404."""
    assert current_app.static_folder is not None
    return send_from_directory(
        current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )
