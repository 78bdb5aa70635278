"""The markdown report: the table, the ratios against the baseline and the peers, the targets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bench.processes import parse_cpus
from bench.report_http import http_rows
from bench.results import (
    NAN,
    STREAM_CONCURRENCY,
    STREAM_TOKENS,
    UNARY_CONCURRENCY,
    RunContext,
    SystemResult,
)

GATEWAY = "gateway"
TELEMETRY = "gateway-telemetry"
#: The Redis rows and the share of the memory-state throughput each should keep (issue 11).
REDIS_TARGETS = {"gateway-redis": 0.9, "gateway-redis-20ms": 0.7}
BASELINE = "baseline"
LITELLM = "litellm"
PORTKEY = "portkey"
DIRECT = "direct"
#: The systems the gateway is compared with, in table order.
PEERS = (BASELINE, LITELLM, PORTKEY)


def _num(value: float, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return "-"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def _div(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b) or b <= 0:
        return float("nan")
    return a / b


def added_ms(result: SystemResult, direct: SystemResult | None, pick: str) -> float:
    """Latency a system adds over calling the upstream directly (``pick``: p50 or p99)."""
    if direct is None or not result.ran:
        return float("nan")
    if pick == "p50":
        return result.p50() - direct.p50()
    return result.p99() - direct.p99()


@dataclass(frozen=True)
class TargetCheck:
    """One target of issue 7 (or 6) and whether this run met it."""

    name: str
    goal: str
    measured: str
    status: str  # PASS, MISS or n/a
    #: The same measure taken on the bare pass-through: is the target reachable here at all?
    reference: str = "-"


@dataclass(frozen=True)
class _Target:
    name: str
    goal: str
    measure: Callable[[SystemResult], float]
    ok: Callable[[float], bool]
    shown: Callable[[float], str]


def _targets(by_key: dict[str, SystemResult]) -> list[_Target]:
    nan = float("nan")
    direct = by_key.get(DIRECT)
    c32 = UNARY_CONCURRENCY[0]

    def vs(key: str, metric: Callable[[SystemResult], float]) -> Callable[[SystemResult], float]:
        peer = by_key.get(key)
        if peer is None or not peer.ran:
            return lambda r: nan
        return lambda r: _div(metric(r), metric(peer))

    def unary(r: SystemResult) -> float:
        return r.unary_rps(c32)

    targets = [
        _Target(
            "added latency p50, c=1",
            "≤ 1.5 ms",
            lambda r: added_ms(r, direct, "p50"),
            lambda v: v <= 1.5,
            lambda v: f"{v:.2f} ms",
        ),
        _Target(
            f"unary c={c32} vs bare pass-through",
            "≥ 0.8x",
            vs(BASELINE, unary),
            lambda v: v >= 0.8,
            _ratio,
        ),
        _Target(
            f"unary c={c32} vs Portkey", "≥ 2.5x", vs(PORTKEY, unary), lambda v: v >= 2.5, _ratio
        ),
    ]
    for tokens in STREAM_TOKENS:
        targets.append(
            _Target(
                f"streamed tok/s ({tokens}-token streams, c={STREAM_CONCURRENCY}) vs LiteLLM proxy",
                "≥ 10x",
                vs(LITELLM, lambda r, t=tokens: r.stream_tps(t)),  # type: ignore[misc]
                lambda v: v >= 10,
                _ratio,
            )
        )
    targets += [
        _Target(
            "one worker's peak RSS",
            "≤ 150 MB",
            lambda r: r.rss_mb,
            lambda v: v <= 150,
            "{:.0f} MB".format,
        ),
        _Target(
            "start to SERVING", "≤ 2 s", lambda r: r.serving_s, lambda v: v <= 2, "{:.2f} s".format
        ),
    ]
    telemetry = by_key.get(TELEMETRY)
    if telemetry is not None:

        def cost(r: SystemResult) -> float:
            # Only defined for the gateway: what turning its telemetry on costs.
            if r.key != GATEWAY or not telemetry.ran:
                return nan
            return (1 - _div(telemetry.unary_rps(c32), r.unary_rps(c32))) * 100

        targets.append(
            _Target(
                f"telemetry on: unary c={c32} throughput cost (issue 6)",
                "≤ 10 %",
                cost,
                lambda v: v <= 10,
                "{:.1f} %".format,
            )
        )
    for key, share in REDIS_TARGETS.items():
        redis_row = by_key.get(key)
        if redis_row is None:
            continue

        def kept(r: SystemResult, row: SystemResult = redis_row) -> float:
            # Only defined for the gateway: the share of its throughput kept with Redis state.
            if r.key != GATEWAY or not row.ran:
                return nan
            return _div(row.unary_rps(c32), r.unary_rps(c32))

        targets.append(
            _Target(
                f"{redis_row.label}: unary c={c32} vs memory state (issue 11)",
                f"≥ {share}x",
                kept,
                lambda v, share=share: v >= share,  # type: ignore[misc]
                _ratio,
            )
        )
    return targets


def check_targets(by_key: dict[str, SystemResult]) -> list[TargetCheck]:
    """The issue's targets on the gateway's row (telemetry off), with the baseline's value."""
    gw = by_key.get(GATEWAY)
    if gw is None or not gw.ran:
        return [TargetCheck("gateway measured", "the gateway serves", "not run", "n/a")]
    base = by_key.get(BASELINE)
    checks = []
    for target in _targets(by_key):
        value = target.measure(gw)
        reference = target.measure(base) if base is not None and base.ran else float("nan")
        checks.append(
            TargetCheck(
                target.name,
                target.goal,
                "-" if math.isnan(value) else target.shown(value),
                "n/a" if math.isnan(value) else ("PASS" if target.ok(value) else "MISS"),
                "-" if math.isnan(reference) else target.shown(reference),
            )
        )
    return checks


