"""Browser-facing defenses: proxy headers, and the security headers on every response."""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

#: The tool needs no script and no third-party resource; this policy says so. Adding a script
#: means a static .js file and ``script-src 'self'``, never inline code.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        # data: for the icons inside Codex's stylesheet (message icons are data: SVG URLs in
        # codex.style.css); an image can run no script, and nothing else may use data:.
        "img-src 'self' data:",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


def init_app(app: Flask) -> None:
    hops = int(app.config.get("PROXY_HOPS", 0))
    if hops:
        # Trust X-Forwarded-For/-Proto from exactly this many proxies (Toolforge: its front
        # proxy), and never X-Forwarded-Host: the Host header is not used for anything that
        # matters (the callback URL is configured), so a spoofed one changes nothing.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0
        )
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Referrer-Policy", "same-origin")  # the callback sets no-referrer
    if request.is_secure or current_app.config.get("TOOLFORGE"):
        headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "static":
        # Pages may show who is logged in: no shared or browser cache may keep them.
        # (Deliberately not decided by "was the session used?": reading that marks it used.)
        headers.setdefault("Cache-Control", "no-store")
        response.vary.add("Cookie")
    return response
