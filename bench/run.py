"""The benchmark run: start the services, measure every phase back to back, print one table.

Phases, in this order (the later ones change the wiki's settings and add logins):

1. per request: wrk against each route, in interleaved rounds, so that every ratio compares
   measurements taken seconds apart on the same machine state (the cluster line, d3, is the
   sealed-session app on a 3-primary Redis Cluster started for the run: bench/topologies.py);
2. Redis round trips per request (``redis-cli MONITOR`` over a known number of requests);
3. Redis bytes per logged-in session (``MEMORY USAGE``), plain user and sysop;
4. per login: full logins against the development wiki by many concurrent users;
5. per refresh: one user's expired token hit by 100 concurrent requests;
6. where the CPU goes: the sealed app called in-process under cProfile (bench/cpuprofile.py);
7. scaling: d2's throughput with 1, 2 and 4 workers, then with 10^4 and 10^5 logged-in users
   in Redis (copies of a real session and login record under fresh key names).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import requests

from flask_wikimedia.devwiki import DevWiki
from flask_wikimedia.refresh import REFRESH_MARGIN

from . import browser
from .cpuprofile import Profile, profile_routes
from .monitor import RoundTrips, count_round_trips
from .processes import RedisProcess, free_port
from .report import Report, RouteResult, RouteRun, ScalePoint, render
from .services import (
    CLIENT_ID,
    CLIENT_SECRET,
    ROOT,
    SECRET_KEY,
    Gunicorn,
    ServiceError,
    configure_devwiki,
    cpu_seconds,
)
from .topologies import LocalCluster, TopologyError
from .wrk import WrkError, run_wrk

#: Where each run leaves its table (ignored by git; docs/performance.md has the published one).
RESULTS = ROOT / "bench" / "results"
#: The wiki calls our server makes (the others, ``authorize`` and ``consent``, are the browser's).
SERVER_TO_WIKI = ("token", "profile", "scopes", "api", "rest")


@dataclass(frozen=True)
class Settings:
    rounds: int
    seconds: int
    warmup: int
    connections: int
    wrk_threads: int
    workers: int
    login_seconds: float
    login_users: int
    refresh_trials: int
    burst: int
    monitored_requests: int
    profiled_requests: int
    scale_workers: tuple[int, ...]
    scale_users: tuple[int, ...]


FULL = Settings(
    rounds=5,
    seconds=3,
    warmup=1,
    connections=8,
    wrk_threads=2,
    workers=4,
    login_seconds=10,
    login_users=16,
    refresh_trials=3,
    burst=100,
    monitored_requests=100,
    profiled_requests=2000,
    scale_workers=(1, 2, 4),
    scale_users=(10_000, 100_000),
)
SMOKE = Settings(
    rounds=1,
    seconds=1,
    warmup=0,
    connections=4,
    wrk_threads=2,
    workers=2,
    login_seconds=2,
    login_users=4,
    refresh_trials=1,
    burst=100,
    monitored_requests=20,
    profiled_requests=200,
    scale_workers=(1, 2),
    scale_users=(1_000,),
)


@dataclass(frozen=True)
class Route:
    key: str
    label: str
    server: str  # "plain" (Flask-Session), "sealed" (flask_wikimedia.sessions), or "cluster"
    # (sealed sessions on a 3-primary Redis Cluster)
    path: str
    cookie: str | None  # which logged-in cookie: "ours", "peer", "peerdb", "session" or None
    contains: str


ROUTES = (
    Route("a", "bare Flask route, no session (floor)", "plain", "/floor/", None, "ok"),
    Route(
        "b", "reads a Flask-Session Redis session", "plain", "/session/", "session", "session read"
    ),
    Route("c", "Flask-Login @login_required (peer)", "plain", "/peer/", "peer", "ok"),
    Route("c2", "Flask-Login, user loaded from Redis", "plain", "/peerdb/", "peerdb", "ok"),
    Route("d", "ours: @login_required", "plain", "/private", "ours", "ok"),
    Route("e", 'ours: @requires_right("edit") + template', "plain", "/edit", "ours", "Alice"),
    Route(
        "b2",
        "reads a sealed session (use_redis_sessions)",
        "sealed",
        "/session/",
        "ours",
        "session read",
    ),
    Route("d2", "ours: @login_required on use_redis_sessions", "sealed", "/private", "ours", "ok"),
    Route("d3", "ours: d2 on a 3-primary Redis Cluster", "cluster", "/private", "ours", "ok"),
)


@dataclass
class Bench:
    settings: Settings
    log: Callable[[str], None]
    redis: RedisProcess = field(default_factory=lambda: RedisProcess.standalone("fw-bench-redis-"))
    cluster: LocalCluster = field(default_factory=LocalCluster)
    wiki: DevWiki = field(default_factory=DevWiki)
    servers: dict[str, Gunicorn] = field(default_factory=dict)
    cookies: dict[tuple[str, str], str] = field(default_factory=dict)

    # -- setup ---------------------------------------------------------------------------

    def start(self) -> None:
        self.log(f"redis-server on 127.0.0.1:{self.redis.port}")
        try:
            self.redis.start()
            self.cluster.start()
        except TopologyError as exc:
            raise ServiceError(str(exc)) from exc
        self.log(f"Redis Cluster of 3 primaries + 3 replicas on {self.cluster_url()}")
        configure_devwiki(self.wiki)
        self.wiki.start()
        self.log(f"development wiki at {self.wiki.base_url}")
        stores = (
            ("plain", "flask-session", self.redis.url),
            ("sealed", "sealed", self.redis.url),
            ("cluster", "sealed", self.cluster_url()),
        )
        for name, sessions, redis_url in stores:
            port = free_port()
            env = {
                "BENCH_SESSIONS": sessions,
                "BENCH_REDIS_URL": redis_url,
                "BENCH_WIKI_URL": str(self.wiki.base_url),
                "BENCH_REDIRECT_URI": f"http://127.0.0.1:{port}/auth/callback",
                "BENCH_CLIENT_ID": CLIENT_ID,
                "BENCH_CLIENT_SECRET": CLIENT_SECRET,
                "BENCH_SECRET_KEY": SECRET_KEY,
            }
            server = Gunicorn(name, port, env, self.settings.workers)
            self.servers[name] = server
            server.start()
            self.log(f"gunicorn ({name}, {sessions}) with {server.workers} workers on port {port}")
        self.wiki.auto_approve = "Alice"
        for name, server in self.servers.items():
            self.cookies[(name, "ours")] = browser.session_cookie(browser.login(server.base_url))
            if name == "cluster":
                continue  # only our route is measured there
            for peer in ("peer", "peerdb", "session"):
                with requests.Session() as client:
                    client.get(f"{server.base_url}/{peer}/login", timeout=10).raise_for_status()
                    self.cookies[(name, peer)] = browser.session_cookie(client)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.wiki.stop()
        self.redis.stop()
        shutil.rmtree(self.redis.workdir, ignore_errors=True)
        self.cluster.stop()

    def cluster_url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.cluster.nodes)

    def redis_pids(self, route: Route) -> list[int]:
        """The redis-server processes that serve ``route`` (all six nodes of the cluster)."""
        if route.server == "cluster":
            return [n.process.pid for n in self.cluster.nodes if n.process is not None]
        assert self.redis.process is not None
        return [self.redis.process.pid]

    def redis_ports(self, route: Route) -> list[int]:
        if route.server == "cluster":
            return [n.port for n in self.cluster.nodes]
        return [self.redis.port]

    def url(self, route: Route) -> str:
        return self.servers[route.server].base_url + route.path

    def cookie(self, route: Route) -> str | None:
        return self.cookies[(route.server, route.cookie)] if route.cookie else None

    def check(self, route: Route) -> None:
        browser.expect(self.url(route), self.cookie(route), route.contains)

    # -- 1. per request ------------------------------------------------------------------

    def per_request(self) -> dict[str, list[RouteRun]]:
        s = self.settings
        results: dict[str, list[RouteRun]] = {r.key: [] for r in ROUTES}
        for route in ROUTES:
            self.check(route)
            if s.warmup:  # every worker connects to Redis and loads its templates
                self.measure(route, s.warmup)
        for number in range(s.rounds):
            self.log(f"per request: round {number + 1} of {s.rounds}")
            # Every other round backwards, so slow drift in the machine's load hits all alike.
            for route in ROUTES if number % 2 == 0 else ROUTES[::-1]:
                results[route.key].append(self.measure(route, s.seconds))
        for route in ROUTES:  # still logged in, still answering as before
            self.check(route)
        return results

    def measure(self, route: Route, seconds: int, server: Gunicorn | None = None) -> RouteRun:
        """One wrk run, with the CPU time the app's workers and redis-server spent on it."""
        s = self.settings
        server = server or self.servers[route.server]
        workers = server.worker_pids()
        redis_pid = self.redis_pids(route)
        app_before, redis_before = cpu_seconds(workers), cpu_seconds(redis_pid)
        result = run_wrk(
            server.base_url + route.path,
            seconds=seconds,
            connections=s.connections,
            threads=s.wrk_threads,
            cookie=self.cookie(route),
        )
        app_cpu = cpu_seconds(workers) - app_before
        redis_cpu = cpu_seconds(redis_pid) - redis_before
        if result.errors or result.requests == 0:
            raise WrkError(f"{route.path}: {result.errors} errors in {result.requests} requests")
        return RouteRun(result, app_cpu / result.requests * 1e6, redis_cpu / result.requests * 1e6)

    # -- 2. Redis round trips ------------------------------------------------------------

    def round_trips(self) -> dict[str, RoundTrips]:
        counted: dict[str, RoundTrips] = {}
        n = self.settings.monitored_requests
        for route in ROUTES:
            url, cookie = self.url(route), self.cookie(route)

            def drive(url: str = url, cookie: str | None = cookie) -> None:
                with requests.Session() as client:
                    headers = {"Cookie": cookie} if cookie else {}
                    for _ in range(n):
                        client.get(url, headers=headers, timeout=10).raise_for_status()

            counted[route.key] = count_round_trips(self.redis_ports(route), n, drive)
        return counted

    # -- 3. Redis bytes per session ------------------------------------------------------

    def memory(self, username: str) -> dict[str, int]:
        """Bytes Redis holds for one fresh login of ``username`` (plain Flask-Session app)."""
        client = self.redis.client()
        before = set(client.scan_iter(count=1000))
        self.wiki.auto_approve = username
        browser.login(self.servers["plain"].base_url)
        added = set(client.scan_iter(count=1000)) - before
        sizes = {"session": 0, "login record": 0, "single-use state (10 min)": 0}
        for key in added:
            name = key.decode()
            used = int(client.memory_usage(key, samples=0) or 0)
            if ":wikimedia:login:" in name:
                sizes["login record"] += used
            elif ":wikimedia:once:" in name:
                sizes["single-use state (10 min)"] += used
            elif name.startswith("bench:session:"):
                sizes["session"] += used
            else:
                raise ServiceError(f"unexpected key after a login: {name}")
        if not sizes["session"] or not sizes["login record"]:
            raise ServiceError(f"a login of {username} left no session or login record in Redis")
        return sizes

    # -- 4. per login --------------------------------------------------------------------

    def logins(self) -> dict[str, Any]:
        s = self.settings
        base_url = self.servers["plain"].base_url
        self.wiki.auto_approve = "Alice"
        calls_before = dict(self.wiki.calls)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + s.login_seconds

        def user() -> None:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    browser.login(base_url).close()
                    problem = None
                except (browser.BrowserError, requests.RequestException) as exc:
                    problem = str(exc)
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    if problem is None:
                        latencies.append(elapsed)
                    else:
                        failures.append(problem)

        workers = self.servers["plain"].worker_pids()
        app_before, bench_before = cpu_seconds(workers), _own_cpu_seconds()
        started = time.perf_counter()
        threads = [threading.Thread(target=user) for _ in range(s.login_users)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        app_cpu = cpu_seconds(workers) - app_before
        bench_cpu = _own_cpu_seconds() - bench_before
        if failures:
            raise ServiceError(f"{len(failures)} logins failed, e.g. {failures[0]}")
        if not latencies:
            raise ServiceError("no login completed")
        delta = {k: self.wiki.calls[k] - calls_before.get(k, 0) for k in self.wiki.calls}
        server_calls = sum(delta.get(k, 0) for k in SERVER_TO_WIKI)

        # Redis round trips of the login itself: land on a page that has no session.
        n = 5

        def drive() -> None:
            for _ in range(n):
                browser.login(base_url, next_path="/floor/").close()

        redis_trips = count_round_trips(self.redis.port, n, drive)
        return {
            "users": s.login_users,
            "logins": len(latencies),
            "per_second": len(latencies) / elapsed,
            "p50_ms": browser.percentile(latencies, 50),
            "p99_ms": browser.percentile(latencies, 99),
            "wiki_round_trips": server_calls / len(latencies),
            "token_calls": delta.get("token", 0) / len(latencies),
            "profile_calls": delta.get("profile", 0) / len(latencies),
            "app_cpu_ms": app_cpu / len(latencies) * 1000,
            "bench_cpu_ms": bench_cpu / len(latencies) * 1000,
            "redis_round_trips": redis_trips.per_request,
            "redis_commands": redis_trips.commands,
        }

    # -- 5. per refresh ------------------------------------------------------------------

    def refresh(self) -> list[dict[str, float]]:
        s = self.settings
        server = self.servers["plain"]
        url = server.base_url + "/private"
        trials = []
        for _ in range(s.refresh_trials):
            normal_ttl = self.wiki.access_token_ttl
            # A token that enters the refresh margin a few seconds after the login.
            self.wiki.access_token_ttl = int(REFRESH_MARGIN) + 3
            self.wiki.auto_approve = "Refresher"
            try:
                logged_in = browser.login(server.base_url)
                logged_in_at = time.monotonic()
            finally:
                self.wiki.access_token_ttl = normal_ttl
            cookie = browser.session_cookie(logged_in)
            browser.expect(url, cookie, "ok")
            time.sleep(max(0.0, logged_in_at + 3.5 - time.monotonic()))
            self.wiki.expire_access_tokens("Refresher")  # the wiki agrees: it is dead
            refreshes_before = self.wiki.calls["token:refresh_token"]
            expired = browser.burst(url, cookie, s.burst, "ok")
            refreshes = self.wiki.calls["token:refresh_token"] - refreshes_before
            # The same burst with the fresh token, twice: the reference the refresh adds to.
            normal = [browser.burst(url, cookie, s.burst, "ok") for _ in range(2)]
            for result in (expired, *normal):
                if result.failures:
                    raise ServiceError(
                        f"{len(result.failures)} requests failed around a refresh, "
                        f"e.g. {result.failures[0]}"
                    )
            trials.append(
                {
                    "refreshes": refreshes,
                    "p50_expired_ms": browser.percentile(expired.latencies_ms, 50),
                    "p99_expired_ms": browser.percentile(expired.latencies_ms, 99),
                    "p50_normal_ms": statistics.mean(
                        browser.percentile(n.latencies_ms, 50) for n in normal
                    ),
                    "p99_normal_ms": statistics.mean(
                        browser.percentile(n.latencies_ms, 99) for n in normal
                    ),
                }
            )
        return trials

    # -- 6. where the CPU goes -----------------------------------------------------------

    def profiles(self) -> list[Profile]:
        server = self.servers["sealed"]
        cookie = self.cookies[("sealed", "ours")]
        paths = ["/session/", "/private"]
        return profile_routes(server.env, cookie, paths, self.settings.profiled_requests)

    # -- 7. scaling ----------------------------------------------------------------------

    def scaling(self) -> list[ScalePoint]:
        s = self.settings
        d2 = next(r for r in ROUTES if r.key == "d2")
        sealed = self.servers["sealed"]
        points = []
        for workers in s.scale_workers:
            server = Gunicorn(f"sealed-{workers}", free_port(), sealed.env, workers)
            server.start()
            try:
                self.log(f"scaling: d2 with {workers} worker(s)")
                points.append(self._point(f"{workers} worker(s)", d2, server))
            finally:
                server.stop()
        for users in s.scale_users:
            added = self.populate(users)
            self.log(f"scaling: d2 with {users:,} logged-in users in Redis (+{added:,})")
            points.append(self._point(f"{users:,} users, {sealed.workers} workers", d2, sealed))
        return points

    def _point(self, label: str, route: Route, server: Gunicorn) -> ScalePoint:
        s = self.settings
        browser.expect(server.base_url + route.path, self.cookie(route), route.contains)
        self.measure(route, max(1, s.warmup), server)
        runs = [self.measure(route, s.seconds, server) for _ in range(2)]
        used = int(self.redis.client().info("memory")["used_memory"])
        return ScalePoint(
            label,
            statistics.median(r.wrk.rps for r in runs),
            statistics.median(r.app_us for r in runs),
            statistics.median(r.redis_us for r in runs),
            used / 2**20,
        )

    def populate(self, users: int) -> int:
        """Fill Redis up to ``users`` logged-in users of the sealed app: copies of the
        benchmark user's session and login record under fresh (random) digests."""
        client = self.redis.client(socket_timeout=5)  # pipelines of 4,000 RESTOREs
        prefix = "bench:sealed:"
        sessions = [k for k in client.scan_iter(prefix + "{*", count=1000)]
        records = [k for k in client.scan_iter(prefix + "wikimedia:login:{*", count=1000)]
        if not sessions or not records:
            raise ServiceError("no sealed session or login record to copy")
        session_dump = client.dump(sessions[0])
        record_dump = client.dump(records[0])
        if session_dump is None or record_dump is None:
            raise ServiceError("the session or login record to copy expired meanwhile")
        have = len(records)
        ttl_ms = 24 * 3600 * 1000
        with client.pipeline(transaction=False) as pipe:
            for number in range(max(0, users - have)):
                tag = secrets.token_urlsafe(32)
                pipe.restore(f"{prefix}{{{tag}}}", ttl_ms, session_dump)
                pipe.restore(f"{prefix}wikimedia:login:{{{tag}}}", ttl_ms, record_dump)
                if number % 2000 == 1999:
                    pipe.execute()
            pipe.execute()
        return max(0, users - have)


def _own_cpu_seconds() -> float:
    """CPU time of this process: the load generator's threads and the development wiki."""
    times = os.times()
    return times.user + times.system


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine(bench: Bench) -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "CPU": f"{os.cpu_count()} x {cpu}",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "packages": ", ".join(
            f"{p} {_version(p)}"
            for p in (
                "flask",
                "werkzeug",
                "flask-session",
                "redis",
                "flask-login",
                "gunicorn",
                "authlib",
                "cryptography",
            )
        ),
        "servers": f"redis-server {bench.redis.version()}, "
        + (wrk.stdout.split(" Copyright")[0].strip() or "wrk"),
        "load": f"gunicorn {bench.settings.workers} sync workers per app; wrk "
        f"{bench.settings.wrk_threads} threads, {bench.settings.connections} connections, "
        f"{bench.settings.rounds} rounds of {bench.settings.seconds} s per route",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="short run (< 1 min), no thresholds: CI's check"
    )
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    bench = Bench(settings, log)
    started = time.monotonic()
    try:
        bench.start()
        log("per request (wrk)")
        per_request = bench.per_request()
        log("Redis round trips (MONITOR)")
        trips = bench.round_trips()
        log("Redis bytes per session")
        memory = {"plain user": bench.memory("Alice"), "sysop": bench.memory("BigSysop")}
        log("per login")
        logins = bench.logins()
        log("per refresh")
        refresh = bench.refresh()
        log("where the CPU goes (in-process, cProfile)")
        profiles = bench.profiles()
        log("scaling")
        scaling = bench.scaling()
        report = Report(
            smoke=args.smoke,
            machine=machine(bench),
            routes=[RouteResult(r.key, r.label, per_request[r.key], trips[r.key]) for r in ROUTES],
            logins=logins,
            refresh=refresh,
            memory=memory,
            profiles=profiles,
            scaling=scaling,
            seconds=time.monotonic() - started,
        )
    except (ServiceError, WrkError, browser.BrowserError, requests.RequestException) as exc:
        log(f"FAILED: {exc}")
        for server in bench.servers.values():
            output = server.output().strip()
            if output:
                log(f"gunicorn ({server.name}) log:\n{output}")
        return 1
    finally:
        bench.stop()
    text = render(report)
    print(text, flush=True)
    RESULTS.mkdir(exist_ok=True)
    saved = RESULTS / ("latest-smoke.md" if args.smoke else "latest.md")
    saved.write_text(text + "\n")
    log(f"table saved to {saved.relative_to(ROOT)}")
    return 0