def _rows(results: list[SystemResult], direct: SystemResult | None) -> list[str]:
    head = (
        "| system | proto | added p50 ms | added p99 ms | "
        + " | ".join(f"unary c={c} req/s" for c in UNARY_CONCURRENCY)
        + " | "
        + " | ".join(f"stream {t} tok, c={STREAM_CONCURRENCY}: tok/s" for t in STREAM_TOKENS)
        + " | peak RSS MB | start→SERVING s | errors |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if not r.ran:
            lines.append(f"| {r.label} | {r.protocol} | skipped: {r.note} |" + " |" * 9)
            continue
        if r.key == DIRECT:
            added = [f"({r.p50():.2f} abs)", f"({r.p99():.2f} abs)"]
        else:
            added = [_num(added_ms(r, direct, "p50"), 2), _num(added_ms(r, direct, "p99"), 2)]
        cells = [
            r.label,
            r.protocol,
            *added,
            *(_num(r.unary_rps(c)) for c in UNARY_CONCURRENCY),
            *(_stream_cell(r, direct, t) for t in STREAM_TOKENS),
            "-" if r.key == DIRECT else _rss(r),
            "-" if r.key == DIRECT else _num(r.serving_s, 2),
            str(r.errors()),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _stream_cell(r: SystemResult, direct: SystemResult | None, tokens: int) -> str:
    cell = _num(r.stream_tps(tokens))
    if (
        r.key != DIRECT
        and direct is not None
        and r.stream_tps(tokens) >= 0.9 * direct.stream_tps(tokens)
    ):
        cell += " *"
    return cell


def _rss(r: SystemResult) -> str:
    if r.processes > 1:
        return f"{r.rss_mb:.0f} ({r.processes} procs: {r.rss_total_mb:.0f})"
    return _num(r.rss_mb)


def _ratio_rows(by_key: dict[str, SystemResult]) -> list[str]:
    gw = by_key.get(GATEWAY)
    direct = by_key.get(DIRECT)
    if gw is None or not gw.ran:
        return ["(the gateway was not measured: no ratios)"]
    metrics: list[tuple[str, Callable[[SystemResult], float], bool]] = [
        ("added p50", lambda r: added_ms(r, direct, "p50"), False),
        *((f"unary c={c}", (lambda r, c=c: r.unary_rps(c)), True) for c in UNARY_CONCURRENCY),
        *((f"stream {t} tok", (lambda r, t=t: r.stream_tps(t)), True) for t in STREAM_TOKENS),
        ("peak RSS", lambda r: r.rss_mb, False),
        ("start→SERVING", lambda r: r.serving_s, False),
    ]
    head = "| llm-gateway vs | " + " | ".join(name for name, _, _ in metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 1)]
    for key in PEERS:
        peer = by_key.get(key)
        if peer is None or not peer.ran:
            continue
        cells = []
        for _, metric, higher_better in metrics:
            mine, theirs = metric(gw), metric(peer)
            cells.append(_ratio(_div(mine, theirs) if higher_better else _div(theirs, mine)))
        lines.append(f"| {peer.label} | " + " | ".join(cells) + " |")
    return lines


def _telemetry_rows(
    by_key: dict[str, SystemResult], other: str = TELEMETRY, heads: tuple[str, str] = ("off", "on")
) -> list[str]:
    off, on = by_key.get(GATEWAY), by_key.get(other)
    if off is None or on is None or not off.ran or not on.ran:
        return ["(not measured: both gateway rows are needed)"]
    direct = by_key.get(DIRECT)
    metrics: list[tuple[str, Callable[[SystemResult], float], int]] = [
        ("added p50 ms", lambda r: added_ms(r, direct, "p50"), 2),
        *((f"unary c={c} req/s", (lambda r, c=c: r.unary_rps(c)), 0) for c in UNARY_CONCURRENCY),
        *((f"stream {t} tok tok/s", (lambda r, t=t: r.stream_tps(t)), 0) for t in STREAM_TOKENS),
        ("peak RSS MB", lambda r: r.rss_mb, 0),
    ]
    a_head, b_head = heads
    lines = [f"| metric | {a_head} | {b_head} | ratio |", "|---|---|---|---|"]
    for name, metric, digits in metrics:
        a, b = metric(off), metric(on)
        lines.append(f"| {name} | {_num(a, digits)} | {_num(b, digits)} | {_ratio(_div(b, a))} |")
    return lines


def _cpu_rows(results: list[SystemResult]) -> list[str]:
    lines = [
        "| system | point | sut % | upstream % | client % |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        points = [(f"unary c={c}", p) for c, p in r.unary.items()]
        points += [(f"stream {t} tok", p) for t, p in r.streams.items()]
        for name, p in points:
            cpu = [_num(p.cpu_percent.get(role, NAN)) for role in ("sut", "upstream", "client")]
            lines.append(f"| {r.label} | {name} | " + " | ".join(cpu) + " |")
    return lines


def render(results: list[SystemResult], ctx: RunContext) -> str:
    """The whole report as markdown."""
    by_key = {r.key: r for r in results}
    direct = by_key.get(DIRECT)
    checks = check_targets(by_key)
    pin = "pinned with taskset" if ctx.pinned else "NOT pinned (no taskset or too few cores)"
    out = [
        "# llm-gateway benchmark",
        "",
        f"Run {ctx.started} with `{ctx.command}` on {ctx.machine}, {ctx.cores} cores, "
        f"Python {ctx.python}. Load average before: {ctx.load_before}; after: {ctx.load_after}.",
        "",
        f"Cores ({pin}): load generator on {_cores(ctx.client_cpus)}; system under test on "
        f"{_cores(ctx.sut_cpus)}; fake upstream on {_cores(ctx.upstream_cpus)}"
        + (
            ", sharing the system's core."
            if ctx.upstream_cpus == ctx.sut_cpus and ctx.sut_cpus != "any"
            else "."
        ),
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in ctx.settings.items()) + ".",
        "",
        "## Results",
        "",
        *_rows(results, direct),
        "",
        "Added latency is each system's latency at concurrency 1 minus calling the fake upstream "
        "directly over HTTP (first row, absolute); for the gRPC rows it includes the gRPC "
        "client's own cost, which the bare pass-through row shows. Throughput is a closed loop "
        "at the given concurrency; streamed tok/s counts tokens as they reach the client. "
        "`*`: within 10 % of calling the upstream directly, i.e. at the rate the upstream "
        "offers: that system's own ceiling is higher, so llm-gateway's ratio against it is an "
        "upper bound.",
        "",
        "## Ratios (the result; > 1x means llm-gateway is better)",
        "",
        *_ratio_rows(by_key),
        "",
        "Throughput ratios are gateway ÷ peer; latency, RSS and start-up ratios are "
        "peer ÷ gateway.",
        "",
        "## Observability overhead (llm-gateway, telemetry off vs on)",
        "",
        "On = Prometheus endpoint serving plus spans (head-sampled at BENCH_TRACE_SAMPLE, default "
        "10 %) exported over OTLP/gRPC (batched) to "
        "a sink on the load generator's core.",
        "",
        *_telemetry_rows(by_key, TELEMETRY, ("telemetry off", "telemetry on")),
        "",
        "## HTTP facade, HTTP to HTTP (issue 12)",
        "",
        *http_rows(by_key),
        "",
        "## State in Redis (llm-gateway, memory state vs Redis; issue 11)",
        "",
        "Each Redis row runs its own redis-server; for the 20 ms row a delay proxy "
        "(bench/delay_proxy.py) adds 20 ms each way. Ratios are Redis ÷ memory.",
        "",
        *(
            line
            for key in REDIS_TARGETS
            for line in (
                *_telemetry_rows(by_key, key, ("memory state", key)),
                "",
            )
        ),
        "## Targets (issue 7; telemetry cost: issue 6)",
        "",
        "| target | goal | llm-gateway | | bare pass-through, for reference |",
        "|---|---|---|---|---|",
        *(
            f"| {c.name} | {c.goal} | {c.measured} | **{c.status}** | {c.reference} |"
            for c in checks
        ),
        "",
        "## CPU use during the throughput points (100 % = one core)",
        "",
        *_cpu_rows([r for r in results if r.ran]),
        "",
    ]
    if ctx.notes:
        out += ["## Notes", "", *(f"- {n}" for n in ctx.notes), ""]
    return "\n".join(out)


def _cores(cpus: str) -> str:
    if cpus in ("", "any"):
        return "any CPU (not pinned)"
    count = len(parse_cpus(cpus))
    return f"CPU {cpus} ({count} core{'s' if count > 1 else ''})"
