"""The routing core transport calls: resolve, then chat / stream / embed with fallback."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.core.types import (
    CallContext,
    ChatRequest,
    EmbedRequest,
    Principal,
    Privacy,
    Sampling,
    Task,
)
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.routing import engine
from llm_gateway_server.routing.breakers import BreakerPeers, BreakerState, Transition
from llm_gateway_server.routing.call import Call
from llm_gateway_server.routing.observer import NoopObserver, RoutingObserver
from llm_gateway_server.routing.ops import ChatOp, EmbedOp
from llm_gateway_server.routing.privacy import ceiling, default_privacy, locality_permitted
from llm_gateway_server.routing.probes import ProbeRunner
from llm_gateway_server.routing.results import ChatResult, EmbedResult, RoutedStream
from llm_gateway_server.routing.routes import Resolution, resolve
from llm_gateway_server.routing.stream import StreamOp
from llm_gateway_server.routing.table import RoutingTable, build_table
from llm_gateway_server.routing.targets import TargetState
from llm_gateway_server.routing.usability import unusable_reason
from llm_gateway_server.routing.views import (
    HealthView,
    ProviderHealth,
    RouteHealth,
    RouteView,
    TargetHealth,
    TargetView,
)

_STATES = frozenset(s.value for s in BreakerState)


class Router:
    """Routes calls over the targets of the config snapshot in force.

    One instance per process. ``swap`` installs a reloaded snapshot; calls already running
    keep the routing table they resolved against. ``start``/``aclose`` own the active
    probe tasks and readiness timers.
    """

    def __init__(
        self,
        snapshot: ConfigSnapshot,
        providers: Mapping[str, Provider],
        *,
        observer: RoutingObserver | None = None,
        peers: BreakerPeers | None = None,
        on_readiness: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """Build the routing table of ``snapshot``.

        Args:
            snapshot: The validated config in force.
            providers: Adapters by provider name (disabled providers may be missing).
            observer: Receives attempts, fallbacks and breaker transitions.
            peers: Where breaker transitions go for other replicas (the state layer's
                breaker sharing, with Redis); ``None``: this replica alone.
            on_readiness: Called with the new readiness whenever it changes (and once
                from ``start``).
            clock: Monotonic seconds; ``CallContext.deadline`` is on this clock.
            rng: Source of jitter and weighted choice (tests pass a seeded one).
        """
        self._observer: RoutingObserver = observer or NoopObserver()
        self._peers = peers
        self._on_readiness = on_readiness
        self._clock = clock
        self._rng = rng or random.Random()
        self._probes = ProbeRunner(self._check_readiness, rng=self._rng)
        self._timers: set[asyncio.TimerHandle] = set()
        self._started = False
        self._reported: bool | None = None
        self._table = self._build(snapshot, providers, previous=None)

    def _build(
        self,
        snapshot: ConfigSnapshot,
        providers: Mapping[str, Provider],
        previous: RoutingTable | None,
    ) -> RoutingTable:
        return build_table(
            snapshot,
            dict(providers),
            previous=previous,
            clock=self._clock,
            on_transition=self._breaker_changed,
        )

    # -- resolution ---------------------------------------------------------------------

    def resolve(
        self, *, model: str, task: Task | None, privacy: Privacy | None, principal: Principal
    ) -> Resolution:
        """Resolve a request to its route, privacy and permitted targets.

        ``model`` names a route, or ``provider/model`` when ``server.allow_direct_targets``
        is on; empty means the default route of ``task`` (chat when ``None``).

        Raises:
            RouteNotFound: unknown route, or no default route for the task.
            NotPermitted: the key may not use the route (ROUTE_NOT_PERMITTED) or asked for
                a privacy above its ceiling (PRIVACY_NOT_PERMITTED).
            RequestInvalid: ``task`` differs from the route's (TASK_MISMATCH).
            NoPermittedTarget: no target is permitted (a STRICT request on a route without
                local targets) or every permitted provider is disabled; says which and why.
        """
        return resolve(self._table, model=model, task=task, privacy=privacy, principal=principal)

    # -- calls --------------------------------------------------------------------------

    def _call(
        self,
        resolution: Resolution,
        ctx: CallContext,
        *,
        operation: str,
        streaming: bool,
        sampling: Sampling | None,
    ) -> Call:
        return Call(
            resolution,
            ctx,
            table=resolution.table or self._table,
            observer=self._observer,
            clock=self._clock,
            rng=self._rng,
            operation=operation,
            streaming=streaming,
            sampling=sampling,
        )

    async def chat(
        self, resolution: Resolution, request: ChatRequest, ctx: CallContext
    ) -> ChatResult:
        """One complete answer, falling back over the resolution's targets.

        Raises:
            UpstreamError: caused by the request (no fallback), as the adapter raised it.
            NoTargetLeft: every target failed (``attempts``, ``retry_after_s`` set).
            ConcurrencyLimited: the last target's wait queue was full (RESOURCE_EXHAUSTED).
            DeadlineExceeded: ``ctx.deadline`` passed.
        """
        call = self._call(
            resolution, ctx, operation="chat", streaming=False, sampling=request.sampling
        )
        call.check_task(embedding=False)
        answer, target = await engine.run(call, ChatOp(request))
        return ChatResult(
            answer, resolution.route, target.provider, target.model, tuple(call.records)
        )

    async def open_stream(
        self, resolution: Resolution, request: ChatRequest, ctx: CallContext
    ) -> RoutedStream:
        """A committed stream (see ``RoutedStream``): fallback runs until a target produced
        its first payload delta; errors before that are raised here, as ``chat``'s are."""
        call = self._call(
            resolution, ctx, operation="chat", streaming=True, sampling=request.sampling
        )
        call.check_task(embedding=False)
        stream, _ = await engine.run(call, StreamOp(request))
        return stream

    async def embed(
        self, resolution: Resolution, request: EmbedRequest, ctx: CallContext
    ) -> EmbedResult:
        """One vector per input, falling back like ``chat``."""
        call = self._call(resolution, ctx, operation="embeddings", streaming=False, sampling=None)
        call.check_task(embedding=True)
        answer, target = await engine.run(call, EmbedOp(request))
        return EmbedResult(
            answer, resolution.route, target.provider, target.model, tuple(call.records)
        )

    # -- views --------------------------------------------------------------------------

    def routes_view(self, principal: Principal, task: Task | None) -> list[RouteView]:
        """The routes ``principal`` may use (of ``task``, if given), for ListModels."""
        table = self._table
        config = table.snapshot.config
        views: list[RouteView] = []
        for name, route in config.routes.items():
            if task is not None and route.task is not task:
                continue
            if principal.routes is not None and name not in principal.routes:
                continue
            widest = ceiling(route, principal)
            targets = tuple(
                TargetView(t.provider, t.model, t.locality, t.tier, t.weight, not why, why)
                for t in table.routes[name]
                for why in (unusable_reason(table, t.state),)
            )
            views.append(
                RouteView(
                    name=name,
                    task=route.task,
                    default_for_task=config.default_route(route.task) == name,
                    default_privacy=default_privacy(route, principal, config.server),
                    max_privacy=widest,
                    targets=targets,
                    available=any(
                        v.available and locality_permitted(widest, v.locality) for v in targets
                    ),
                )
            )
        return views

    def health_view(self) -> HealthView:
        """Live state of routes, targets and providers, for the Health RPC."""
        table = self._table
        routes = []
        for name, targets in table.routes.items():
            usable = sum(1 for t in targets if table.target_usable(t))
            routes.append(RouteHealth(name, usable > 0, usable, len(targets)))
        return HealthView(
            ready=table.ready(),
            routes=tuple(routes),
            targets=tuple(_target_health(table, s) for s in table.registry.all()),
            providers=tuple(
                _provider_health(table, name) for name in table.snapshot.config.providers
            ),
            config_generation=table.snapshot.generation,
        )

    @property
    def ready(self) -> bool:
        """True when at least one route has a usable target."""
        return self._table.ready()

    # -- lifecycle ----------------------------------------------------------------------

    def swap(self, snapshot: ConfigSnapshot, providers: Mapping[str, Provider]) -> None:
        """Install a reloaded snapshot (call from the event loop thread).

        Breakers and latency windows of unchanged targets are kept; calls in flight keep
        the table they started with. Probe tasks follow the new config. The router does
        not close adapters it no longer uses: their owner does, once calls drained.
        """
        self._table = self._build(snapshot, providers, previous=self._table)
        if self._started:
            self._sync_probes()
        self._check_readiness()

    async def start(self) -> None:
        """Start the active probe tasks and report the initial readiness."""
        self._started = True
        self._sync_probes()
        self._check_readiness(force=True)

    async def aclose(self) -> None:
        """Stop probe tasks and timers; no task is left behind."""
        self._started = False
        await self._probes.stop()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    def _sync_probes(self) -> None:
        table = self._table
        self._probes.sync(table.snapshot.config.providers, table.providers, table.probes)

    # -- readiness ----------------------------------------------------------------------

    def _check_readiness(self, *, force: bool = False) -> None:
        ready = self._table.ready()
        if ready is self._reported and not force:
            return
        self._reported = ready
        if self._on_readiness is not None:
            self._on_readiness(ready)

    def _breaker_changed(self, transition: Transition) -> None:
        breaker, new = transition.breaker, transition.new
        self._observer.breaker_transition(
            breaker.provider, breaker.model, transition.old.value, new.value
        )
        if self._peers is not None and not transition.remote:
            opened = breaker.opened_at
            # Peers run on other monotonic clocks: the wire carries wall-clock time.
            wall = time.time() - (self._clock() - opened) if opened is not None else 0.0
            opened_wall = wall if new is BreakerState.OPEN else 0.0
            self._peers.publish(breaker.provider, breaker.model, new.value, opened_wall)
        if new is BreakerState.OPEN:
            # An open breaker becomes usable again when its reset timeout passes, without
            # any event: look again then, or readiness could stay false for good.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                now = loop.time()
                self._timers = {h for h in self._timers if h.when() > now}
                delay = breaker.open_remaining_s()
                self._timers.add(loop.call_later(delay, self._check_readiness))
        self._check_readiness()

    def apply_peer_transition(
        self, provider: str, model: str, state: str, opened_at: float
    ) -> None:
        """Adopt another replica's breaker transition (``opened_at``: wall-clock seconds).

        Targets this replica does not have (yet) and unknown states are ignored.
        """
        target = self._table.registry.find(provider, model)
        if target is None or state not in _STATES:
            return
        new = BreakerState(state)
        ago = max(0.0, time.time() - opened_at) if new is BreakerState.OPEN else 0.0
        target.breaker.apply(new, opened_ago_s=ago)


