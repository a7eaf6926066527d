"""The Flask-Wikimedia template tool: clone it, rename it, build your own Toolforge tool.

``create_app`` is the whole setup, in the order it matters: settings (env, private YAML, the
Toolforge rules), Redis sessions, CSRF protection, the Wikimedia login, security headers, then
the pages. ``app.py`` next to this package is what Toolforge's uWSGI and gunicorn load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from flask_wikimedia import Wikimedia
from flask_wikimedia.sessions import use_redis_sessions

from . import errors, gated, health, i18n, jobs, main, redis_client, sandbox, security, settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the tool. Raises RuntimeError, saying what to set, if the configuration is unsafe."""
    app = Flask(__name__)
    settings.load(app, test_config)

    if app.config["REDIS_URL"]:
        # Health checks and static files are served even while Redis is down.
        client = redis_client.connect(app.config["REDIS_URL"])  # one server, Sentinel or Cluster
        # For the deep health check and the scheduled job (jobs.py): the same client.
        app.extensions["template_tool.redis"] = client
        use_redis_sessions(
            app,
            client,
            app.config["SESSION_KEY_PREFIX"],
            exempt_endpoints=("static", "health.healthz", "main.favicon"),
        )
    # else: Flask's signed-cookie session and the extension's in-process login store
    # (local development only; settings.load refuses this outside debug/testing).

    CSRFProtect(app)
    Wikimedia(app)
    security.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    jobs.init_app(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(main.bp)
    app.register_blueprint(gated.bp)
    app.register_blueprint(sandbox.bp)
    return app
