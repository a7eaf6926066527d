"""The two servers the conformance scenarios run against, behind one small interface.

``DevServer`` is the development wiki in its MediaWiki 1.39 flavour; ``RealServer`` is the real
MediaWiki 1.39 + Extension:OAuth that ``scripts/real-mediawiki`` runs. A scenario only uses what
both offer, so the same assertions hold for both; where a control differs (the dev wiki moves
its clock, the real one is waited for), the difference is here and nowhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
import requests
from apps import says
from flask import Flask, jsonify
from flask_session import Session
from realwiki import ErrorPage, RealWiki

from flask_wikimedia import Wikimedia, current_user, login_required, requires_right
from flask_wikimedia.devwiki import DevClient, DevUser, DevWiki, DevWikiError

CALLBACK = "http://localhost/auth/callback"
GRANTS = ["basic", "editpage", "highvolume"]
USER_AGENT = "FlaskWikimediaConformance/1.0 (https://example.org/tests; tests@example.org)"
TIMEOUT = 30.0


#: The OAuth 1.0a consumer's registered callback: a prefix ("callback is prefix") of CALLBACK.
OAUTH1_CALLBACK_PREFIX = "http://localhost/"


@dataclass(frozen=True)
class Client:
    """An OAuth client registered on a server (for OAuth 1.0a: the consumer key and secret)."""

    client_id: str
    secret: str
    name: str
    confidential: bool


class Server:
    """What a scenario may do with a server (see the subclasses)."""

    name: str
    base_url: str
    confidential: Client
    public: Client
    oauth1: Client

    @property
    def token_url(self) -> str:
        return self.base_url + "/rest.php/oauth2/access_token"

    @property
    def profile_url(self) -> str:
        return self.base_url + "/rest.php/oauth2/resource/profile"

    def approve(self, authorize_url: str, username: str, allow: bool = True) -> str:
        """Play the browser as ``username`` through the consent page; the Location that goes
        back to the client. Raises :class:`ErrorPage` when the wiki shows an error instead."""
        raise NotImplementedError

    def consent_shown(self, authorize_url: str, username: str) -> bool:
        raise NotImplementedError

    def block(self, username: str, *, unblock: bool = False) -> None:
        raise NotImplementedError

    def revoke(self, username: str, client: Client) -> None:
        raise NotImplementedError

    def set_ttl(self, which: str, seconds: int | None) -> None:
        raise NotImplementedError

    def let_time_pass(self, seconds: float) -> None:
        raise NotImplementedError

    def user_id(self, username: str) -> int:
        raise NotImplementedError

    def editcount(self, username: str) -> int:
        raise NotImplementedError

    def page_text(self, title: str) -> str:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Undo what a scenario changed (the real wiki lives for the whole session)."""

    def make_app(
        self,
        redis_client: redis.Redis,
        *,
        confidential: bool = True,
        oauth1: bool = False,
        **config: Any,
    ) -> Flask:
        """A Flask app using the extension against this server, as a tool author would: with
        the confidential or the public OAuth 2.0 client, or (``oauth1``) the 1.0a consumer."""
        client = self.oauth1 if oauth1 else self.confidential if confidential else self.public
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SECRET_KEY="conformance-secret-key-that-is-long-enough-0123456789",
            WIKIMEDIA_CLIENT_ID=client.client_id,
            # The extension's public client has no secret at all, whatever the wiki knows.
            WIKIMEDIA_CLIENT_SECRET=client.secret if confidential else None,
            WIKIMEDIA_WIKI_URL=self.base_url,
            WIKIMEDIA_REDIRECT_URI=CALLBACK,
            WIKIMEDIA_USER_AGENT=USER_AGENT,
            WIKIMEDIA_TIMEOUT=(5.0, 20.0),
            SESSION_TYPE="redis",
            SESSION_REDIS=redis_client,
            SESSION_KEY_PREFIX="conformance:session:",
            WIKIMEDIA_KEY_PREFIX="conformance:wikimedia:",
        )
        if oauth1:
            app.config.update(
                WIKIMEDIA_OAUTH_VERSION="1.0a",
                WIKIMEDIA_CLIENT_SECRET=client.secret,
                WIKIMEDIA_OAUTH1_CALLBACK_IS_PREFIX=True,
            )
        app.config.update(config)
        Session(app)
        Wikimedia(app)

        @app.get("/private")
        @login_required
        def private() -> str:
            return f"private page of {current_user.username}"

        @app.get("/me")
        @login_required
        def me() -> Any:
            user = current_user
            return jsonify(
                username=user.username,
                sub=user.sub,
                editcount=user.editcount,
                confirmed_email=user.confirmed_email,
                blocked=user.blocked,
                registered=user.registered.isoformat() if user.registered else None,
                groups=sorted(user.groups),
                rights=sorted(user.rights),
                grants=sorted(user.grants),
                email=user.email,
                realname=user.realname,
            )

        for right in ("block", "edit"):
            app.add_url_rule(f"/{right}", right, requires_right(right)(says(f"can {right}")))

        return app


