"""Read-only views for ListModels and Health (mirroring ``llmgateway.v1`` models.proto)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from llm_gateway_server.core.types import Locality, Privacy, Task
from llm_gateway_server.routing.breakers import BreakerState


@dataclass(frozen=True, slots=True)
class TargetView:
    """A target of a route as ListModels shows it."""

    provider: str
    model: str
    locality: Locality
    tier: int
    weight: int
    #: The target can be called now (``routing.usability``).
    available: bool
    #: Why not, when it cannot (such as "run `ollama pull qwen3:8b`").
    unavailable_reason: str = ""


@dataclass(frozen=True, slots=True)
class RouteView:
    """A route as ListModels shows it to one caller."""

    name: str
    task: Task
    default_for_task: bool
    #: The privacy this caller's requests get when they ask for none.
    default_privacy: Privacy
    #: The widest privacy this caller's requests run with on this route (a FLEXIBLE
    #: request above it is served at this privacy, not refused).
    max_privacy: Privacy
    #: Targets in fallback order (tier, then configured order).
    targets: tuple[TargetView, ...]
    available: bool


@dataclass(frozen=True, slots=True)
class RouteHealth:
    """``RouteHealth``: how many of a route's targets are usable."""

    name: str
    available: bool
    usable_targets: int
    total_targets: int


@dataclass(frozen=True, slots=True)
class TargetHealth:
    """``TargetHealth``: breaker, last error, latency window and load of one target."""

    provider: str
    model: str
    #: ``None`` for a target of a disabled provider (no breaker is running for it).
    breaker_state: BreakerState | None
    consecutive_failures: int
    last_error: str
    last_error_time: datetime | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    success_rate: float
    window_calls: int
    window_s: float
    in_flight: int
    available: bool
    #: The provider is disabled: no statistics are made up for it (success rate 0, no
    #: breaker state).
    disabled: bool = False
    #: Why ``available`` is false (``routing.usability``).
    unavailable_reason: str = ""


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """``ProviderHealth``: enabled or why not, last probe, concurrency."""

    name: str
    kind: str
    locality: Locality
    enabled: bool
    disabled_reason: str
    #: ``None`` when the provider is not probed (or not probed yet).
    probe_ok: bool | None
    probe_error: str
    last_probe_time: datetime | None
    in_flight: int
    max_in_flight: int
    queued: int


@dataclass(frozen=True, slots=True)
class HealthView:
    """``HealthResponse``."""

    ready: bool
    routes: tuple[RouteHealth, ...]
    targets: tuple[TargetHealth, ...]
    providers: tuple[ProviderHealth, ...]
    config_generation: int
