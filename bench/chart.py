"""The PNG chart of a benchmark run (matplotlib, no display needed)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.report import DIRECT, GATEWAY, PEERS, added_ms
from bench.results import STREAM_CONCURRENCY, STREAM_TOKENS, UNARY_CONCURRENCY, SystemResult

_GATEWAY_COLOR = "#1f6fb2"
_TELEMETRY_COLOR = "#6fa8dc"
_OTHER_COLOR = "#9a9a9a"
_DIRECT_COLOR = "#d0d0d0"
_METRIC_COLORS = ("#1f6fb2", "#e08a1e", "#3a9a4a")
_TARGET_COLOR = "#c0392b"
#: Title, unit, rows, (series name, metric) pairs, and the issue's target (a line) or None.
_Panel = tuple[
    str, str, Sequence[SystemResult], list[tuple[str, Callable[..., float]]], float | None
]


def _color(key: str) -> str:
    if key == GATEWAY:
        return _GATEWAY_COLOR
    if key.startswith(GATEWAY):
        return _TELEMETRY_COLOR
    if key == DIRECT:
        return _DIRECT_COLOR
    return _OTHER_COLOR


def _label(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    if abs(value) >= 10:
        return f"{value:.1f}{unit}"
    return f"{value:.2f}{unit}"


def write_chart(results: Sequence[SystemResult], path: Path, title: str) -> None:
    """Draw the measured points (one panel per metric) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = [r for r in results if r.ran]
    direct = next((r for r in ran if r.key == DIRECT), None)
    systems = [r for r in ran if r.key != DIRECT]
    panels: list[_Panel] = [
        (
            "Added latency at concurrency 1 (ms, lower is better)",
            " ms",
            systems,
            [
                ("p50", lambda r: added_ms(r, direct, "p50")),
                ("p99", lambda r: added_ms(r, direct, "p99")),
            ],
            1.5,
        ),
        (
            "Unary throughput (req/s, higher is better)",
            "",
            ran,
            [(f"c={c}", lambda r, c=c: r.unary_rps(c)) for c in UNARY_CONCURRENCY],
            None,
        ),
        (
            f"Streamed tokens/s at concurrency {STREAM_CONCURRENCY} (higher is better)",
            "",
            ran,
            [(f"{t}-token streams", lambda r, t=t: r.stream_tps(t)) for t in STREAM_TOKENS],
            None,
        ),
        (
            "Peak RSS of one process (MB, lower is better)",
            " MB",
            systems,
            [("RSS", lambda r: r.rss_mb)],
            150.0,
        ),
        (
            "Start to serving (s, lower is better)",
            " s",
            systems,
            [("seconds", lambda r: r.serving_s)],
            2.0,
        ),
    ]
    fig, grid = plt.subplots(3, 2, figsize=(16, 12.5))
    axes = list(grid.flat)
    for ax, (panel_title, unit, rows, series, target) in zip(axes, panels, strict=False):
        _panel(ax, panel_title, unit, rows, series)
        if target is not None:
            ax.axvline(
                target,
                color=_TARGET_COLOR,
                linestyle="--",
                linewidth=1,
                label=f"llm-gateway target: {target:g}{unit}",
            )
            ax.legend(loc="upper right", fontsize=8)
    _ratio_panel(axes[len(panels)], {r.key: r for r in ran})
    fig.suptitle(title, fontsize=13, fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(
    ax: object,
    title: str,
    unit: str,
    rows: Sequence[SystemResult],
    series: list[tuple[str, Callable[..., float]]],
) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    height = 0.8 / len(series)
    labels = [r.label for r in rows]
    largest = 0.0
    for i, (name, metric) in enumerate(series):
        values = [metric(r) for r in rows]
        shown = [0.0 if math.isnan(v) else v for v in values]
        largest = max([largest, *shown])
        offsets = [y - 0.4 + height * (i + 0.5) for y in range(len(rows))]
        colors = [_color(r.key) for r in rows]
        bars = ax.barh(
            offsets,
            shown,
            height=height * 0.9,
            color=colors,
            alpha=1.0 if i == 0 else 0.6,
            edgecolor="black",
            linewidth=0.4,
        )
        for bar, value in zip(bars, values, strict=True):
            text = _label(value, unit) + (f"  ({name})" if len(series) > 1 else "")
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                " " + text,
                va="center",
                fontsize=8,
            )
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    smallest = min([0.0, *(m(r) for _, m in series for r in rows if not math.isnan(m(r)))])
    ax.set_xlim(smallest * 1.35, largest * 1.35 if largest > 0 else 1)
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def _ratio_panel(ax: object, by_key: dict[str, SystemResult]) -> None:
    """llm-gateway's throughput as a multiple of each peer's (log scale, 1x marked)."""
    from matplotlib.axes import Axes
    from matplotlib.ticker import FuncFormatter

    assert isinstance(ax, Axes)
    gateway = by_key.get(GATEWAY)
    metrics: list[tuple[str, Callable[[SystemResult], float]]] = [
        (f"unary c={UNARY_CONCURRENCY[0]}", lambda r: r.unary_rps(UNARY_CONCURRENCY[0])),
        *((f"{t}-token streams", (lambda r, t=t: r.stream_tps(t))) for t in STREAM_TOKENS),
    ]
    peers = [by_key[k] for k in PEERS if k in by_key]
    ax.set_title("llm-gateway throughput ÷ peer (higher is better)", fontsize=10, loc="left")
    if gateway is None or not peers:
        ax.text(0.5, 0.5, "llm-gateway not measured", ha="center", va="center")
        ax.set_axis_off()
        return
    height = 0.8 / len(metrics)
    for i, (name, metric) in enumerate(metrics):
        ratios = []
        for peer in peers:
            mine, theirs = metric(gateway), metric(peer)
            ratios.append(mine / theirs if theirs > 0 and not math.isnan(mine) else math.nan)
        offsets = [y - 0.4 + height * (i + 0.5) for y in range(len(peers))]
        shown = [r if not math.isnan(r) else 0.0 for r in ratios]
        bars = ax.barh(
            offsets, shown, height=height * 0.9, color=_METRIC_COLORS[i % len(_METRIC_COLORS)]
        )
        for bar, value in zip(bars, ratios, strict=True):
            ax.text(
                max(bar.get_width(), 0.1),
                bar.get_y() + bar.get_height() / 2,
                f" {value:.2f}x  ({name})" if not math.isnan(value) else " -",
                va="center",
                fontsize=8,
            )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_yticks(range(len(peers)), [f"vs {p.label}" for p in peers])
    ax.invert_yaxis()
    largest = max(
        [metric(gateway) / metric(p) for p in peers for _, metric in metrics if metric(p) > 0]
        or [1.0]
    )
    ax.set_xlim(0.1, max(10.0, largest * 4))
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.set_axisbelow(True)
