"""The front page and the profile page."""

from __future__ import annotations

from flask import Blueprint, render_template

from flask_wikimedia import current_user, login_required

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html")


@bp.get("/profile")
@login_required
def profile() -> str:
    return render_template("profile.html", user=current_user)
