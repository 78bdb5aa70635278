"""Measuring the started systems in interleaved rounds.

Every system is started (one after the other, so each one's start-up time is its own) and
kept running idle; then each round measures every system in turn. On a machine shared with
other work, a disturbance then hits the rounds of several systems rather than all the points
of one, and each point reports the median round.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import processes, systems
from bench.loadgen import Caller, LatencyResult, LoadResult, measure_latency, measure_load
from bench.otlp_sink import SPANS_LINE
from bench.results import STREAM_CONCURRENCY, STREAM_TOKENS, UNARY_CONCURRENCY, SystemResult


def log(message: str) -> None:
    """One progress line on stdout."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass(frozen=True)
class Budget:
    """How much to measure per round."""

    rounds: int
    seconds: float
    warmup_s: float
    latency_requests: int
    latency_warmup: int


@dataclass
class Live:
    """A started system (or the direct upstream) and what was measured on it so far."""

    system: systems.System
    managed: processes.Managed | None
    helpers: list[processes.Managed]
    result: SystemResult
    caller: Caller | None = None
    samples: list[float] = field(default_factory=list)
    latency_errors: int = 0
    points: dict[str, list[LoadResult]] = field(default_factory=dict)
    failed: str = ""


async def settle(managed: processes.Managed | None, *, limit_s: float = 5.0) -> None:
    """Wait (at most ``limit_s``) until the system is idle: below 10 % of a core for 100 ms."""
    if managed is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    used = managed.cpu_seconds()
    while loop.time() < deadline:
        await asyncio.sleep(0.1)
        now = managed.cpu_seconds()
        if now - used < 0.01:
            return
        used = now


async def start_system(
    system: systems.System, *, sut_cpus: str, helper_cpus: str, log_dir: Path
) -> Live:
    """Start a system (and its helpers) and wait until it serves; failures are recorded."""
    result = SystemResult(system.key, system.label, system.protocol)
    helpers = [
        processes.start(name, list(cmd), cpus=helper_cpus, log_dir=log_dir, cwd=systems.REPO_DIR)
        for name, cmd in system.sidecars
    ]
    managed = None
    if system.command:
        managed = processes.start(
            system.key,
            list(system.command),
            cpus=sut_cpus,
            log_dir=log_dir,
            env=system.env,
            cwd=systems.REPO_DIR,
        )
    live = Live(system, managed, helpers, result)
    try:
        if managed is not None:
            result.serving_s = await systems.wait_ready(system, managed)
            log(f"{system.key}: serving after {result.serving_s:.2f} s")
        live.caller = system.caller()
    except (RuntimeError, TimeoutError) as exc:
        live.failed = str(exc).splitlines()[0][:200]
        log(f"{system.key}: failed: {exc}")
        stop_system(live)
    return live


def stop_system(live: Live) -> None:
    """Stop the system and its helpers; note the spans an OTLP sink received."""
    if live.managed is not None and live.managed.alive():
        live.managed.sample_rss()
        processes.stop(live.managed)
    for helper in live.helpers:
        if helper.alive():
            processes.stop(helper)
        for line in reversed(helper.log_tail(5).splitlines()):
            if line.startswith(SPANS_LINE):
                spans = line.removeprefix(SPANS_LINE).strip()
                live.result.note = f"{spans} spans exported over OTLP/gRPC to the sink"


def _points() -> list[tuple[str, int, int]]:
    """(name, concurrency, stream tokens or 0) of every load point, in order."""
    unary = [(f"unary c={c}", c, 0) for c in UNARY_CONCURRENCY]
    streams = [(f"stream {t} tok", STREAM_CONCURRENCY, t) for t in STREAM_TOKENS]
    return unary + streams


async def measure_round(
    live: Live, upstream: processes.Managed, budget: Budget, round_no: int
) -> None:
    """One round of every measurement on one system."""
    assert live.caller is not None
    managed = live.managed

    def cpu() -> dict[str, float]:
        used = {"upstream": upstream.cpu_seconds()}
        if managed is not None:
            used["sut"] = managed.cpu_seconds()
        return used

    key = live.system.key
    await settle(managed)
    requests = max(1, budget.latency_requests // budget.rounds)
    latency = await measure_latency(live.caller, requests=requests, warmup=budget.latency_warmup)
    live.samples += latency.samples_ms
    live.latency_errors += latency.errors
    line = [f"p50 {latency.p50_ms:.2f} ms"]
    for name, concurrency, tokens in _points():
        await settle(managed)
        point = await measure_load(
            live.caller,
            concurrency=concurrency,
            seconds=budget.seconds,
            warmup_s=budget.warmup_s,
            stream_tokens=tokens,
            cpu=cpu,
        )
        live.points.setdefault(name, []).append(point)
        rate = point.tokens_per_second if tokens else point.per_second
        line.append(f"{name} {rate:,.0f}{' tok/s' if tokens else ' req/s'}")
        if point.errors:
            line.append(f"({point.errors} errors, first: {point.first_error})")
        if managed is not None:
            managed.sample_rss()
    log(f"{key} round {round_no + 1}/{budget.rounds}: " + ", ".join(line))


def _median(points: list[LoadResult], *, tokens: bool) -> LoadResult:
    ordered = sorted(points, key=lambda p: p.tokens_per_second if tokens else p.per_second)
    return ordered[len(ordered) // 2]


def finish(live: Live) -> SystemResult:
    """Fold the rounds into the result: pooled latency samples, the median round per point."""
    result = live.result
    if live.failed and not live.samples:
        result.note = live.failed
        return result
    if live.failed:
        result.note = f"stopped after a failure: {live.failed}"
    result.latency = LatencyResult(live.samples, live.latency_errors)
    for name, concurrency, tokens in _points():
        points = live.points.get(name, [])
        if not points:
            continue
        median = _median(points, tokens=bool(tokens))
        if tokens:
            result.streams[tokens] = median
        else:
            result.unary[concurrency] = median
        result.round_rates[name] = [p.tokens_per_second if tokens else p.per_second for p in points]
    if live.managed is not None:
        live.managed.sample_rss()
        peaks = live.managed.peak_rss
        result.rss_mb = max(peaks.values(), default=float("nan"))
        result.rss_total_mb = sum(peaks.values())
        result.processes = len(peaks)
    return result
