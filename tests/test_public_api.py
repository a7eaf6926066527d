"""The declared public API (docs/public-api.md): every public module's ``__all__`` is exactly
what the page lists, and the sample tool imports nothing else."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flask_wikimedia import extension, settings

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "public-api.md"
#: The public modules and their names, as the page lists them.
_SECTION = re.compile(r"^## `(flask_wikimedia[\w.]*)`$")
_ITEM = re.compile(r"^- ((?:`\w+`(?:, )?)+):")


def documented() -> dict[str, set[str]]:
    """``{module: names}`` from the page's sections and their bullet items."""
    found: dict[str, set[str]] = {}
    module = None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        section = _SECTION.match(line)
        if section:
            module = section.group(1)
            found[module] = set()
        elif line.startswith("## "):
            module = None
        elif module is not None and (item := _ITEM.match(line)):
            found[module].update(re.findall(r"`(\w+)`", item.group(1)))
    return found


PUBLIC = documented()


def test_the_page_lists_the_public_modules():
    assert {"flask_wikimedia", "flask_wikimedia.errors", "flask_wikimedia.api"} <= set(PUBLIC)
    assert sum(len(names) for names in PUBLIC.values()) > 100


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_exactly_the_documented_names(module_name):
    module = importlib.import_module(module_name)
    declared = set(getattr(module, "__all__", ()))
    assert declared, f"{module_name} has no __all__"
    assert declared == PUBLIC[module_name], (
        f"{module_name}: missing from __all__ (a public name disappeared?): "
        f"{sorted(PUBLIC[module_name] - declared)}; not on docs/public-api.md: "
        f"{sorted(declared - PUBLIC[module_name])}"
    )
    for name in declared:
        assert hasattr(module, name), f"{module_name}.__all__ names {name}, which is not there"


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """``(module, name or None, line)`` for each flask_wikimedia import in ``path``."""
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flask_wikimedia"):
            assert node.module is not None
            found.extend((node.module, alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (alias.name, None, node.lineno)
                for alias in node.names
                if alias.name.startswith("flask_wikimedia")
            )
    return found


def sample_tool_imports() -> list[tuple[str, str | None, str]]:
    files = [*sorted((ROOT / "template_tool").rglob("*.py")), ROOT / "app.py"]
    return [
        (module, name, f"{path.relative_to(ROOT)}:{line}")
        for path in files
        for module, name, line in _imports(path)
    ]


def public_api_problems(imports: list[tuple[str, str | None, str]]) -> list[str]:
    """What in ``imports`` reaches past the public API."""
    problems = []
    for module, name, where in imports:
        if name is not None and f"{module}.{name}" in PUBLIC:
            continue  # ``from flask_wikimedia import errors``: a public module
        if module not in PUBLIC:
            problems.append(f"{where}: {module} is not a public module")
        elif name is not None and (name.startswith("_") or name not in PUBLIC[module]):
            problems.append(f"{where}: {module}.{name} is not public")
    return problems


def test_the_sample_tool_imports_only_the_public_api():
    imports = sample_tool_imports()
    assert len(imports) > 10  # it does import the extension
    assert public_api_problems(imports) == []


def test_the_check_catches_an_underscore_name_and_an_internal_module():
    problems = public_api_problems(
        [
            ("flask_wikimedia.api", "_CredentialAuth", "a.py:1"),
            ("flask_wikimedia.outbound", "WikiSession", "a.py:2"),
            ("flask_wikimedia.login", None, "a.py:3"),
            ("flask_wikimedia", "errors", "a.py:4"),
            ("flask_wikimedia.errors", "LoginFailed", "a.py:5"),
        ]
    )
    assert problems == [
        "a.py:1: flask_wikimedia.api._CredentialAuth is not public",
        "a.py:2: flask_wikimedia.outbound is not a public module",
        "a.py:3: flask_wikimedia.login is not a public module",
    ]


def test_the_extensions_docstring_lists_every_key_it_reads():
    doc = extension.__doc__ or ""
    missing = [key for key in settings.DEFAULTS if f"``{key}``" not in doc]
    assert missing == []


def test_a_strictly_typed_user_can_import_every_public_name(tmp_path: Path):
    """The package ships ``py.typed``: ``mypy --strict`` on a user's module that imports every
    documented name from its module must pass, so each re-export is explicit (in ``__all__``)."""
    user = tmp_path / "user_module.py"
    user.write_text(
        "".join(
            f"from {module} import {name} as {name}_{index}\n"
            for index, (module, names) in enumerate(sorted(PUBLIC.items()))
            for name in sorted(names)
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
