"""gunicorn settings, read from the working directory (the Build Service's ``Procfile`` and local
runs alike): listen where the platform says, log requests to stdout except health checks, and
never log a query string.

No ``--forwarded-allow-ips``: the app applies ``ProxyFix`` itself, for exactly one proxy.
"""

import logging
import os

from gunicorn import glogging

# The Build Service sets PORT (8000); gunicorn would read it too, but only when --bind is absent.
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
accesslog = "-"

#: Atoms that hold a URL whose query may carry secrets: the callback's ``code`` and ``state``
#: (request line, and the Referer of what an error page on the callback loads), the login
#: redirect's ``state`` and PKCE challenge (Location).
_URL_ATOMS = ("r", "f", "{referer}i", "{location}o", "{raw_uri}e", "{request_uri}e")


def _without_query(value: str) -> str:
    return value.split("?", 1)[0]


class _WithoutHealthChecks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Kubernetes' probes call /healthz every few seconds; they would drown the real requests.
        return "/healthz" not in record.getMessage()


class Logger(glogging.Logger):  # type: ignore[misc]
    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        self.access_log.addFilter(_WithoutHealthChecks())

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        """Every access-log field, with query strings cut off whatever the log format asks for:
        the callback's query is a one-time code and the login's state (docs/security.md)."""
        atoms = super().atoms(resp, req, environ, request_time)
        query = environ.get("QUERY_STRING") or ""
        for key, value in atoms.items():
            if not isinstance(value, str):
                continue
            if key in _URL_ATOMS:
                if key == "r":  # "GET /auth/callback?code=... HTTP/1.1"
                    method, _, rest = value.partition(" ")
                    uri, _, protocol = rest.rpartition(" ")
                    value = f"{method} {_without_query(uri)} {protocol}"
                else:
                    value = _without_query(value)
            elif query and query in value:
                value = value.replace(query, "")
            atoms[key] = value
        atoms["q"] = "-"
        atoms["{query_string}e"] = "-"
        return atoms


logger_class = Logger
