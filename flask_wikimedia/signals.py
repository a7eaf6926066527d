"""Blinker signals. The sender is the app; none of them carries a token.

* ``logged_in(app, user=WikimediaUser)``: a login finished (after the login policies passed).
* ``logged_out(app, user=WikimediaUser | None, reason=str)``: a login ended. ``reason`` is
  ``logout`` when the user logged out (``POST /auth/logout``); otherwise the server ended the
  login during a request: ``refresh_refused`` (the wiki refused the refresh token: revoked or
  expired), ``token_rejected`` (the wiki refused a just-refreshed token), ``policy`` (a login
  policy refused the re-read profile, e.g. the user was blocked), ``hidden`` (the account was
  suppressed), ``expired`` (the token expired and there is no refresh token), ``unreadable``
  (the stored profile could no longer be read).
* ``login_failed(app, reason=str, description=str)``: a login did not finish. Reasons:
  ``declined``, ``state``, ``code``, ``refused``, ``wiki_refused``, ``wiki_unavailable``,
  ``wiki_bad_response``, ``policy``, ``identity`` (an OAuth 1.0a identify JWT that did not
  verify); ``description`` is the text the user was shown.
* ``token_refreshed(app, user=WikimediaUser)``: the access token was refreshed (once per
  refresh, in the request that did it).

Connect with ``signals.logged_in.connect(receiver, app)``; receivers take ``(sender, **kwargs)``
so that new keyword arguments do not break them.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

logged_in = _signals.signal("logged-in")
logged_out = _signals.signal("logged-out")
login_failed = _signals.signal("login-failed")
token_refreshed = _signals.signal("token-refreshed")

__all__ = ["logged_in", "logged_out", "login_failed", "token_refreshed"]
