"""Drive the real MediaWiki that ``scripts/real-mediawiki`` set up: its login, consent,
Special:OAuthManageMyGrants pages over real HTTP, and a few maintenance scripts.

Nothing here is a mock: each helper plays a browser (a ``requests.Session`` that logs in at
Special:UserLogin and posts the wiki's own forms) or runs the wiki's maintenance scripts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "real-mediawiki"
TIMEOUT = 30.0
MAX_HOPS = 12


class RealWikiError(AssertionError):
    """The real wiki answered something a browser would not have expected."""


class ErrorPage(Exception):
    """A server showed an error page where a consent form or a redirect was expected."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:300]}")
        self.status = status
        self.text = text


class _Forms(HTMLParser):
    """The forms of a page: attributes, hidden fields and submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"attrs": a, "hidden": {}, "buttons": []})
            self._inside = True
        elif self._inside and tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.forms[-1]["hidden"][a["name"]] = a.get("value", "")
        elif self._inside and tag in ("button", "input") and a.get("type") == "submit":
            self.forms[-1]["buttons"].append(a.get("name", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _form(html: str, **match: str) -> dict[str, Any] | None:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if all(re.search(v, form["attrs"].get(k, "")) for k, v in match.items()):
            return form
    return None


@dataclass
class RealWiki:
    """The running real wiki, as described by ``state.json``."""

    state: dict[str, Any]

    @property
    def server(self) -> str:
        return str(self.state["server"])

    @property
    def base_url(self) -> str:
        return str(self.state["base_url"])

    @property
    def state_dir(self) -> Path:
        return Path(self.state["state_dir"])

    def password(self, username: str) -> str:
        return str(self.state["users"][username]["password"])

    # -- a browser

    def browser(self, username: str) -> requests.Session:
        """A session logged in as ``username`` at Special:UserLogin."""
        http = requests.Session()
        page = self._get(http, "/w/index.php?title=Special:UserLogin")
        form = _form(page.text, name="userlogin")
        if form is None:
            raise RealWikiError(f"no login form on Special:UserLogin: {page.text[:500]}")
        data = dict(form["hidden"], wpName=username, wpPassword=self.password(username))
        answer = http.post(
            self.base_url + "/index.php?title=Special:UserLogin", data=data, timeout=TIMEOUT
        )
        if f'"wgUserName":"{username}"' not in answer.text:
            raise RealWikiError(f"could not log in as {username} on the real wiki")
        return http

    def _get(self, http: requests.Session, path: str) -> requests.Response:
        response = http.get(self.server + path, timeout=TIMEOUT)
        if response.status_code != 200:
            raise RealWikiError(f"{path} answered {response.status_code}")
        return response

    def approve(self, authorize_url: str, username: str, allow: bool = True) -> str:
        """Log in as ``username``, follow ``authorize_url`` to the consent form and press
        Allow (or Cancel). Returns the Location that leaves the wiki (back to the client)."""
        http = self.browser(username)
        origin = urlsplit(self.server)[:2]
        response = http.get(authorize_url, allow_redirects=False, timeout=TIMEOUT)
        for _ in range(MAX_HOPS):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if urlsplit(location)[:2] != origin:
                    return location
                response = http.get(location, allow_redirects=False, timeout=TIMEOUT)
                continue
            form = _form(response.text, id="mw-mwoauth-authorize-form")
            if response.status_code != 200 or form is None:
                raise ErrorPage(response.status_code, response.text)
            data = dict(form["hidden"])
            if allow:
                data["accept"] = "Allow"
            else:
                data["cancel"] = "Cancel"
            response = http.post(
                urljoin(response.url, form["attrs"].get("action") or response.url),
                data=data,
                allow_redirects=False,
                timeout=TIMEOUT,
            )
        raise RealWikiError("too many hops on the real wiki")

    def consent_form_shown(self, authorize_url: str, username: str) -> bool:
        """Whether following ``authorize_url`` as ``username`` shows the consent form."""
        http = self.browser(username)
        response = http.get(authorize_url, timeout=TIMEOUT)
        return _form(response.text, id="mw-mwoauth-authorize-form") is not None

    def revoke(self, username: str, consumer_name: str) -> None:
        """Revoke the app as ``username`` through Special:OAuthManageMyGrants."""
        http = self.browser(username)
        listing = self._get(http, "/w/index.php?title=Special:OAuthManageMyGrants").text
        # Each connected app is a block with its name and a "revoke/<acceptance id>" link.
        at = listing.find(consumer_name)
        if at < 0:
            raise RealWikiError(f"{consumer_name!r} is not among {username}'s connected apps")
        found = re.search(r"OAuthManageMyGrants/revoke/(\d+)", listing[at:])
        if found is None:
            raise RealWikiError("no revoke link on Special:OAuthManageMyGrants")
        path = f"/w/index.php?title=Special:OAuthManageMyGrants/revoke/{found.group(1)}"
        page = self._get(http, path).text
        form = _form(page, action="OAuthManageMyGrants")
        if form is None or "renounce" not in form["buttons"]:
            raise RealWikiError("no revoke form on Special:OAuthManageMyGrants")
        data = dict(form["hidden"], renounce="1")
        answer = http.post(self.server + path, data=data, timeout=TIMEOUT)
        if answer.status_code != 200 or "revoke" not in answer.text.lower():
            raise RealWikiError(f"revoking answered {answer.status_code}")

    # -- maintenance scripts and settings

    def maintenance(self, script: str, *args: str, stdin: str = "") -> str:
        env = dict(os.environ, MW_INSTALL_PATH=self.state["wiki_dir"])
        result = subprocess.run(
            ["php", f"{self.state['wiki_dir']}/maintenance/{script}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RealWikiError(f"{script}: {result.stdout}{result.stderr}")
        return result.stdout

    def block(self, username: str, *, unblock: bool = False) -> None:
        # No autoblock: every user here comes from 127.0.0.1.
        args = ["--performer=Admin", "--reason=conformance test", "--disable-autoblock"]
        if unblock:
            args.append("--unblock")
        else:
            args.append("--reblock")
        self.maintenance("blockUsers.php", *args, stdin=username + "\n")

    def set_ttl(self, which: str, seconds: int | None) -> None:
        """Set ``access`` or ``refresh`` token lifetime (None: the extension's default).
        LocalSettings.php reads these files at every request."""
        path = self.state_dir / f"{which}_ttl"
        path.write_text("" if seconds is None else f"PT{seconds}S")

    def editcount(self, username: str) -> int:
        answer = requests.get(
            self.base_url + "/api.php",
            params={
                "action": "query",
                "list": "users",
                "ususers": username,
                "usprop": "editcount",
                "format": "json",
            },
            timeout=TIMEOUT,
        ).json()
        return int(answer["query"]["users"][0]["editcount"])

    def page_text(self, title: str) -> str:
        answer = requests.get(
            self.base_url + "/index.php", params={"title": title, "action": "raw"}, timeout=TIMEOUT
        )
        return answer.text


def start_real_wiki() -> RealWiki:
    """Run ``scripts/real-mediawiki start`` (idempotent) and read its state file; a failure
    fails the test session with the script's own message (never a skip)."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "start"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "the real MediaWiki could not be set up (scripts/real-mediawiki start):\n"
            + result.stderr[-4000:],
            pytrace=False,
        )
    state_file = Path(result.stdout.strip().splitlines()[-1])
    return RealWiki(json.loads(state_file.read_text()))


def stop_real_wiki() -> None:
    subprocess.run([sys.executable, str(SCRIPT), "stop"], capture_output=True, check=False)
