"""``make audit`` (scripts/audit.py): a real finding fails, an unreachable database is said."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts.audit import verdict

ROOT = Path(__file__).resolve().parent.parent


def test_a_known_vulnerability_fails_the_audit():
    code, lines = verdict(
        [
            {"name": "flask", "version": "3.1.3", "vulns": []},
            {
                "name": "authlib",
                "version": "1.9.9",
                "vulns": [{"id": "GHSA-xxxx", "fix_versions": ["1.9.10"]}],
            },
        ]
    )
    assert code == 1
    assert "audit: authlib 1.9.9: GHSA-xxxx (fixed in 1.9.10)" in lines


def test_skipped_packages_are_reported_as_not_audited_without_failing():
    code, lines = verdict(
        [
            {"name": "flask", "skip_reason": "Dependency not found on PyPI"},
            {"name": "redis", "version": "8.1.0", "vulns": []},
        ]
    )
    assert code == 0
    assert any("could not be reached for 1 of 2 packages (flask)" in line for line in lines)
    assert any("NOT audited" in line for line in lines)


def test_requirements_are_at_or_past_the_advisories():
    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )

    def version(name: str) -> tuple[int, ...]:
        return tuple(int(p) for p in pins[name].split("."))

    assert version("authlib") >= (1, 9, 10)
    assert version("cryptography") >= (50, 0, 2)
    assert version("werkzeug") >= (3, 1, 9)
    assert version("requests") >= (2, 33)
    assert version("gunicorn") >= (27, 0, 1)


def test_the_audit_runs_and_says_what_it_could_audit():
    run = subprocess.run(
        [sys.executable, "scripts/audit.py", "requirements.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "audit: " in run.stdout
