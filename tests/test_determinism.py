"""The README's test command runs the same property-test examples on every clone (issue 9.10)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from hypothesis import settings

TESTS = Path(__file__).resolve().parent


@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE", "default") != "default", reason="make fuzz"
)
def test_the_normal_run_is_derandomised():
    assert settings.default.derandomize is True
    assert settings.default.deadline is None
    assert 50 <= settings.default.max_examples <= 200
    assert settings.get_profile("fuzz").derandomize is False
    assert settings.get_profile("fuzz").max_examples >= 1000


def test_no_property_test_overrides_the_profile():
    """Examples, randomness and deadline come from the profile alone (tests/conftest.py)."""
    owned = {"max_examples", "derandomize", "deadline", "database", "phases"}
    offenders = [
        f"{path.relative_to(TESTS)}:{node.lineno}"
        for path in TESTS.rglob("*.py")
        if path.name != "conftest.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "settings"
        and owned & {k.arg for k in node.keywords}
    ]
    assert offenders == []
