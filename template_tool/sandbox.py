"""Acting as the user through the API: recent contributions, and an edit to their sandbox.

``user_session()`` is a ``requests.Session`` that sends the user's token (refreshed as needed) to
the configured wiki's api.php, with ``assert=user`` so nothing is ever done anonymously. The edit
is a POST behind a confirmation form, CSRF-protected, then a redirect with a flash (so a reload
does not edit twice).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from flask_wikimedia import current_user, login_required, requires_grant
from flask_wikimedia.api import ApiError, user_session

from .i18n import text

bp = Blueprint("sandbox", __name__)


class AppendForm(FlaskForm):  # type: ignore[misc]
    # The label is in sandbox.html (translated); this one is only WTForms' default.
    line = StringField(validators=[InputRequired(), Length(max=200)])


def sandbox_title() -> str:
    assert current_user
    return f"User:{current_user.username}/sandbox"


@bp.get("/sandbox")
@login_required
def index() -> str:
    assert current_user
    contributions: list[dict[str, Any]] = []
    problem = None
    try:
        answer = user_session().get_json(
            action="query", list="usercontribs", ucuser=current_user.username, uclimit=10
        )
        contributions = answer.get("query", {}).get("usercontribs", [])
    except ApiError as error:
        problem = text("tool-sandbox-list-failed", error.code, error.info)
    form = AppendForm(line=text("tool-sandbox-default-line", current_app.config["TOOL_TITLE"]))
    return render_template(
        "sandbox.html",
        form=form,
        contributions=contributions,
        problem=problem,
        title=sandbox_title(),
    )


@bp.post("/sandbox")
@requires_grant("editpage")
def append() -> Response:
    form = AppendForm()
    if not form.validate_on_submit():
        flash(text("tool-sandbox-invalid-line"), "error")
        return redirect(url_for("sandbox.index"))
    line = " ".join(str(form.line.data).split())  # one line, whatever was pasted
    try:
        answer = user_session().edit(
            sandbox_title(),
            appendtext=f"\n* {line} ~~~~",
            # Not translated: the summary is read by the wiki's community, not by this user.
            summary=f"Testing {current_app.config['TOOL_NAME']} (Flask-Wikimedia)",
        )
    except ApiError as error:
        flash(text("tool-sandbox-edit-refused", error.code, error.info), "error")
    else:
        if answer.get("edit", {}).get("result") == "Success":
            flash(text("tool-sandbox-edit-done", sandbox_title()), "success")
        else:
            flash(text("tool-sandbox-edit-unconfirmed"), "error")
    return redirect(url_for("sandbox.index"))
