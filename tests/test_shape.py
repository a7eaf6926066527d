"""The package's shape: imports go one way (scripts/check_imports.py), one registration per app."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest
from flask import Flask

from flask_wikimedia import Wikimedia
from flask_wikimedia.api import resolve_wiki

ROOT = Path(__file__).resolve().parents[1]


def _load_checker():  # the script is not a package module: load it by path
    spec = importlib.util.spec_from_file_location(
        "check_imports", ROOT / "scripts/check_imports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_imports"] = module
    spec.loader.exec_module(module)
    return module


check_imports = _load_checker()


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_flask_wikimedia_has_no_import_cycle_and_no_unexplained_function_import():
    assert check_imports.check(ROOT / "flask_wikimedia") == []


def test_a_cycle_through_three_modules_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from .b import x\n",
            "b.py": "from . import c\nx = 1\n",
            "c.py": "from pkg.a import y\ny = 2\n",
            "d.py": "from .a import y\n",  # imports into the cycle, not part of it
        },
    )
    assert check_imports.check(root) == ["import cycle among: pkg.a <-> pkg.b <-> pkg.c"]


def test_a_cycle_through_the_package_init_is_found(tmp_path):
    root = _package(
        tmp_path, {"__init__.py": "from .a import f\n", "a.py": "from . import VERSION\n"}
    )
    assert check_imports.check(root) == ["import cycle among: pkg <-> pkg.a"]


def test_type_checking_imports_and_explained_function_imports_are_allowed(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from .b import B\n"
                "def f():\n    # optional: only some apps install it\n    import yaml\n"
            ),
            "b.py": "from .a import f\nB = 1\n",
        },
    )
    assert check_imports.check(root) == []


def test_an_unexplained_function_import_is_found(tmp_path):
    root = _package(
        tmp_path, {"__init__.py": "", "a.py": "def f():\n    from . import b\n", "b.py": ""}
    )
    (problem,) = check_imports.check(root)
    assert problem.endswith(
        "a.py:2: import inside a function without an '# optional: why' comment: from . import b"
    )


def test_the_script_exits_non_zero_on_a_problem(tmp_path, capsys):
    root = _package(
        tmp_path, {"__init__.py": "", "a.py": "from . import b\n", "b.py": "from . import a\n"}
    )
    assert check_imports.main(["check_imports", str(root)]) == 1
    assert "import cycle among: pkg.a <-> pkg.b" in capsys.readouterr().out


def _app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="x" * 40, TESTING=True, WIKIMEDIA_DEV_WIKI=True)
    return app


def test_a_second_registration_on_one_app_is_a_clear_error():
    app = _app()
    Wikimedia(app)
    wsgi_app = app.wsgi_app
    with pytest.raises(RuntimeError, match="already initialised on this app"):
        Wikimedia(app)
    assert app.wsgi_app is wsgi_app  # the development wiki was not mounted a second time


def test_api_hosts_and_app_token_are_parsed_once_at_startup():
    app = _app()
    app.config.update(WIKIMEDIA_API_HOSTS=["Example.ORG"], WIKIMEDIA_APP_TOKEN="abc.def")
    Wikimedia(app)
    app.config.update(WIKIMEDIA_API_HOSTS=["evil.example"], WIKIMEDIA_APP_TOKEN="changed")
    state = app.extensions["wikimedia"]
    assert state.api_hosts == frozenset({"example.org"})
    assert state.app_token == "abc.def"
    with app.test_request_context():
        assert resolve_wiki("example.org") == "https://example.org/w"
        with pytest.raises(ValueError, match="refusing to send"):
            resolve_wiki("evil.example")


#: A module longer than this says in its docstring why it is one module ("Why one module...").
MAX_LINES = 400


def test_no_module_over_400_lines_without_a_reason():
    unexplained = []
    for path in sorted((ROOT / "flask_wikimedia").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "Why one module" not in doc:
                unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []
