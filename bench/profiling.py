"""`make bench-profile`: where a system spends its CPU under load, sampled with py-spy.

    .venv/bin/python -m bench.profiling     # the gateway, unary at concurrency 32

Starts the fake upstream and one system pinned as in `make bench`, keeps a load point running
and records the system's process with py-spy (from bench/.venv-profile). Writes the hottest
functions, by own time and by time including callees, to bench/results/profile-SYSTEM-POINT.md
and the raw collapsed stacks next to it (flamegraph.pl or speedscope read them).

Environment knobs: BENCH_PROFILE_SYSTEM (gateway, gateway-telemetry, baseline, litellm),
BENCH_PROFILE_POINT (unary, stream32, stream512), BENCH_PROFILE_SECONDS (default 15),
BENCH_PROFILE_NATIVE=1 (include C frames), plus the CPU knobs of bench.run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench import processes, rounds, systems
from bench.loadgen import measure_load
from bench.run import Settings, system_for

PY_SPY = systems.BENCH_DIR / ".venv-profile" / "bin" / "py-spy"
_POINTS = {"unary": 0, "stream32": 32, "stream512": 512}
_TOP = 25
_RATE = 200


def _package(frame: str) -> str:
    """The top-level package (or module) of a ``function (path/file.py:line)`` frame."""
    path = frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
    if path.startswith("<") or "/" not in path:
        return path or "?"
    return path.split("/", 1)[0]


_Ranking = list[tuple[str, int]]


def summarize(collapsed: str, *, top: int = _TOP) -> tuple[int, _Ranking, _Ranking, _Ranking]:
    """Samples; the top functions by own samples and by samples including callees; and own
    samples by top-level package (where the time goes, one line per library)."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        # The first frame is the thread ("process 123:\"MainThread\""): not a function.
        functions = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not functions:
            continue
        total += count
        own[functions[-1]] += count
        packages[_package(functions[-1])] += count
        for name in set(functions):
            inclusive[name] += count
    return total, own.most_common(top), inclusive.most_common(top), packages.most_common(top)


def _table(title: str, rows: list[tuple[str, int]], total: int) -> list[str]:
    lines = [f"### {title}", "", "| share | samples | where |", "|---|---|---|"]
    for name, count in rows:
        lines.append(f"| {100.0 * count / total:.1f} % | {count} | `{name}` |")
    return [*lines, ""]


async def _profile(settings: Settings, key: str, point: str, seconds: float) -> Path:
    out = settings.out_dir
    upstream_port = processes.free_port()
    upstream = processes.start(
        "upstream",
        list(systems.upstream_command(upstream_port, settings.stream_rate)),
        cpus=settings.upstream_cpus,
        log_dir=out,
        cwd=systems.REPO_DIR,
    )
    base = f"http://127.0.0.1:{upstream_port}/v1"
    system = system_for(key, base)
    raw = out / f"profile-{key}-{point}.collapsed"
    live = None
    try:
        await systems.wait_ready(systems.direct(base), upstream)
        live = await rounds.start_system(
            system, sut_cpus=settings.sut_cpus, helper_cpus=settings.client_cpus, log_dir=out
        )
        if live.failed or live.managed is None or live.caller is None:
            raise SystemExit(f"{key} did not start: {live.failed}")
        # --gil: only the thread running Python (gRPC's poller thread blocks in C and would
        # count as busy); --nonblocking: never pause the process, so it runs at full speed.
        command = [str(PY_SPY), "record", "--pid", str(live.managed.pid), "--rate", str(_RATE)]
        command += ["--gil", "--nonblocking"]
        command += ["--duration", str(int(seconds)), "--format", "raw", "--output", str(raw)]
        if os.environ.get("BENCH_PROFILE_NATIVE", "") not in ("", "0"):
            command.append("--native")
        caller = live.caller
        try:
            # Warm up first, so the profile shows the steady state, not imports and first calls.
            await measure_load(caller, concurrency=32, seconds=2.0, warmup_s=0.0)
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            load = asyncio.create_task(
                measure_load(
                    caller,
                    concurrency=32,
                    seconds=seconds + 1.0,
                    warmup_s=0.0,
                    stream_tokens=_POINTS[point],
                )
            )
            _, err = await asyncio.to_thread(spy.communicate)
            result = await load
        finally:
            await caller.aclose()
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    finally:
        if live is not None:
            rounds.stop_system(live)
        processes.stop(upstream)
    total, own, inclusive, packages = summarize(raw.read_text())
    rate = (
        f"{result.per_second:,.0f} req/s"
        if not _POINTS[point]
        else f"{result.tokens_per_second:,.0f} tok/s"
    )
    report = [
        f"# Profile: {system.label}, {point} at concurrency 32",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; py-spy (--gil --nonblocking) at {_RATE} Hz "
        f"for {seconds:g} s on the process pinned to CPU {settings.sut_cpus or 'any'}; "
        f"{total} samples while it served {rate}. Shares are of the samples in which a thread "
        "held the GIL (Python running); time in the event loop's C code and gRPC's C core "
        "without the GIL is not sampled. Raw stacks: " + raw.name,
        "",
        *_table("By package (own time of the innermost Python frame)", packages, total),
        "`asyncio` at `runners.py` is the event loop itself (uvloop's C code and gRPC's Cython "
        "callbacks run under it without Python frames of their own).",
        "",
        *_table("By own time (the function itself)", own, total),
        *_table("Including callees", inclusive, total),
    ]
    path = out / f"profile-{key}-{point}.md"
    path.write_text("\n".join(report))
    return path


def main() -> None:
    """Entry point of `make bench-profile`."""
    settings = Settings.from_env()
    key = os.environ.get("BENCH_PROFILE_SYSTEM", "gateway")
    point = os.environ.get("BENCH_PROFILE_POINT", "unary")
    if point not in _POINTS:
        raise SystemExit(f"BENCH_PROFILE_POINT must be one of {sorted(_POINTS)}")
    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} is missing: run `make bench-profile`")
    if settings.client_cpus:
        os.sched_setaffinity(0, processes.parse_cpus(settings.client_cpus))
    seconds = float(os.environ.get("BENCH_PROFILE_SECONDS", "15"))
    try:
        path = asyncio.run(_profile(settings, key, point, seconds))
    finally:
        processes.stop_all()
    print(path.read_text())


if __name__ == "__main__":
    main()
