"""The routing table of one config generation: routes, targets, limiters, probe states.

A table is built per snapshot and never changed afterwards (only the live state inside
its targets, limiters and probe states moves). A call keeps the table it resolved against,
so a reload does not disturb calls in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.config.routes import RouteConfig
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.routing.breakers import TransitionHook
from llm_gateway_server.routing.concurrency import ProviderLimiter
from llm_gateway_server.routing.probes import ProbeState
from llm_gateway_server.routing.targets import RouteTarget, TargetRegistry
from llm_gateway_server.routing.usability import unusable_reason


@dataclass(frozen=True)
class RoutingTable:
    """Everything a call needs from one config generation."""

    snapshot: ConfigSnapshot
    providers: Mapping[str, Provider]
    registry: TargetRegistry
    #: Each route's targets sorted by tier (configured order within a tier).
    routes: Mapping[str, tuple[RouteTarget, ...]]
    limiters: Mapping[str, ProviderLimiter]
    probes: Mapping[str, ProbeState]

    def disabled_reason(self, provider: str) -> str:
        """Why a provider cannot be used now; empty when it can."""
        if provider not in self.snapshot.config.providers:
            return "not configured"
        reason = self.snapshot.disabled.get(provider)
        if reason:
            return reason
        if provider not in self.providers:
            return "no adapter was built for it"
        return ""

    def provider_usable(self, provider: str) -> bool:
        """True when the provider is enabled and has an adapter."""
        return not self.disabled_reason(provider)

    def target_usable(self, target: RouteTarget) -> bool:
        """Callable now (``routing.usability``): Health, ListModels and readiness agree."""
        return not unusable_reason(self, target.state)

    def direct_target(self, provider: str, model: str) -> RouteTarget:
        """A ``provider/model`` target outside any route."""
        config = self.snapshot.config.providers[provider]
        return RouteTarget(
            provider=provider,
            model=model,
            tier=0,
            weight=1,
            locality=config.locality,
            position=0,
            state=self.registry.get_direct(provider, model),
        )

    def ready(self) -> bool:
        """True when at least one route has a usable target."""
        return any(any(self.target_usable(t) for t in ts) for ts in self.routes.values())


def _route_targets(
    route: RouteConfig, snapshot: ConfigSnapshot, registry: TargetRegistry
) -> tuple[RouteTarget, ...]:
    targets = [
        RouteTarget(
            provider=t.provider,
            model=t.model,
            tier=t.tier if t.tier is not None else i,
            weight=t.weight,
            locality=snapshot.config.providers[t.provider].locality,
            position=i,
            state=registry.get(t.provider, t.model),
        )
        for i, t in enumerate(route.all_targets)
    ]
    return tuple(sorted(targets, key=lambda t: (t.tier, t.position)))


def build_table(
    snapshot: ConfigSnapshot,
    providers: Mapping[str, Provider],
    *,
    previous: RoutingTable | None,
    clock: Callable[[], float],
    on_transition: TransitionHook,
) -> RoutingTable:
    """Build the table of ``snapshot``, keeping live state that still applies.

    Kept from ``previous``: breakers and windows of targets whose provider still points at
    the same upstream with the same breaker settings; limiters whose limits are unchanged
    (calls in flight hold their slot in whichever limiter they took it from); probe states
    of providers with the same kind and address.
    """
    config = snapshot.config
    registry = TargetRegistry(
        config.providers,
        clock=clock,
        on_transition=on_transition,
        max_direct=config.server.max_direct_targets,
        previous=previous.registry if previous is not None else None,
    )
    routes = {name: _route_targets(r, snapshot, registry) for name, r in config.routes.items()}
    limiters: dict[str, ProviderLimiter] = {}
    probes: dict[str, ProbeState] = {}
    for name, cfg in config.providers.items():
        old_limiter = previous.limiters.get(name) if previous is not None else None
        if old_limiter is not None and old_limiter.same_limits(cfg.max_in_flight, cfg.max_queue):
            limiters[name] = old_limiter
        else:
            limiters[name] = ProviderLimiter(
                name, max_in_flight=cfg.max_in_flight, max_queue=cfg.max_queue, clock=clock
            )
        old_cfg = previous.snapshot.config.providers.get(name) if previous is not None else None
        same_upstream = old_cfg is not None and (old_cfg.kind, old_cfg.api_base) == (
            cfg.kind,
            cfg.api_base,
        )
        if previous is not None and same_upstream and cfg.probe_enabled and name in previous.probes:
            probes[name] = previous.probes[name]
        else:
            probes[name] = ProbeState()
    return RoutingTable(snapshot, providers, registry, routes, limiters, probes)
