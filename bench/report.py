"""The table a run prints (Markdown, so it can go into docs/performance.md as it is)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from .cpuprofile import Profile
from .monitor import RoundTrips
from .wrk import WrkResult

KIB = 1024


@dataclass(frozen=True)
class RouteRun:
    """One wrk run of one route, and the CPU time it cost per request."""

    wrk: WrkResult
    app_us: float  # gunicorn workers' CPU time per request, microseconds
    redis_us: float  # redis-server's CPU time per request, microseconds


@dataclass(frozen=True)
class RouteResult:
    key: str
    label: str
    runs: list[RouteRun]
    trips: RoundTrips

    @property
    def rps(self) -> float:
        return statistics.median(r.wrk.rps for r in self.runs)

    @property
    def p50(self) -> float:
        return statistics.median(r.wrk.p50_ms for r in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(r.wrk.p99_ms for r in self.runs)

    @property
    def app_us(self) -> float:
        return statistics.median(r.app_us for r in self.runs)

    @property
    def redis_us(self) -> float:
        return statistics.median(r.redis_us for r in self.runs)

    @property
    def cpu_us(self) -> float:
        """Server-side CPU per request: the app's workers plus redis-server."""
        return statistics.median(r.app_us + r.redis_us for r in self.runs)


@dataclass(frozen=True)
class ScalePoint:
    """d2 under one condition (workers, users in Redis): medians of two wrk runs."""

    label: str
    rps: float
    app_us: float
    redis_us: float
    redis_mib: float


#: The issue 12 targets on CPU ratios (medians of rounds of one run).
TARGETS = (("d2", "b2", 0.90), ("d2", "c", 1.00), ("d", "b", 0.85), ("e", "b", 0.80))
#: The most Redis round trips per protected request, per route.
MAX_TRIPS = (("d2", 1), ("d", 3), ("e", 3))


