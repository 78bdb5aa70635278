"""The HTTP facade's part of the report: HTTP to HTTP against the LiteLLM proxy and Portkey."""

from __future__ import annotations

import math
from collections.abc import Callable

from bench.results import STREAM_CONCURRENCY, UNARY_CONCURRENCY, SystemResult

GATEWAY_HTTP = "gateway-http"
LITELLM = "litellm"
PORTKEY = "portkey"
DIRECT = "direct"

_Metric = Callable[[SystemResult], float]


def _added_p50(direct: SystemResult | None) -> _Metric:
    def added(r: SystemResult) -> float:
        if direct is None or not r.ran:
            return float("nan")
        return r.p50() - direct.p50()

    return added


def _div(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b) or b <= 0:
        return float("nan")
    return a / b


def _ratio(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return "-"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def _targets(
    direct: SystemResult | None,
) -> list[tuple[str, str, str, _Metric, Callable[[float], bool], bool]]:
    """(name, goal, peer key, metric, ok on the ratio or value, is a ratio) of issue 12."""
    c32 = UNARY_CONCURRENCY[0]
    added = _added_p50(direct)
    return [
        (
            f"unary c={c32} vs Portkey",
            "≥ 1.5x",
            PORTKEY,
            lambda r: r.unary_rps(c32),
            lambda v: v >= 1.5,
            True,
        ),
        (
            f"unary c={c32} vs LiteLLM proxy",
            "≥ 8x",
            LITELLM,
            lambda r: r.unary_rps(c32),
            lambda v: v >= 8,
            True,
        ),
        (
            f"stream 32 tok, c={STREAM_CONCURRENCY} vs Portkey",
            "≥ 1x",
            PORTKEY,
            lambda r: r.stream_tps(32),
            lambda v: v >= 1,
            True,
        ),
        ("added p50, c=1, vs Portkey's", "≤ Portkey's", PORTKEY, added, lambda v: v <= 0, False),
    ]


def http_rows(by_key: dict[str, SystemResult]) -> list[str]:
    """The ratios and issue 12's targets of the HTTP facade's row, or why there are none."""
    gw = by_key.get(GATEWAY_HTTP)
    if gw is None or not gw.ran:
        return ["(the HTTP facade was not measured)"]
    direct = by_key.get(DIRECT)
    lines = ["| target | goal | llm-gateway (HTTP) | |", "|---|---|---|---|"]
    for name, goal, peer_key, metric, ok, is_ratio in _targets(direct):
        peer = by_key.get(peer_key)
        if peer is None or not peer.ran:
            lines.append(f"| {name} | {goal} | - | **n/a** |")
            continue
        mine, theirs = metric(gw), metric(peer)
        if is_ratio:
            value = _div(mine, theirs)
            shown = _ratio(value)
        else:
            value = mine - theirs  # added p50: the facade's minus the peer's, ms
            shown = f"{mine:.2f} ms vs {theirs:.2f} ms"
        status = "n/a" if math.isnan(value) else ("PASS" if ok(value) else "MISS")
        lines.append(f"| {name} | {goal} | {shown} | **{status}** |")
    return lines
