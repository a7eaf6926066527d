"""Every Python code block in README.md and docs/*.md runs, so no snippet can rot.

How the blocks are run (docs/testing.md#the-documentation-snippets says the same for authors):

- The ```` ```python ```` blocks of one page run in order in one fresh namespace, as a reader
  goes through the page, each block as its own compiled unit so a failure names its line.
- The environment is the one a reader's shell would have for local development, pointed at
  the test's own services: ``FLASK_SECRET_KEY``, ``FLASK_TESTING``,
  ``FLASK_WIKIMEDIA_WIKI_URL`` / ``FLASK_WIKIMEDIA_CLIENT_ID`` for a served development wiki
  (:func:`flask_wikimedia.testing.dev_environ`) and ``REDIS_URL`` for the suite's private
  Redis. The one literal ``redis://localhost:6379/0`` in a block means that Redis too (the
  machine's own 6379 is never touched).
- A block preceded by ``<!-- file: NAME -->`` is a file of a small project instead; the
  page's project files are written to a temp dir and pytest runs there (in a subprocess,
  with the same environment), and every test in it must pass.
- A block preceded by ``<!-- setup: CODE -->`` runs after that one line of code, for a
  fragment of a larger file (``bp = Blueprint("main", __name__)`` for a view to add to a
  blueprint's module).
- A block preceded by ``<!-- not-run: REASON -->`` is skipped; the reason is required and
  such blocks are counted, so they stay few.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import RedisProcess

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.testing import dev_environ

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(
    r"^(?:[ \t]*<!--\s*(?P<marker>[a-z-]+):\s*(?P<arg>.*?)\s*-->\n)?"
    r"(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```\s*$",
    re.MULTILINE | re.DOTALL,
)
LOCAL_REDIS = "redis://localhost:6379/0"
# Blocks marked not-run, all pages together: raise it only with a good reason.
MAX_NOT_RUN = 6


@dataclass
class Block:
    page: Path
    line: int
    code: str
    marker: str | None
    arg: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The page's Python blocks, with the marker comment right above each, if any."""
    text = page.read_text()
    found: list[Block] = []
    for match in FENCE.finditer(text):
        if match["lang"] not in ("python", "py"):
            continue
        code_start = match.start("code")
        line = text.count("\n", 0, code_start) + 1
        code = textwrap.dedent(match["code"])  # blocks inside list items are indented
        found.append(Block(page, line, code, match["marker"], match["arg"] or ""))
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
RUN_PAGES = [p for p in PAGES if any(b.marker in (None, "setup") for b in blocks(p))]
PROJECT_PAGES = [p for p in PAGES if any(b.marker == "file" for b in blocks(p))]


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture
def snippet_env(
    devwiki: DevWiki,
    redis_server: RedisProcess,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    """What a reader's shell holds, pointed at the test's dev wiki and private Redis."""
    redis_server.client().flushall()
    for name in list(os.environ):
        if name.startswith(("FLASK_", "WIKIMEDIA_", "REDIS_", "TOOL")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    environ = {**dev_environ(devwiki), "REDIS_URL": redis_server.url}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    yield environ


def _prepare(code: str, environ: dict[str, str]) -> str:
    return code.replace(LOCAL_REDIS, environ["REDIS_URL"])


def test_the_pages_have_python_blocks_and_few_are_not_run():
    assert len(ALL_BLOCKS) >= 10
    skipped = [b for b in ALL_BLOCKS if b.marker == "not-run"]
    for block in skipped:
        assert len(block.arg) >= 10, f"{block.where}: say why it is not run"
    unknown = [b.where for b in ALL_BLOCKS if b.marker not in (None, "not-run", "file", "setup")]
    assert not unknown, f"unknown markers (use setup:, file: or not-run:): {unknown}"
    assert len(skipped) <= MAX_NOT_RUN, [b.where for b in skipped]


@pytest.mark.parametrize("page", RUN_PAGES, ids=_id)
def test_the_python_blocks_of_a_page_run_in_order(page: Path, snippet_env: dict[str, str]):
    namespace: dict[str, object] = {"__name__": "docs_snippet"}
    for block in blocks(page):
        if block.marker not in (None, "setup"):
            continue
        source = "\n" * (block.line - 1) + _prepare(block.code, snippet_env)
        code = compile(source, str(block.page), "exec")
        try:
            if block.marker == "setup":
                exec(compile(block.arg, f"{block.where} (setup)", "exec"), namespace)
            exec(code, namespace)
        except Exception as error:
            raise AssertionError(f"the block at {block.where} fails: {error!r}") from error


@pytest.mark.parametrize("page", PROJECT_PAGES, ids=_id)
def test_the_project_files_of_a_page_pass_their_tests(
    page: Path,
    snippet_env: dict[str, str],
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
):
    files = [b for b in blocks(page) if b.marker == "file"]
    for block in files:
        path = pytester.path / block.arg
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_prepare(block.code, snippet_env))
    # A clean environment, as in a fresh shell: the project must set up what it needs.
    for name in list(os.environ):
        if name.startswith(("FLASK_", "WIKIMEDIA_", "REDIS_")):
            monkeypatch.delenv(name)
    # A subprocess: a project's conftest may change os.environ or sys.modules for good.
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:randomly")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1, str(result.stdout)
    assert set(outcomes) <= {"passed", "warnings", "warning"}, str(result.stdout)
