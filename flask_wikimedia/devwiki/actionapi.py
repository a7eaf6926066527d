"""A small ``api.php`` (Action API) and ``rest.php/v1/page`` over the in-memory pages.

Enough for API sessions, the sample tool's demo and the start-up questions of mwclient and
pywikibot: ``meta=userinfo|tokens|siteinfo``, ``list=usercontribs``, ``prop=revisions|info``,
``action=edit``, ``assert``, ``maxlag``. Answers are ``format=json&formatversion=2`` style
whatever is asked, except ``siprop=namespaces|namespacealiases``, which follow the
``formatversion`` asked for (mwclient reads the version 1 names). A bad, expired or revoked Bearer
token gets MediaWiki's ``mwoauth-invalid-authorization`` error with HTTP 200 in both flavors
(Wikimedia's edge may answer 401 for expired tokens instead; the resources do that here).

Why one module of this size: it is one fake (``api.php``), and each module and parameter it
answers is a few lines that share the same error and token handling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request, url_for
from werkzeug.datastructures import MultiDict

from . import oauth1
from .common import count, fault_response, get_wiki, html_page, json_response, rest_error
from .models import ANONYMOUS_RIGHTS, DevUser
from .records import AccessToken
from .resource import bad_token_response, bearer_token
from .siteinfo import KNOWN_PROPS, siteinfo

if TYPE_CHECKING:
    from .wiki import DevWiki

bp = Blueprint("api", __name__)

DEFAULT_TIMESTAMP = "2020-01-01T00:00:00Z"


class ApiError(Exception):
    def __init__(
        self, code: str, info: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(info)
        self.code = code
        self.info = info
        self.headers = headers or {}
        self.extra = extra


def api_error_response(error: ApiError) -> Response:
    body: dict[str, Any] = {"code": error.code, "info": error.info, **error.extra}
    body["docref"] = (
        f"See {request.host_url.rstrip('/')}{url_for('api.api_php')} for API usage. "
        "This is a development wiki, not a real one."
    )
    headers = {"MediaWiki-API-Error": error.code, **error.headers}
    return json_response(
        {"error": body, "servedby": "devwiki"},
        content_type="application/json; charset=utf-8",
        headers=headers,
    )


class Caller:
    """Who is calling api.php: the token's user (or anonymous) and the effective rights."""

    def __init__(self, wiki: DevWiki, access: AccessToken | None) -> None:
        self.access = access
        self.user: DevUser | None = None
        if access is not None and access.user is not None:
            self.user = wiki.users.get(access.user)
        if access is None:
            self.rights = list(ANONYMOUS_RIGHTS)
        else:
            self.rights = wiki.user_rights(self.user, access.scopes)


def _multi(params: MultiDict[str, str], name: str, default: str = "") -> list[str]:
    value = params.get(name, default)
    return [v for v in value.split("|") if v]


@bp.route("/w/api.php", methods=["GET", "POST"])
def api_php() -> Response:
    wiki = get_wiki()
    count("api")
    fault = fault_response("api")
    if fault is not None:
        return fault
    params: MultiDict[str, str] = MultiDict(request.args)
    params.update(request.form)
    access: AccessToken | None = None
    token = bearer_token()
    header = request.headers.get("Authorization", "")
    if token is not None and header.startswith("Bearer "):
        access, _reason = wiki.lookup_access_token(token)
        if access is None:
            return api_error_response(
                ApiError(
                    "mwoauth-invalid-authorization",
                    "The authorization headers in your request are not valid: Invalid access token",
                )
            )
    elif header.startswith("OAuth "):  # OAuth 1.0a: HMAC-SHA1 signed, checked for real
        try:
            access = oauth1.signed_access(wiki)
        except oauth1.SignatureProblem as problem:
            return api_error_response(
                ApiError(
                    "mwoauth-invalid-authorization",
                    f"The authorization headers in your request are not valid: {problem}",
                )
            )
    action = params.get("action")
    if action is None:
        return html_page("api_help.html", api_url=url_for("api.api_php"))
    try:
        with wiki.lock:
            caller = Caller(wiki, access)
            return _dispatch(wiki, caller, action, params)
    except ApiError as error:
        return api_error_response(error)


