"""`make bench`: start every system against one fake upstream, measure, report.

    .venv/bin/python -m bench.run               # everything (about 7-9 minutes on 2 cores)
    BENCH_QUICK=1 .venv/bin/python -m bench.run # a short smoke run

Environment knobs (all optional):
    BENCH_QUICK=1               one round, short windows, few latency samples
    BENCH_ROUNDS                rounds over all systems (default 3; each point: the median)
    BENCH_SYSTEMS=a,b           subset of: direct,baseline,gateway,gateway-telemetry,gateway-http,
                                gateway-redis,gateway-redis-20ms,litellm,portkey
    BENCH_SECONDS, BENCH_WARMUP_SECONDS   measured and warm-up window of each load point
    BENCH_LATENCY_REQUESTS      sequential requests for the concurrency-1 latency
    BENCH_STREAM_RATE           tokens/s of each upstream stream (0 = as fast as possible)
    BENCH_CLIENT_CPUS, BENCH_SUT_CPUS, BENCH_UPSTREAM_CPUS   taskset CPU lists
    BENCH_OUT                   output directory (default bench/results)
    BENCH_QUIET_WAIT_S          wait up to this long for the 1-minute load average to fall
                                below BENCH_QUIET_LOAD (default 1.5) before starting
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from bench import processes, rounds, systems
from bench.chart import write_chart
from bench.report import check_targets, render
from bench.results import RunContext, SystemResult

ALL_SYSTEMS = (
    "direct",
    "baseline",
    "gateway",
    "gateway-telemetry",
    "gateway-http",
    "gateway-redis",
    "gateway-redis-20ms",
    "litellm",
    "portkey",
)


@dataclass(frozen=True)
class Settings:
    """How long and how hard to measure; read from BENCH_* variables."""

    quick: bool
    rounds: int
    seconds: float
    warmup_s: float
    latency_requests: int
    latency_warmup: int
    stream_rate: float
    systems: tuple[str, ...]
    client_cpus: str
    sut_cpus: str
    upstream_cpus: str
    out_dir: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Defaults for a full run, shortened by BENCH_QUICK=1, overridden one by one."""
        env = dict(os.environ if env is None else env)
        quick = env.get("BENCH_QUICK", "") not in ("", "0")
        cores = sorted(os.sched_getaffinity(0))
        # Two cores or more: the load generator gets the first, everything measured the last.
        client, sut = (str(cores[0]), str(cores[-1])) if len(cores) >= 2 else ("", "")
        wanted = tuple(s for s in env.get("BENCH_SYSTEMS", ",".join(ALL_SYSTEMS)).split(",") if s)
        unknown = set(wanted) - set(ALL_SYSTEMS)
        if unknown:
            raise SystemExit(f"BENCH_SYSTEMS: unknown {sorted(unknown)}; known: {ALL_SYSTEMS}")
        return cls(
            quick=quick,
            rounds=int(env.get("BENCH_ROUNDS", "1" if quick else "3")),
            seconds=float(env.get("BENCH_SECONDS", "1.0" if quick else "3.0")),
            warmup_s=float(env.get("BENCH_WARMUP_SECONDS", "0.3" if quick else "1.0")),
            latency_requests=int(env.get("BENCH_LATENCY_REQUESTS", "100" if quick else "1500")),
            latency_warmup=int(env.get("BENCH_LATENCY_WARMUP", "20" if quick else "50")),
            stream_rate=float(env.get("BENCH_STREAM_RATE", "1000")),
            systems=wanted,
            client_cpus=env.get("BENCH_CLIENT_CPUS", client),
            sut_cpus=env.get("BENCH_SUT_CPUS", sut),
            upstream_cpus=env.get("BENCH_UPSTREAM_CPUS", sut),
            out_dir=Path(env.get("BENCH_OUT", str(systems.BENCH_DIR / "results"))),
        )


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def system_for(key: str, upstream_base: str) -> systems.System:
    """The system named ``key`` on a free port, pointed at the upstream."""
    port = processes.free_port()
    if key == "direct":
        return systems.direct(upstream_base)
    if key == "baseline":
        return systems.baseline(port, upstream_base)
    if key in systems.REDIS_ROWS:
        return systems.gateway_redis(key, port, upstream_base)
    if key in ("gateway", "gateway-telemetry"):
        return systems.gateway(port, upstream_base, telemetry=key == "gateway-telemetry")
    if key == "gateway-http":
        return systems.gateway_http(port, upstream_base)
    if key == "litellm":
        return systems.litellm_proxy(port, upstream_base)
    return systems.portkey(port, upstream_base)


