"""The OAuth 1.0a rows of docs/security.md name tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_o1_row_names_existing_tests():
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("### OAuth 1.0a (O1)")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| O1-")]
    assert len(rows) == 12
    for row in rows:
        current = None
        names = re.findall(r"`([a-z0-9_]+\.py)?::([a-z0-9_]+)`", row)
        assert names, row
        for file, name in names:
            current = file or current
            assert current is not None, row
            source = (ROOT / "tests" / "oauth1" / current).read_text()
            assert f"def {name}(" in source, f"{current}::{name} named in {row[:8]}"