def _dispatch(wiki: DevWiki, caller: Caller, action: str, params: MultiDict[str, str]) -> Response:
    if action not in ("query", "edit"):
        raise ApiError("badvalue", f'Unrecognized value for parameter "action": {action}.')
    maxlag = params.get("maxlag")
    if maxlag is not None:
        try:
            limit = float(maxlag)
        except ValueError:
            raise ApiError(
                "badinteger", f'Invalid value "{maxlag}" for integer parameter "maxlag".'
            ) from None
        if wiki.lag > limit:
            lag = round(wiki.lag, 3)
            raise ApiError(
                "maxlag",
                f"Waiting for devwiki: {lag} seconds lagged.",
                headers={"Retry-After": wiki.retry_after, "X-Database-Lag": str(int(wiki.lag))},
                host="devwiki",
                lag=lag,
                type="db",
            )
    if "read" not in caller.rights:
        raise ApiError("readapidenied", "You need read permission to use this module.")
    if action == "edit" and request.method != "POST":
        raise ApiError("mustbeposted", "The edit module requires a POST request.")
    _check_asserts(caller, params)
    if action == "edit":
        return _edit(wiki, caller, params)
    return _query(wiki, caller, params)


def _check_asserts(caller: Caller, params: MultiDict[str, str]) -> None:
    check = params.get("assert")
    if check is not None:
        if check == "user" and caller.user is None:
            raise ApiError(
                "assertuserfailed",
                "You are no longer logged in, so the action could not be completed.",
            )
        if check == "bot" and "bot" not in caller.rights:
            raise ApiError(
                "assertbotfailed",
                'You do not have the "bot" right, so the action could not be completed.',
            )
        if check == "anon" and caller.user is not None:
            raise ApiError(
                "assertanonfailed",
                "You are no longer logged out, so the action could not be completed.",
            )
        if check not in ("user", "bot", "anon"):
            raise ApiError("badvalue", f'Unrecognized value for parameter "assert": {check}.')
    named = params.get("assertuser")
    if named is not None and (caller.user is None or caller.user.name != named):
        raise ApiError(
            "assertnameduserfailed",
            f'You are no longer logged in as "{named}", so the action could not be completed.',
        )


# ---------------------------------------------------------------------------- action=query


def _query(wiki: DevWiki, caller: Caller, params: MultiDict[str, str]) -> Response:
    query: dict[str, Any] = {}
    warnings: dict[str, Any] = {}
    for meta in _multi(params, "meta"):
        if meta == "userinfo":
            query["userinfo"] = _userinfo(wiki, caller, _multi(params, "uiprop"))
        elif meta == "tokens":
            query["tokens"] = _tokens(wiki, caller, _multi(params, "type", "csrf"))
        elif meta == "siteinfo":
            info, unknown = siteinfo(
                _multi(params, "siprop", "general"),
                _siteinfo(wiki),
                v2=params.get("formatversion") in ("2", "latest"),
                edits=len(wiki.edits),
                users=len(wiki.users),
                pages=len(wiki.pages),
            )
            query.update(info)
            if unknown:
                # MediaWiki warns about an unknown siprop value and answers the rest.
                names = ", ".join(unknown)
                warnings["siteinfo"] = {
                    "warnings": f'Unrecognized values for parameter "siprop": {names}.'
                    f" Known: {'|'.join(KNOWN_PROPS)}."
                }
        else:
            raise ApiError("badvalue", f'Unrecognized value for parameter "meta": {meta}.')
    for listname in _multi(params, "list"):
        if listname == "usercontribs":
            query["usercontribs"] = _usercontribs(wiki, params)
        else:
            raise ApiError("badvalue", f'Unrecognized value for parameter "list": {listname}.')
    titles = _multi(params, "titles")
    props = _multi(params, "prop")
    if titles:
        query.update(_pages(wiki, titles, props, params))
    for prop in props:
        if prop not in ("revisions", "info"):
            raise ApiError("badvalue", f'Unrecognized value for parameter "prop": {prop}.')
    body: dict[str, Any] = {"batchcomplete": True}
    if warnings:
        body["warnings"] = warnings
    if query:
        body["query"] = query
    return json_response(body, content_type="application/json; charset=utf-8")


