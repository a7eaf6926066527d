"""Pages only some users may see: by right, and by group. Others get a 403 naming what is missing.

Prefer rights to groups: wikis give the same right to different groups, and ``requires_right``
also refuses blocked users (a blocked sysop still has the ``block`` right on paper).
"""

from __future__ import annotations

from flask import Blueprint, render_template

from flask_wikimedia import current_user, requires_group, requires_right

bp = Blueprint("gated", __name__)


@bp.get("/admin-tools")
@requires_right("block")
def admin_tools() -> str:
    return render_template("admin_tools.html", user=current_user)


@bp.get("/sysops")
@requires_group("sysop")
def sysops() -> str:
    return render_template("sysops.html", user=current_user)
