"""gunicorn settings, read from the working directory (the Build Service's ``Procfile`` and local
runs alike): listen where the platform says, log requests to stdout except health checks.

No ``--forwarded-allow-ips``: the app applies ``ProxyFix`` itself, for exactly one proxy.
"""

import logging
import os

from gunicorn import glogging

# The Build Service sets PORT (8000); gunicorn would read it too, but only when --bind is absent.
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
accesslog = "-"


class _WithoutHealthChecks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Kubernetes' probes call /healthz every few seconds; they would drown the real requests.
        return "/healthz" not in record.getMessage()


class Logger(glogging.Logger):  # type: ignore[misc]
    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        self.access_log.addFilter(_WithoutHealthChecks())


logger_class = Logger
