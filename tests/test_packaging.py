"""The package as users get it: an sdist and a wheel that pass ``twine check``, and the wheel,
installed into a clean virtualenv outside the checkout, logs a tiny app in against the dev wiki.

That proves what an editable install cannot: the templates, static files, ``py.typed``, the
development wiki's templates and the ``pytest11`` entry point are all in the wheel. Slow-ish
(a build and an install, about 20 s on an idle machine), so one build serves every test here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
VERSION = PROJECT["version"]

pytestmark = pytest.mark.timeout(600)


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH: the point is that nothing comes from the checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``python -m build``: the sdist, then the wheel built from it, in a temp dir.

    Building the wheel from the sdist checks the sdist is complete, and keeps ``build/`` out
    of the checkout.
    """
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    yield out


def test_the_sdist_and_wheel_pass_twine_check(dist: Path):
    files = sorted(dist.iterdir())
    assert [f.name for f in files] == [
        f"flask_wikimedia-{VERSION}-py3-none-any.whl",
        f"flask_wikimedia-{VERSION}.tar.gz",
    ]
    _run(sys.executable, "-m", "twine", "check", "--strict", *files)
    assert not (ROOT / "build").exists(), "the build left build/ in the checkout"


def test_the_wheel_carries_the_package_data_and_the_entry_points(dist: Path):
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"flask_wikimedia-{VERSION}.dist-info"
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        metadata = archive.read(f"{info}/METADATA").decode()
    for name in (
        "flask_wikimedia/py.typed",
        "flask_wikimedia/templates/wikimedia/error.html",
        "flask_wikimedia/static/wikimedia/wikimedia.css",
        "flask_wikimedia/devwiki/templates/devwiki/consent.html",
        f"{info}/licenses/LICENSE",
    ):
        assert name in names
    assert not any(n.startswith(("template_tool/", "tests/", "bench/")) for n in names)
    assert "[pytest11]" in entry_points and "[flask.commands]" in entry_points
    for label in ("Source", "Documentation", "Changelog", "Issues"):
        assert f"Project-URL: {label}, " in metadata
    assert "License-Expression: MIT" in metadata


INSTALLED_TESTS = '''
"""No conftest.py here: the devwiki fixture comes from the installed pytest11 entry point."""
import sys
from importlib.metadata import entry_points
from importlib.resources import files

from flask import Flask, url_for

import flask_wikimedia
from flask_wikimedia import Wikimedia, current_user, login_required, requires_group
from flask_wikimedia.testing import dev_config, login, logout


def make_app(devwiki):
    app = Flask(__name__)
    app.config.update(dev_config(devwiki), SECRET_KEY="a test secret key, long enough" * 2)
    Wikimedia(app)

    @app.get("/")
    @login_required
    def index():
        groups = ", ".join(sorted(current_user.groups))
        return f"Hello, {current_user.username} ({groups})!"

    @app.get("/stewards")
    @requires_group("steward")
    def stewards():
        return "stewards only"

    return app


def test_it_is_the_installed_copy():
    assert flask_wikimedia.__file__.startswith(sys.prefix), flask_wikimedia.__file__
    assert files("flask_wikimedia").joinpath("py.typed").is_file()
    assert "wikimedia" in {ep.name for ep in entry_points(group="flask.commands")}


def test_a_tiny_app_logs_in(devwiki):
    app = make_app(devwiki)
    client = app.test_client()
    # The consent page is rendered from the dev wiki's packaged templates.
    assert login(client, devwiki, "Carol", rights=["read"]).status_code == 303
    assert client.get("/").text == "Hello, Carol (*, autoconfirmed, user)!"
    refused = client.get("/stewards")  # the packaged error template
    assert refused.status_code == 403 and "steward" in refused.text and "<html" in refused.text
    with app.test_request_context():
        css = url_for("wikimedia.static", filename="wikimedia/wikimedia.css")
    assert client.get(css).status_code == 200
    assert logout(client).status_code == 303
    assert client.get("/").status_code == 302
'''


def test_the_wheel_installed_outside_the_checkout_logs_in(
    dist: Path, tmp_path_factory: pytest.TempPathFactory
):
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    # This venv's pip installs into the clean one: the dependencies come from pip's cache
    # (or the index), the package itself only from the wheel.
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel, "pytest")
    work = tmp_path_factory.mktemp("user-project")
    (work / "test_installed.py").write_text(textwrap.dedent(INSTALLED_TESTS))
    result = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=work)
    assert "2 passed" in result.stdout, result.stdout


def test_the_versions_and_the_repository_url_agree():
    import flask_wikimedia

    assert flask_wikimedia.__version__ == VERSION
    source = PROJECT["urls"]["Source"]
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    assert f"repo_url: {source}\n" in mkdocs
    for page in ("README.md", "docs/guide.md"):
        text = (ROOT / page).read_text()
        assert f"git+{source}.git" in text, f"{page} does not say how to install from {source}"
    assert "## [Unreleased]" in (ROOT / "CHANGES.md").read_text()


def test_the_readme_links_work_on_pypi_too():
    """The README is the package's long description: PyPI shows it away from the repository,
    where a relative link leads nowhere. Every link is absolute, and every link into this
    repository names a file that exists (and a heading that exists, for an anchor)."""
    readme = (ROOT / "README.md").read_text()
    blob = PROJECT["urls"]["Source"] + "/-/blob/main/"
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert links, "the README has no links at all?"
    relative = [link for link in links if not link.startswith(("https://", "http://", "mailto:"))]
    assert relative == [], f"relative links break on PyPI: {relative}"
    into_repo = [link[len(blob) :] for link in links if link.startswith(blob)]
    assert len(into_repo) >= 10
    for target in into_repo:
        path, _, anchor = target.partition("#")
        assert (ROOT / path).is_file(), f"{blob}{target}: no {path} in the repository"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{blob}{target}: no heading #{anchor} in {path}"