async def run(settings: Settings) -> list[SystemResult]:
    """Start the upstream and every system, measure them in rounds, stop everything."""
    log_dir = settings.out_dir
    upstream_port = processes.free_port()
    upstream = processes.start(
        "upstream",
        list(systems.upstream_command(upstream_port, settings.stream_rate)),
        cpus=settings.upstream_cpus,
        log_dir=log_dir,
        cwd=systems.REPO_DIR,
    )
    upstream_base = f"http://127.0.0.1:{upstream_port}/v1"
    budget = rounds.Budget(
        rounds=settings.rounds,
        seconds=settings.seconds,
        warmup_s=settings.warmup_s,
        latency_requests=settings.latency_requests,
        latency_warmup=settings.latency_warmup,
    )
    live: list[rounds.Live] = []
    skipped: list[SystemResult] = []
    try:
        await systems.wait_ready(systems.direct(upstream_base), upstream)
        for key in settings.systems:
            system = system_for(key, upstream_base)
            reason = systems.unavailable_reason(system)
            if reason:
                rounds.log(f"{key}: skipped: {reason}")
                skipped.append(SystemResult(key, system.label, system.protocol, note=reason))
                continue
            rounds.log(f"{key}: starting")
            live.append(
                await rounds.start_system(
                    system,
                    sut_cpus=settings.sut_cpus,
                    helper_cpus=settings.client_cpus,
                    log_dir=log_dir,
                )
            )
        for round_no in range(settings.rounds):
            for item in live:
                if item.failed:
                    continue
                try:
                    await rounds.measure_round(item, upstream, budget, round_no)
                except Exception as exc:
                    item.failed = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                    tail = item.managed.log_tail() if item.managed else ""
                    rounds.log(f"{item.system.key}: failed: {item.failed}\n{tail}")
                    rounds.stop_system(item)
    finally:
        for item in live:
            if item.managed is not None and item.managed.alive():
                item.managed.sample_rss()
        results = [rounds.finish(item) for item in live]
        for item in live:
            rounds.stop_system(item)
        processes.stop(upstream)
    order = {key: i for i, key in enumerate(settings.systems)}
    return sorted(results + skipped, key=lambda r: order[r.key])


def wait_quiet(max_wait_s: float, threshold: float) -> None:
    """On a shared machine: wait (bounded) for the others' load to drop before measuring."""
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        load = float(_load().split()[0]) if _load() != "?" else 0.0
        if load < threshold:
            return
        rounds.log(f"load average {load:.2f} >= {threshold:g}: waiting for a quieter machine")
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))


def main() -> None:
    """Entry point of `make bench`."""
    settings = Settings.from_env()
    wait_quiet(
        float(os.environ.get("BENCH_QUIET_WAIT_S", "0")),
        float(os.environ.get("BENCH_QUIET_LOAD", "1.5")),
    )
    pinned = bool(settings.client_cpus) and bool(processes.taskset_prefix(settings.sut_cpus))
    if settings.client_cpus:
        # The load generator (this process) stays off the measured processes' core.
        os.sched_setaffinity(0, processes.parse_cpus(settings.client_cpus))
    ctx = RunContext(
        started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        command="make bench" + (" BENCH_QUICK=1" if settings.quick else ""),
        machine=_cpu_model(),
        python=platform.python_version(),
        cores=os.cpu_count() or 0,
        client_cpus=settings.client_cpus or "any",
        sut_cpus=settings.sut_cpus or "any",
        upstream_cpus=settings.upstream_cpus or "any",
        pinned=pinned,
        load_before=_load(),
        settings={
            "rounds": f"{settings.rounds} (each point: the median round)",
            "measured window": f"{settings.seconds:g} s",
            "warm-up": f"{settings.warmup_s:g} s",
            "latency samples": f"{settings.latency_requests} (pooled over the rounds)",
            "upstream stream rate": f"{settings.stream_rate:g} tok/s per stream "
            f"(offered {settings.stream_rate * 32:,.0f} tok/s at c=32)",
            "unary answer": "16 tokens",
        },
    )
    rounds.log(
        f"load generator on CPU {ctx.client_cpus}, systems on CPU {ctx.sut_cpus}, "
        f"upstream on CPU {ctx.upstream_cpus}; logs in {settings.out_dir}"
    )
    try:
        results = asyncio.run(run(settings))
    finally:
        processes.stop_all()
    ctx.load_after = _load()
    for r in results:
        if not r.ran:
            ctx.notes.append(f"{r.label} not measured: {r.note}")
        elif r.note:
            ctx.notes.append(f"{r.label}: {r.note}.")
    report = render(results, ctx)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    (settings.out_dir / "latest.md").write_text(report)
    write_chart(results, settings.out_dir / "latest.png", f"llm-gateway benchmark, {ctx.started}")
    _write_json(results, ctx, settings.out_dir / "latest.json")
    print(report)
    for check in check_targets({r.key: r for r in results}):
        print(f"{check.status:4}  {check.name}: {check.measured} (goal {check.goal})")
    rounds.log(f"wrote {settings.out_dir / 'latest.md'} and latest.png")


def _write_json(results: list[SystemResult], ctx: RunContext, path: Path) -> None:
    import orjson

    data = {"context": ctx.__dict__, "systems": [r.to_json() for r in results]}
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


if __name__ == "__main__":
    main()
