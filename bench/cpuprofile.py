"""Where a request's CPU goes: the bench app called in-process (no HTTP), under cProfile.

The app is ``bench.app.create_app()`` with the same settings as a gunicorn instance of the run
(same Redis, same secret), so a session cookie from the run works here. Each route is called
``requests`` times after a warm-up: first without the profiler for the CPU time per request,
then under cProfile for the split. The split is by where the code lives (our package,
redis-py, Flask and Werkzeug, ...), by own time (``tottime``), as shares: cProfile's overhead
inflates many small calls, so shares, not its absolute microseconds, are what to read.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from werkzeug.test import Client

from . import app as bench_app

#: Buckets by the file a function lives in (the first match wins).
_PLACES = (
    ("flask_wikimedia/", "flask_wikimedia"),
    ("/redis/", "redis-py"),
    ("/flask_session/", "Flask-Session"),
    ("/flask/", "Flask"),
    ("/werkzeug/", "Werkzeug"),
    ("/jinja2/", "Jinja2"),
    ("/cryptography/", "cryptography"),
    ("/msgspec/", "msgspec"),
    ("/bench/", "bench app"),
)


@dataclass(frozen=True)
class Profile:
    path: str
    cpu_us: float  # process CPU per request, no profiler
    shares: list[tuple[str, float]]  # (where, share of own time), largest first
    top: list[tuple[str, float]]  # (function, share of own time), largest first


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _place(filename: str) -> str:
    for fragment, name in _PLACES:
        if fragment in filename:
            return name
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (socket, hashing, dicts)"
    return "other Python"


def profile_routes(
    env: Mapping[str, str], cookie: str, paths: list[str], requests: int
) -> list[Profile]:
    """Profile each of ``paths`` (GET, with ``cookie``) in one in-process app."""
    bench_env = {key: value for key, value in env.items() if key.startswith("BENCH_")}
    with _environment(bench_env):
        wsgi = bench_app.create_app()
    client = Client(wsgi, use_cookies=False)  # the cookie goes in the header, as sent
    headers = {"Cookie": cookie}
    results = []
    for path in paths:
        for _ in range(max(50, requests // 10)):  # warm-up: connections, templates, caches
            client.get(path, headers=headers)
        start = time.process_time()
        for _ in range(requests):
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code} in-process")
        cpu_us = (time.process_time() - start) / requests * 1e6
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            client.get(path, headers=headers)
        profiler.disable()
        stats = pstats.Stats(profiler)
        own: Counter[str] = Counter()
        functions: Counter[str] = Counter()
        for (filename, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
            tottime = row[2]
            own[_place(filename)] += tottime
            short = filename.split("site-packages/")[-1].split("/wt/perf/")[-1]
            functions[f"{short}:{line}({name})"] += tottime
        total = sum(own.values()) or 1.0
        results.append(
            Profile(
                path,
                cpu_us,
                [(where, t / total) for where, t in own.most_common()],
                [(fn, t / total) for fn, t in functions.most_common(8)],
            )
        )
    return results
