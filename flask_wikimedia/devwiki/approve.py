"""Play the browser through the development wiki's consent page (for tests and benchmarks)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from .records import DevWikiError

AUTHORIZE_PATH = "/w/rest.php/oauth2/authorize"
OAUTH1_PATH = "/w/index.php"
OAUTH1_TITLES = (["Special:OAuth/authorize"], ["Special:OAuth/authenticate"])
FORM_ID = "mw-mwoauth-authorize-form"
MAX_HOPS = 10
TIMEOUT = 30.0


class _ConsentForm(HTMLParser):
    """Collects the action and hidden fields of the consent form."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False
        self.action = ""
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form" and attributes.get("id") == FORM_ID:
            self.found = True
            self._inside = True
            self.action = attributes.get("action", "")
        elif tag == "input" and self._inside and attributes.get("type") == "hidden":
            self.fields[attributes.get("name", "")] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _is_internal(url: str, origin: tuple[str, str], prefix: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme, parts.netloc) == origin and parts.path.startswith(prefix + "/w/")


def approve(authorize_url: str, username: str, allow: bool) -> str:
    """Follow ``authorize_url`` through the consent page; return the Location sent to the client."""
    start = urlsplit(authorize_url)
    if start.path.endswith(AUTHORIZE_PATH):
        prefix = start.path[: -len(AUTHORIZE_PATH)]
    elif start.path.endswith(OAUTH1_PATH) and parse_qs(start.query).get("title") in OAUTH1_TITLES:
        prefix = start.path[: -len(OAUTH1_PATH)]  # OAuth 1.0a's Special:OAuth/authorize
    else:
        raise ValueError(f"not a development wiki authorize URL: {authorize_url!r}")
    origin = (start.scheme, start.netloc)
    with requests.Session() as http:
        response = http.get(authorize_url, allow_redirects=False, timeout=TIMEOUT)
        for _ in range(MAX_HOPS):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if not _is_internal(location, origin, prefix):
                    return location
                response = http.get(location, allow_redirects=False, timeout=TIMEOUT)
                continue
            form = _ConsentForm()
            form.feed(response.text)
            if response.status_code != 200 or not form.found:
                raise DevWikiError(response.status_code, response.text)
            data = dict(form.fields)
            data["user"] = username
            if allow:
                data["accept"] = "Allow"
            else:
                data["cancel"] = "Cancel"
            response = http.post(
                urljoin(response.url, form.action or response.url),
                data=data,
                allow_redirects=False,
                timeout=TIMEOUT,
            )
        raise DevWikiError(response.status_code, "too many redirects on the development wiki")
