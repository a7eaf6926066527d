"""The one mapping from wiki and transport failures to the HTTP errors users see.

Two layers, one name per failure in each:

=====================  ==========================  =====================================
failure                transport (``outbound``)    what users see (``errors``)
=====================  ==========================  =====================================
no answer in time,     :class:`WikiUnreachable`    :class:`~.errors.WikiUnavailable` 503
refused, 5xx                                       (the login is kept; ``Retry-After``)
an answer we cannot    :class:`WikiGarbage`        :class:`~.errors.WikiBadResponse` 502
use (redirect, too
big, not JSON...)
=====================  ==========================  =====================================

Both transport errors derive from :class:`WikiHTTPError`. Code that talks to a wiki (``oauth``,
``oauth1``, ``outbound``) raises the transport names; code that answers a request (views, login,
refresh, API sessions) turns them into HTTP errors here and nowhere else, with one log line that
carries no request or answer content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import WikiBadResponse, WikimediaError, WikiUnavailable
from .outbound import WikiGarbage, WikiHTTPError, WikiUnreachable

__all__ = [
    "WikiGarbage",
    "WikiHTTPError",
    "WikiUnreachable",
    "http_error",
    "wiki_trouble",
]

log = logging.getLogger("flask_wikimedia")


def http_error(
    exc: WikiHTTPError,
    during: str,
    *,
    description: str | None = None,
    message: str | None = None,
) -> WikimediaError:
    """The HTTP error users see for ``exc``, which happened ``during`` (e.g. "a token
    refresh"), logged once. ``description`` (own English text) or ``message`` (a message key)
    replace the error's default text."""
    cls: type[WikimediaError]
    if isinstance(exc, WikiUnreachable):
        log.warning("wiki unreachable during %s: %s", during, exc)
        cls = WikiUnavailable
    else:
        log.warning("unusable answer from the wiki during %s: %s", during, exc)
        cls = WikiBadResponse
    return cls(description, message=message)


@contextmanager
def wiki_trouble(during: str) -> Iterator[None]:
    """Raise the HTTP error of any transport failure inside the block (see :func:`http_error`)."""
    try:
        yield
    except WikiHTTPError as exc:
        raise http_error(exc, during) from exc
