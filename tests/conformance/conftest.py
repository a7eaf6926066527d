"""Fixtures of the conformance suite: ``server`` is each of the servers in turn.

Which servers: ``CONFORMANCE_SERVERS`` (comma-separated; default ``devwiki``). ``make test``
runs the scenarios against the development wiki only, so it works on a fresh clone without
the extension tarball; ``make test-mediawiki`` sets ``CONFORMANCE_SERVERS=devwiki,real_wiki``,
and then a real wiki that cannot be set up fails the run with the reason (never a skip).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator

import pytest
from realwiki import RealWiki, start_real_wiki, stop_real_wiki
from servers import DevServer, RealServer, Server

KNOWN = ("devwiki", "real_wiki")


def selected_servers() -> list[str]:
    names = [n.strip() for n in os.environ.get("CONFORMANCE_SERVERS", "devwiki").split(",")]
    unknown = [n for n in names if n not in KNOWN]
    if unknown or not names:
        raise pytest.UsageError(f"CONFORMANCE_SERVERS: unknown {unknown}; choose from {KNOWN}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        metafunc.parametrize("server", selected_servers(), indirect=True)


@pytest.fixture(scope="session")
def real_wiki() -> Iterator[RealWiki]:
    """The real MediaWiki 1.39 + Extension:OAuth (``scripts/real-mediawiki``), started once
    for the session and stopped at the end (by PID)."""
    wiki = start_real_wiki()
    yield wiki
    stop_real_wiki()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The server a scenario runs against: ``devwiki`` (fresh) or ``real_wiki`` (shared)."""
    if request.param == "devwiki":
        chosen: Server = DevServer()
    else:
        chosen = RealServer(request.getfixturevalue("real_wiki"))
    yield chosen
    chosen.cleanup()


_outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/conformance/" not in report.nodeid.replace("\\", "/"):
        return
    for name in KNOWN:
        in_id = f"[{name}" in report.nodeid or f"-{name}]" in report.nodeid
        if in_id and report.when == "call":
            _outcomes[name][report.outcome] += 1
        elif in_id and report.failed:  # a setup error: the real wiki could not be set up
            _outcomes[name]["error"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _outcomes:
        return
    terminalreporter.section("conformance scenarios per server")
    for name in KNOWN:
        if name in _outcomes:
            counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(_outcomes[name].items()))
            terminalreporter.write_line(f"{name}: {counts}")