def _userinfo(wiki: DevWiki, caller: Caller, props: list[str]) -> dict[str, Any]:
    user = caller.user
    if user is None:
        info: dict[str, Any] = {"id": 0, "name": request.remote_addr or "127.0.0.1", "anon": True}
        groups = ["*"]
    else:
        info = {"id": user.id, "name": user.name}
        groups = list(user.groups)
    if "groups" in props:
        info["groups"] = groups
    if "rights" in props:
        info["rights"] = list(caller.rights)
    if "implicitgroups" in props:
        info["implicitgroups"] = [g for g in groups if g in ("*", "user", "autoconfirmed")]
    if "groupmemberships" in props and user is not None:
        info["groupmemberships"] = [
            {"group": g, "expiry": "infinity"}
            for g in groups
            if g not in ("*", "user", "autoconfirmed")
        ]
    if "hasmsg" in props:
        info["messages"] = False
    if "options" in props:
        info["options"] = {"language": "en", "skin": "vector-2022"}
    if "ratelimits" in props:
        info["ratelimits"] = {}
    if "editcount" in props and user is not None:
        info["editcount"] = user.editcount
    if "realname" in props and user is not None:
        info["realname"] = user.realname
    if "email" in props and user is not None:
        info["email"] = user.email
        if user.confirmed_email:
            info["emailauthenticated"] = DEFAULT_TIMESTAMP
    if "registrationdate" in props and user is not None and user.registered:
        r = user.registered
        info["registrationdate"] = f"{r[0:4]}-{r[4:6]}-{r[6:8]}T{r[8:10]}:{r[10:12]}:{r[12:14]}Z"
    if "blockinfo" in props and user is not None and user.blocked:
        sysop = wiki.users.get("Sysop")
        info.update(
            blockid=1,
            blockedby="Sysop",
            blockedbyid=sysop.id if sysop is not None else 0,
            blockreason="Blocked on the development wiki",
            blockedtimestamp=DEFAULT_TIMESTAMP,
            blockexpiry="infinite",
            blockpartial=False,
            blocknocreate=True,
            blockanononly=False,
            blockowntalk=False,
        )
    return info