@dataclass(frozen=True)
class Report:
    smoke: bool
    machine: dict[str, str]
    routes: list[RouteResult]
    logins: dict[str, Any]
    refresh: list[dict[str, float]]
    memory: dict[str, dict[str, int]]
    profiles: list[Profile]
    scaling: list[ScalePoint]
    seconds: float

    def route(self, key: str) -> RouteResult:
        return next(r for r in self.routes if r.key == key)

    def ratio(self, top: str, bottom: str) -> float:
        """Median over rounds of the per-round throughput ratio (neighbours in time)."""
        a, b = self.route(top).runs, self.route(bottom).runs
        return statistics.median(x.wrk.rps / y.wrk.rps for x, y in zip(a, b, strict=True))

    def cpu_ratio(self, top: str, bottom: str) -> float:
        """``bottom``'s server CPU per request over ``top``'s: the throughput ratio a machine
        busy only with these would show, and far less sensitive to other load."""
        return self.route(bottom).cpu_us / self.route(top).cpu_us


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(report: Report) -> str:
    out: list[str] = []
    add = out.append
    if report.smoke:
        add("_Smoke run: the harness works; these short-run numbers are not comparable._\n")

    add("### 1. Per request\n")
    add(
        "| | route | req/s | p50 ms | p99 ms | app CPU µs/req | Redis CPU µs/req "
        "| Redis round trips | Redis commands |"
    )
    add("|---|---|--:|--:|--:|--:|--:|--:|---|")
    for r in report.routes:
        add(
            f"| {r.key} | {r.label} | {r.rps:,.0f} | {r.p50:.2f} | {r.p99:.2f} "
            f"| {r.app_us:.0f} | {r.redis_us:.0f} "
            f"| {r.trips.per_request:g} | {r.trips.commands or '-'} |"
        )
    add("")
    ratios = [
        ("d2/b2", "ours vs. a session read, both on sealed sessions"),
        ("d2/c", "ours as the guide recommends vs. the peer on Flask-Session"),
        ("d/b", "ours logged in vs. any server-side session"),
        ("e/b", "ours with a rights check and a template vs. any server-side session"),
        ("d/c", "ours vs. the peer (Flask-Login)"),
        ("d/c2", "ours vs. the peer loading its user from Redis"),
        ("d2/b", "ours as the guide recommends vs. a Flask-Session read"),
        ("d3/d2", "ours on a 3-primary Redis Cluster vs. on one Redis"),
    ]
    goals = {f"{top}/{bottom}": target for top, bottom, target in TARGETS}
    add("| ratio | meaning | req/s ratio | CPU ratio | target (CPU ratio) |")
    add("|---|---|--:|--:|---|")
    for name, meaning in ratios:
        top, bottom = name.split("/")
        cpu = report.cpu_ratio(top, bottom)
        target = goals.get(name)
        goal = f"≥ {target:.2f}: {_mark(cpu >= target)}" if target is not None else "-"
        add(f"| {name} | {meaning} | {report.ratio(top, bottom):.2f} | {cpu:.2f} | {goal} |")
    add("")

    add("### 2. Per login\n")
    lg = report.logins
    add(
        "| concurrent users | logins | logins/s | p50 ms | p99 ms | wiki round trips per login "
        "| Redis round trips per login | app CPU ms per login | load generator + dev wiki CPU ms per login |"
    )
    add("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    add(
        f"| {lg['users']} | {lg['logins']} | {lg['per_second']:.1f} | {lg['p50_ms']:.1f} "
        f"| {lg['p99_ms']:.1f} | {lg['wiki_round_trips']:g} "
        f"(token {lg['token_calls']:g}, profile {lg['profile_calls']:g}) "
        f"| {lg['redis_round_trips']:g} ({lg['redis_commands']}) "
        f"| {lg['app_cpu_ms']:.2f} | {lg['bench_cpu_ms']:.2f} |"
    )
    add("")

    add("### 3. Per refresh\n")
    add(
        "| trial | refreshes the wiki saw | p50 / p99 ms, token expired | p50 / p99 ms, token fresh | added p99 ms |"
    )
    add("|--:|--:|--:|--:|--:|")
    for number, t in enumerate(report.refresh, 1):
        add(
            f"| {number} | {t['refreshes']:.0f} | {t['p50_expired_ms']:.1f} / {t['p99_expired_ms']:.1f} "
            f"| {t['p50_normal_ms']:.1f} / {t['p99_normal_ms']:.1f} "
            f"| {t['p99_expired_ms'] - t['p99_normal_ms']:+.1f} |"
        )
    add("")

    add("### 4. Per session\n")
    add("| user | session | login record | total | single-use state (first 10 min) |")
    add("|---|--:|--:|--:|--:|")
    for user, sizes in report.memory.items():
        total = sizes["session"] + sizes["login record"]
        add(
            f"| {user} | {sizes['session']:,} B | {sizes['login record']:,} B | {total:,} B "
            f"| {sizes['single-use state (10 min)']:,} B |"
        )
    add("")

    add("### 5. Where the CPU goes (in-process, cProfile)\n")
    add(
        "CPU µs per request without the profiler; then each part's share of own time "
        "(tottime) under cProfile, and the heaviest functions.\n"
    )
    for p in report.profiles:
        parts = ", ".join(f"{where} {share:.0%}" for where, share in p.shares if share >= 0.01)
        add(f"- `{p.path}`: **{p.cpu_us:.0f} µs** per request. {parts}.")
        for fn, share in p.top:
            add(f"  - {share:.1%} `{fn}`")
    add("")

    add("### 6. Scaling (d2, ours on use_redis_sessions)\n")
    add("| condition | req/s | app CPU µs/req | Redis CPU µs/req | Redis used MiB |")
    add("|---|--:|--:|--:|--:|")
    for point in report.scaling:
        add(
            f"| {point.label} | {point.rps:,.0f} | {point.app_us:.0f} | {point.redis_us:.0f} "
            f"| {point.redis_mib:,.1f} |"
        )
    add("")

    add("### Targets\n")
    add("| target | measured | |")
    add("|---|---|---|")
    for top, bottom, target in TARGETS:
        cpu = report.cpu_ratio(top, bottom)
        add(f"| {top}/{bottom} ≥ {target:.2f} (CPU ratio) | {cpu:.2f} | {_mark(cpu >= target)} |")
    refreshes = [int(t["refreshes"]) for t in report.refresh]
    add(
        f"| one refresh per expired token, {len(refreshes)} trial(s) of 100 concurrent requests "
        f"| {', '.join(map(str, refreshes))} | {_mark(all(n == 1 for n in refreshes))} |"
    )
    trips = lg["wiki_round_trips"]
    add(f"| two wiki round trips per login | {trips:g} | {_mark(trips <= 2)} |")
    plain = report.memory["plain user"]
    sysop = report.memory["sysop"]
    plain_total = plain["session"] + plain["login record"]
    sysop_total = sysop["session"] + sysop["login record"]
    add(
        f"| ≤ 4 KiB of Redis per plain user | {plain_total / KIB:.2f} KiB | {_mark(plain_total <= 4 * KIB)} |"
    )
    add(
        f"| ≤ 8 KiB of Redis per sysop | {sysop_total / KIB:.2f} KiB | {_mark(sysop_total <= 8 * KIB)} |"
    )
    for key, most in MAX_TRIPS:
        r = report.route(key)
        words = "= 1" if most == 1 else f"≤ {most}"
        add(
            f"| Redis round trips per protected request ({key}) {words} "
            f"| {r.trips.per_request:g} | {_mark(r.trips.per_request <= most)} |"
        )
    add("")

    add("### Machine\n")
    for key, text in report.machine.items():
        add(f"- {key}: {text}")
    add(f"- run took {report.seconds:.0f} s")
    return "\n".join(out)