class DevServer(Server):
    """The development wiki, MediaWiki 1.39 flavour, fresh for each scenario."""

    name = "devwiki"

    def __init__(self) -> None:
        self.wiki = DevWiki(flavor="1.39")
        self.wiki.add_user(DevUser("Bob", editcount=2))
        self.confidential = Client("c0" * 16, "5e" * 20, "Conformance confidential", True)
        # A 1.39 public client has a secret too (it needs it to refresh); the app has none.
        self.public = Client("9b" * 16, "7a" * 20, "Conformance public", False)
        for client in (self.confidential, self.public):
            self.wiki.add_client(
                DevClient(
                    client_id=client.client_id,
                    secret=client.secret,
                    redirect_uri=CALLBACK,
                    grants=GRANTS,
                    name=client.name,
                    confidential=client.confidential,
                )
            )
        self.oauth1 = Client("1a" * 16, "0a" * 20, "Conformance OAuth1", True)
        self.wiki.add_client(
            DevClient(
                client_id=self.oauth1.client_id,
                secret=self.oauth1.secret,
                redirect_uri=OAUTH1_CALLBACK_PREFIX,
                grants=GRANTS,
                name=self.oauth1.name,
                oauth_version="1.0a",
                callback_is_prefix=True,
            )
        )
        self.base_url = self.wiki.start()

    def approve(self, authorize_url: str, username: str, allow: bool = True) -> str:
        try:
            return self.wiki.approve(authorize_url, username=username, allow=allow)
        except DevWikiError as error:
            raise ErrorPage(error.status, error.text) from error

    def consent_shown(self, authorize_url: str, username: str) -> bool:
        response = requests.get(authorize_url, timeout=TIMEOUT)
        return "mw-mwoauth-authorize-form" in response.text

    def block(self, username: str, *, unblock: bool = False) -> None:
        self.wiki.set_user(username, blocked=not unblock)

    def revoke(self, username: str, client: Client) -> None:
        # The dev wiki has no Special:OAuthManageMyGrants; this is its control for the same act.
        self.wiki.revoke_tokens(username)

    def set_ttl(self, which: str, seconds: int | None) -> None:
        if which == "access":
            self.wiki.access_token_ttl = 3600 if seconds is None else seconds
        else:
            self.wiki.refresh_token_ttl = 60 if seconds is None else seconds

    def let_time_pass(self, seconds: float) -> None:
        self.wiki.advance_time(seconds)

    def user_id(self, username: str) -> int:
        return self.wiki.users[username].id

    def editcount(self, username: str) -> int:
        return self.wiki.users[username].editcount

    def page_text(self, title: str) -> str:
        return self.wiki.pages.get(title, "")

    def cleanup(self) -> None:
        self.wiki.stop()


class RealServer(Server):
    """The real MediaWiki 1.39 (one per test session; scenarios undo their changes)."""

    name = "real_wiki"

    def __init__(self, real: RealWiki) -> None:
        self.real = real
        self.base_url = real.base_url
        consumers = real.state["consumers"]
        self.confidential = Client(
            consumers["confidential"]["client_id"],
            consumers["confidential"]["client_secret"],
            "Conformance confidential",
            True,
        )
        self.public = Client(
            consumers["public"]["client_id"],
            consumers["public"]["client_secret"],
            "Conformance public",
            False,
        )
        self.oauth1 = Client(
            consumers["oauth1"]["key"],
            consumers["oauth1"]["secret"],
            consumers["oauth1"]["name"],
            True,
        )
        self._blocked: set[str] = set()
        self._ttl_changed = False

    def approve(self, authorize_url: str, username: str, allow: bool = True) -> str:
        return self.real.approve(authorize_url, username, allow)

    def consent_shown(self, authorize_url: str, username: str) -> bool:
        return self.real.consent_form_shown(authorize_url, username)

    def block(self, username: str, *, unblock: bool = False) -> None:
        self.real.block(username, unblock=unblock)
        if unblock:
            self._blocked.discard(username)
        else:
            self._blocked.add(username)

    def revoke(self, username: str, client: Client) -> None:
        self.real.revoke(username, client.name)

    def set_ttl(self, which: str, seconds: int | None) -> None:
        self._ttl_changed = True
        self.real.set_ttl(which, seconds)

    def let_time_pass(self, seconds: float) -> None:
        time.sleep(seconds)

    def user_id(self, username: str) -> int:
        answer = requests.get(
            self.base_url + "/api.php",
            params={"action": "query", "list": "users", "ususers": username, "format": "json"},
            timeout=TIMEOUT,
        ).json()
        return int(answer["query"]["users"][0]["userid"])

    def editcount(self, username: str) -> int:
        return self.real.editcount(username)

    def page_text(self, title: str) -> str:
        return self.real.page_text(title)

    def cleanup(self) -> None:
        for username in list(self._blocked):
            self.block(username, unblock=True)
        if self._ttl_changed:
            self.real.set_ttl("access", None)
            self.real.set_ttl("refresh", None)
