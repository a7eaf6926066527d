"""The wiki's own pages: the index, ``index.php`` (consent page, page views) and REST 404s."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from . import oauth1
from .authorize import consent
from .common import get_wiki, html_page, rest_error
from .models import DEV_CLIENT_ID

bp = Blueprint("site", __name__)


def index_page(status: int = 200, notice: str | None = None) -> Response:
    wiki = get_wiki()
    with wiki.lock:
        users = list(wiki.users.values())
        clients = list(wiki.clients.values())
        pages = sorted(wiki.pages)
    base = request.host_url.rstrip("/") + request.script_root + "/w"
    return html_page(
        "index.html",
        status,
        wiki=wiki,
        users=users,
        clients=clients,
        pages=pages,
        base=base,
        dev_client_id=DEV_CLIENT_ID,
        notice=notice,
    )


@bp.route("/")
@bp.route("/w/")
def index() -> Response:
    return index_page()


@bp.route("/w/index.php", methods=["GET", "POST"])
@bp.route("/w/index.php/<path:title>", methods=["GET", "POST"])
def index_php(title: str | None = None) -> Response:
    wiki = get_wiki()
    title = title or request.values.get("title") or "Main Page"
    if title.replace("_", " ") in ("Special:OAuth/approve", "Special:OAuth/Approve"):
        return consent()
    sub = oauth1.subpage(title)
    if sub is not None:
        return oauth1.special_oauth(sub)
    key = wiki.find_page(title)
    if key is None:
        return index_page(404, notice=f"There is no page called {title!r} on this wiki.")
    with wiki.lock:
        text = wiki.pages[key]
    return html_page("page.html", title=key, text=text, home=url_for("site.index"))


@bp.route("/w/rest.php", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
@bp.route("/w/rest.php/", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
@bp.route("/w/rest.php/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def rest_not_found(rest: str = "") -> Response:
    return rest_error(
        404,
        f"The requested relative path (/{rest}) did not match any known handler",
        error_key="rest-no-match",
    )
