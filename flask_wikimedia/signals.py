"""Blinker signals. None of them carries a token.

* ``logged_in(app, user=WikimediaUser)``
* ``logged_out(app, user=WikimediaUser | None)``
* ``login_failed(app, reason=str, description=str)``: reasons ``declined``, ``state``,
  ``refused``, ``wiki_refused``, ``wiki_unavailable``, ``wiki_bad_response``, ``policy``
* ``token_refreshed(app, user=WikimediaUser)``
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

logged_in = _signals.signal("logged-in")
logged_out = _signals.signal("logged-out")
login_failed = _signals.signal("login-failed")
token_refreshed = _signals.signal("token-refreshed")
