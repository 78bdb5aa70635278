"""Live per-target statistics: a sliding window of recent calls, last error, calls in flight."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

#: Length of the statistics window, seconds (``Health`` reports "the last minute").
WINDOW_S = 60.0
#: Calls kept at most per target, so a busy target's window stays small.
_MAX_SAMPLES = 4096


@dataclass(frozen=True, slots=True)
class WindowStats:
    """A snapshot of one window."""

    #: Median latency of successful calls; ``None`` when there were none.
    p50_s: float | None
    p95_s: float | None
    #: Share of successful calls, 0 to 1; 1 when there were none.
    success_rate: float
    calls: int


def _percentile(sorted_values: list[float], q: float) -> float:
    # Nearest rank: the smallest value with at least q of the samples at or below it.
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class LatencyWindow:
    """Calls of the last ``window_s`` seconds: latency percentiles and success rate.

    Percentiles use successful calls only: a refused connection fails in microseconds and
    would make a dead target look fast to latency-based balancing.
    """

    def __init__(self, clock: Callable[[], float], window_s: float = WINDOW_S) -> None:
        """Create an empty window read on ``clock`` (monotonic seconds)."""
        self._clock = clock
        self.window_s = window_s
        self._samples: deque[tuple[float, float, bool]] = deque(maxlen=_MAX_SAMPLES)

    def add(self, latency_s: float, *, ok: bool) -> None:
        """Record one finished call."""
        self._samples.append((self._clock(), latency_s, ok))

    def _prune(self) -> None:
        horizon = self._clock() - self.window_s
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def stats(self) -> WindowStats:
        """Percentiles and success rate over the window."""
        self._prune()
        latencies = sorted(lat for _, lat, ok in self._samples if ok)
        calls = len(self._samples)
        if not latencies:
            return WindowStats(None, None, 1.0 if calls == 0 else 0.0, calls)
        return WindowStats(
            _percentile(latencies, 0.5),
            _percentile(latencies, 0.95),
            len(latencies) / calls,
            calls,
        )

    def p50(self) -> float | None:
        """Median latency of recent successful calls, if any."""
        return self.stats().p50_s


@dataclass(slots=True)
class ErrorNote:
    """The last failure of a target (credential-free) and when it happened."""

    message: str
    at: datetime


class TargetStats:
    """Everything ``Health`` reports about one target besides its breaker."""

    def __init__(self, clock: Callable[[], float]) -> None:
        """Start with no calls."""
        self.window = LatencyWindow(clock)
        self.in_flight = 0
        self.last_error: ErrorNote | None = None

    def note_error(self, message: str) -> None:
        """Remember the latest failure (wall-clock time, for display)."""
        self.last_error = ErrorNote(message, datetime.now(UTC))
