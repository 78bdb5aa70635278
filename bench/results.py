"""What one benchmark run measured, per system, plus the run's context."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.loadgen import LatencyResult, LoadResult

#: Concurrency of the unary throughput points.
UNARY_CONCURRENCY = (32, 128)
#: Tokens per stream of the streaming points (all at concurrency STREAM_CONCURRENCY).
STREAM_TOKENS = (32, 512)
STREAM_CONCURRENCY = 32
NAN = float("nan")


@dataclass
class SystemResult:
    """Everything measured for one system."""

    key: str
    label: str
    protocol: str
    #: Why the system was skipped or failed ("" when it ran).
    note: str = ""
    latency: LatencyResult | None = None
    unary: dict[int, LoadResult] = field(default_factory=dict)
    streams: dict[int, LoadResult] = field(default_factory=dict)
    #: Largest peak RSS of one process of the system, MiB.
    rss_mb: float = NAN
    #: Sum of the peak RSS of all its processes, MiB.
    rss_total_mb: float = NAN
    processes: int = 0
    serving_s: float = NAN
    #: Rate of each load point in each round (req/s or tok/s), by point name.
    round_rates: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        """True when the system was measured."""
        return self.latency is not None

    def p50(self) -> float:
        """Median latency at concurrency 1, ms."""
        return self.latency.p50_ms if self.latency else NAN

    def p99(self) -> float:
        """99th percentile latency at concurrency 1, ms."""
        return self.latency.p99_ms if self.latency else NAN

    def unary_rps(self, concurrency: int) -> float:
        """Unary requests per second at ``concurrency``."""
        point = self.unary.get(concurrency)
        return point.per_second if point else NAN

    def stream_tps(self, tokens: int) -> float:
        """Streamed tokens per second for ``tokens``-token streams."""
        point = self.streams.get(tokens)
        return point.tokens_per_second if point else NAN

    def errors(self) -> int:
        """Failed calls over every measurement."""
        total = self.latency.errors if self.latency else 0
        for point in (*self.unary.values(), *self.streams.values()):
            total += point.errors
        return total

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (no raw latency samples)."""
        data: dict[str, Any] = {
            "key": self.key,
            "label": self.label,
            "protocol": self.protocol,
            "note": self.note,
            "p50_ms": self.p50(),
            "p99_ms": self.p99(),
            "rss_mb": self.rss_mb,
            "rss_total_mb": self.rss_total_mb,
            "processes": self.processes,
            "serving_s": self.serving_s,
            "errors": self.errors(),
            "round_rates": self.round_rates,
        }
        data["unary"] = {str(c): _load_json(r) for c, r in self.unary.items()}
        data["streams"] = {str(t): _load_json(r) for t, r in self.streams.items()}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}


def _load_json(result: LoadResult) -> dict[str, Any]:
    data = asdict(result)
    data["per_second"] = result.per_second
    data["tokens_per_second"] = result.tokens_per_second
    return data


@dataclass
class RunContext:
    """Where and how the run happened (printed above the table)."""

    started: str
    command: str
    machine: str
    python: str
    cores: int
    client_cpus: str
    sut_cpus: str
    upstream_cpus: str
    pinned: bool
    load_before: str
    load_after: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
