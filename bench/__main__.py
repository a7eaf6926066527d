"""``python -m bench`` (full run, a few minutes) or ``python -m bench --smoke`` (under a minute)."""

from __future__ import annotations

from .run import main

raise SystemExit(main())
