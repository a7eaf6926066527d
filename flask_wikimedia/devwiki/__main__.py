"""``python -m flask_wikimedia.devwiki --port 8765 [--flavor 1.39]``: serve the development wiki."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from .models import DEV_CLIENT_ID, DEV_OAUTH1_KEY, DEV_OAUTH1_SECRET
from .wiki import FLAVORS, DevWiki

log = logging.getLogger("flask_wikimedia.devwiki")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m flask_wikimedia.devwiki",
        description="Serve the development wiki (a local fake of MediaWiki's OAuth 2.0 server). "
        "It is not a real login.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument("--flavor", choices=FLAVORS, default="wikimedia")
    args = parser.parse_args(argv)

    wiki = DevWiki(flavor=args.flavor)
    base_url = wiki.start(args.host, args.port, quiet=False)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    log.info(
        "Development wiki — this is not a real login.\n"
        "  WIKIMEDIA_WIKI_URL = %s\n"
        "  client id          = %s (public client: PKCE, no secret;\n"
        "                       any http(s) redirect URI on 127.0.0.1, localhost or [::1])\n"
        "  OAuth 1.0a         = key %s, secret %s (callback is prefix, any loopback URL)\n"
        "  test users         = %s\n"
        "  flavor             = %s\n"
        "Press Ctrl+C to stop.",
        base_url,
        DEV_CLIENT_ID,
        DEV_OAUTH1_KEY,
        DEV_OAUTH1_SECRET,
        ", ".join(wiki.users),
        wiki.flavor,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        wiki.stop()


if __name__ == "__main__":
    main()
