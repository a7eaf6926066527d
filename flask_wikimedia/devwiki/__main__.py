"""``python -m flask_wikimedia.devwiki --port 8765 [--flavor 1.39]``: serve the development wiki."""

from __future__ import annotations

import argparse
import threading

from .models import DEV_CLIENT_ID
from .wiki import FLAVORS, DevWiki


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
    print("Development wiki — this is not a real login.")
    print(f"  WIKIMEDIA_WIKI_URL = {base_url}")
    print(f"  client id          = {DEV_CLIENT_ID} (public client: PKCE, no secret;")
    print("                       any http(s) redirect URI on 127.0.0.1, localhost or [::1])")
    print(f"  test users         = {', '.join(wiki.users)}")
    print(f"  flavor             = {wiki.flavor}")
    print("Press Ctrl+C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        wiki.stop()


if __name__ == "__main__":
    main()