def _target_health(table: RoutingTable, state: TargetState) -> TargetHealth:
    breaker = state.breaker
    stats = state.stats.window.stats()
    note = state.stats.last_error
    why = unusable_reason(table, state)
    disabled = not table.provider_usable(state.provider)
    return TargetHealth(
        provider=state.provider,
        model=state.model,
        breaker_state=None if disabled else breaker.state,
        consecutive_failures=breaker.consecutive_failures,
        last_error=note.message if note else "",
        last_error_time=note.at if note else None,
        latency_p50_s=stats.p50_s,
        latency_p95_s=stats.p95_s,
        success_rate=0.0 if disabled else stats.success_rate,
        window_calls=stats.calls,
        window_s=state.stats.window.window_s,
        in_flight=state.stats.in_flight,
        available=not why,
        disabled=disabled,
        unavailable_reason=why,
    )


def _provider_health(table: RoutingTable, name: str) -> ProviderHealth:
    config = table.snapshot.config.providers[name]
    probe = table.probes.get(name)
    limiter = table.limiters[name]
    probed = config.probe_enabled and probe is not None
    return ProviderHealth(
        name=name,
        kind=config.kind.value,
        locality=config.locality,
        enabled=table.provider_usable(name),
        disabled_reason=table.disabled_reason(name),
        probe_ok=probe.ok if probed and probe is not None else None,
        probe_error=probe.error if probed and probe is not None else "",
        last_probe_time=probe.at if probed and probe is not None else None,
        in_flight=limiter.in_flight,
        max_in_flight=limiter.max_in_flight,
        queued=limiter.queued,
    )