def _tokens(wiki: DevWiki, caller: Caller, types: list[str]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for kind in types:
        if kind in ("login", "createaccount"):
            tokens[f"{kind}token"] = wiki.csrf_for(None)
        elif kind in ("csrf", "watch", "patrol", "rollback", "userrights", "deleteglobalaccount"):
            tokens[f"{kind}token"] = wiki.csrf_for(caller.access)
        else:
            raise ApiError("badvalue", f'Unrecognized value for parameter "type": {kind}.')
    return tokens


def _siteinfo(wiki: DevWiki) -> dict[str, Any]:
    generator = "MediaWiki 1.39.17" if wiki.flavor == "1.39" else "MediaWiki 1.46.0-wmf.1"
    script = request.script_root + "/w"
    return {
        "mainpage": "Main Page",
        "sitename": "Development wiki",
        "generator": generator,
        "server": request.host_url.rstrip("/"),
        "scriptpath": script,
        "articlepath": script + "/index.php?title=$1",
        "wikiid": "devwiki",
        "lang": "en",
    }


def _usercontribs(wiki: DevWiki, params: MultiDict[str, str]) -> list[dict[str, Any]]:
    names = _multi(params, "ucuser")
    if not names:
        raise ApiError(
            "missingparam", "One of the parameters ucuser, ucuserids, uciprange is required."
        )
    names = [wiki.normalize_title(n) for n in names]
    limit_raw = params.get("uclimit", "10")
    limit = 500 if limit_raw == "max" else max(1, min(500, int(limit_raw or 10)))
    parents: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    for index, edit in enumerate(list(wiki.edits)):
        title = str(edit.get("title", ""))
        revid = index + 1
        parent = parents.get(title, 0)
        parents[title] = revid
        username = str(edit.get("user", ""))
        if username not in names:
            continue
        user = wiki.users.get(username)
        timestamp = wiki.edit_times[index] if index < len(wiki.edit_times) else DEFAULT_TIMESTAMP
        entries.append(
            {
                "userid": user.id if user is not None else 0,
                "user": username,
                "pageid": wiki.page_id(title),
                "revid": revid,
                "parentid": parent,
                "ns": 0,
                "title": title,
                "timestamp": timestamp,
                "comment": str(edit.get("summary", "")),
                "size": len(str(edit.get("text", "")).encode()),
            }
        )
    entries.reverse()
    return entries[:limit]


def _pages(
    wiki: DevWiki, titles: list[str], props: list[str], params: MultiDict[str, str]
) -> dict[str, Any]:
    pages: list[dict[str, Any]] = []
    normalized: list[dict[str, Any]] = []
    rvprop = _multi(params, "rvprop", "ids|timestamp|flags|comment|user")
    for title in titles:
        key = wiki.find_page(title)
        norm = key or wiki.normalize_title(title)
        if norm != title:
            normalized.append({"fromencoded": False, "from": title, "to": norm})
        if key is None:
            pages.append({"ns": 0, "title": norm, "missing": True})
            continue
        text = wiki.pages[key]
        page: dict[str, Any] = {"pageid": wiki.page_id(key), "ns": 0, "title": key}
        revid = wiki.page_revs.get(key, 0)
        if "info" in props:
            page.update(contentmodel="wikitext", lastrevid=revid, length=len(text.encode()))
        if "revisions" in props:
            revision: dict[str, Any] = {}
            if "ids" in rvprop:
                revision.update(revid=revid, parentid=0)
            if "timestamp" in rvprop:
                revision["timestamp"] = DEFAULT_TIMESTAMP
            if "content" in rvprop:
                content = {"contentmodel": "wikitext", "contentformat": "text/x-wiki"}
                if "rvslots" in params:
                    revision["slots"] = {"main": {**content, "content": text}}
                else:
                    revision.update(content, content=text)
            page["revisions"] = [revision]
        pages.append(page)
    result: dict[str, Any] = {"pages": pages}
    if normalized:
        result["normalized"] = normalized
    return result


# ---------------------------------------------------------------------------- action=edit


def _edit(wiki: DevWiki, caller: Caller, params: MultiDict[str, str]) -> Response:
    title = params.get("title")
    if not title:
        raise ApiError("missingparam", "The title parameter must be set.")
    token = params.get("token")
    if token is None:
        raise ApiError("missingparam", "The token parameter must be set.")
    if token != wiki.csrf_for(caller.access):
        raise ApiError("badtoken", "Invalid CSRF token.")
    text = params.get("text")
    appendtext = params.get("appendtext")
    prependtext = params.get("prependtext")
    if text is None and appendtext is None and prependtext is None:
        raise ApiError(
            "missingparam", "One of the parameters text, appendtext and prependtext is required."
        )
    user = caller.user
    if user is None or "edit" not in caller.rights:
        raise ApiError(
            "permissiondenied",
            "You don't have permission to edit pages (the token's grants or the account "
            "lack the edit right).",
        )
    if user.blocked:
        raise ApiError("blocked", "You have been blocked from editing.")
    existing = wiki.find_page(title)
    key = existing or wiki.normalize_title(title)
    if existing is not None and "createonly" in params:
        raise ApiError("articleexists", "The article you tried to create has been created already.")
    if existing is None and "nocreate" in params:
        raise ApiError("missingtitle", "The page you specified doesn't exist.")
    old_text = wiki.pages[existing] if existing is not None else ""
    if text is None:
        text = (prependtext or "") + old_text + (appendtext or "")
    result: dict[str, Any] = {"result": "Success", "pageid": wiki.page_id(key), "title": key}
    result["contentmodel"] = "wikitext"
    if existing is not None and text == old_text:
        result["nochange"] = True
        return json_response({"edit": result}, content_type="application/json; charset=utf-8")
    old_revid, new_revid = wiki.save_page(key, text, user.name, params.get("summary", ""))
    if existing is None:
        result["new"] = True
    result.update(
        oldrevid=old_revid,
        newrevid=new_revid,
        newtimestamp=wiki.edit_times[-1] if wiki.edit_times else DEFAULT_TIMESTAMP,
        watched=False,
    )
    return json_response({"edit": result}, content_type="application/json; charset=utf-8")


# ---------------------------------------------------------------------------- rest.php/v1/page


def _page_object(wiki: DevWiki, key: str, *, with_source: bool) -> dict[str, Any]:
    revid = wiki.page_revs.get(key, 0)
    index = revid - 1
    timestamp = wiki.edit_times[index] if 0 <= index < len(wiki.edit_times) else DEFAULT_TIMESTAMP
    page: dict[str, Any] = {
        "id": wiki.page_id(key),
        "key": key.replace(" ", "_"),
        "title": key,
        "latest": {"id": revid, "timestamp": timestamp},
        "content_model": "wikitext",
        "license": {
            "url": "https://creativecommons.org/licenses/by-sa/4.0/",
            "title": "Creative Commons Attribution-Share Alike",
        },
    }
    if with_source:
        page["source"] = wiki.pages[key]
    else:
        page["html_url"] = request.host_url.rstrip("/") + url_for(
            "site.index_php", title=key.replace(" ", "_")
        )
    return page


@bp.route("/w/rest.php/v1/page/<path:title>", methods=["GET", "PUT"])
def rest_page(title: str) -> Response:
    wiki = get_wiki()
    count("rest")
    fault = fault_response("rest")
    if fault is not None:
        return fault
    bare = title.endswith("/bare")
    if bare:
        title = title[: -len("/bare")]
    access: AccessToken | None = None
    token = bearer_token()
    if token is not None and request.headers.get("Authorization", "").startswith("Bearer "):
        access, reason = wiki.lookup_access_token(token)
        if access is None:
            if wiki.flavor == "wikimedia":
                return bad_token_response(wiki, reason)
            # The real 1.39 sends no messageTranslations here (conformance suite).
            return json_response(
                {"error": "rest-read-denied", "httpCode": 403, "httpReason": "Forbidden"}, 403
            )
    with wiki.lock:
        caller = Caller(wiki, access)
        if request.method == "PUT":
            return _rest_edit(wiki, caller, title)
        key = wiki.find_page(title)
        if key is None:
            return rest_error(
                404,
                f"The specified page ({wiki.normalize_title(title)}) does not exist",
                error_key="rest-nonexistent-title",
            )
        return json_response(_page_object(wiki, key, with_source=not bare))


def _rest_edit(wiki: DevWiki, caller: Caller, title: str) -> Response:
    if not request.is_json:
        return rest_error(
            415, "Unsupported Content-Type", error_key="rest-unsupported-content-type"
        )
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("source"), str):
        return rest_error(
            400, 'Parameter "source" is required.', error_key="paramvalidator-missingparam"
        )
    user = caller.user
    if user is None or "edit" not in caller.rights:
        return rest_error(
            403, "You do not have permission to edit this page.", error_key="rest-permission-error"
        )
    if user.blocked:
        return rest_error(403, "You have been blocked from editing.", error_key="rest-blocked")
    existing = wiki.find_page(title)
    key = existing or wiki.normalize_title(title)
    latest = body.get("latest")
    if existing is not None:
        base = latest.get("id") if isinstance(latest, dict) else None
        if base is None:
            return rest_error(
                400,
                "The page already exists; send latest.id to edit it.",
                error_key="rest-missing-latest",
            )
        if base != wiki.page_revs.get(key, 0):
            return rest_error(409, "Edit conflict.", error_key="rest-edit-conflict")
    comment = body.get("comment")
    wiki.save_page(key, body["source"], user.name, comment if isinstance(comment, str) else "")
    status = 200 if existing is not None else 201
    return json_response(_page_object(wiki, key, with_source=True), status)
