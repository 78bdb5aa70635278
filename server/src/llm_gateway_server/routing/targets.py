"""Targets: a provider and model with their breaker and live statistics.

The live state of a target is keyed by ``(provider, model)`` and shared by every route that
uses it, so one dead Ollama model opens one breaker for all of them. A reload keeps the
state of targets whose provider still points at the same upstream with the same breaker
settings. Direct ``provider/model`` targets (``server.allow_direct_targets``) are named by
callers, so their states live in a bounded LRU (``server.max_direct_targets``): breaker and
statistics are evicted together.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.types import Locality
from llm_gateway_server.routing.breakers import BreakerState, TargetBreaker, TransitionHook
from llm_gateway_server.routing.health import TargetStats

TargetKey = tuple[str, str]


class TargetState:
    """The live state of one target."""

    def __init__(
        self,
        provider: str,
        model: str,
        config: ProviderConfig,
        *,
        clock: Callable[[], float],
        on_transition: TransitionHook,
    ) -> None:
        """Create a closed breaker and empty statistics."""
        self.provider = provider
        self.model = model
        self.config = config
        self.breaker = TargetBreaker(
            provider,
            model,
            config.breaker,
            clock=clock,
            on_transition=on_transition,
        )
        self.stats = TargetStats(clock)

    @property
    def key(self) -> TargetKey:
        """``(provider, model)``."""
        return (self.provider, self.model)

    def reusable_for(self, config: ProviderConfig) -> bool:
        """True when a reloaded provider config still describes the same upstream."""
        old = self.config
        return (old.kind, old.api_base, old.locality, old.breaker) == (
            config.kind,
            config.api_base,
            config.locality,
            config.breaker,
        )


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """One entry of a route: a target with its tier and weight on that route."""

    provider: str
    model: str
    tier: int
    weight: int
    locality: Locality
    #: Position in the route's list (keeps the configured order within a tier).
    position: int
    state: TargetState = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        """``provider/model``, for messages."""
        return f"{self.provider}/{self.model}"

    @property
    def breaker_state(self) -> BreakerState:
        """The state of this target's breaker."""
        return self.state.breaker.state


class TargetRegistry:
    """The live target states of one config generation."""

    def __init__(
        self,
        providers: Mapping[str, ProviderConfig],
        *,
        clock: Callable[[], float],
        on_transition: TransitionHook,
        max_direct: int,
        previous: TargetRegistry | None = None,
    ) -> None:
        """Create an empty registry, adopting reusable states from ``previous`` lazily."""
        self._providers = providers
        self._clock = clock
        self._on_transition = on_transition
        self._max_direct = max_direct
        self._states: dict[TargetKey, TargetState] = {}
        self._direct: OrderedDict[TargetKey, TargetState] = OrderedDict()
        self._previous: dict[TargetKey, TargetState] = {}
        if previous is not None:
            self._previous = {**previous._direct, **previous._states}

    def get(self, provider: str, model: str) -> TargetState:
        """The state of a route's target, created on first use (kept for the generation)."""
        key = (provider, model)
        state = self._states.get(key)
        if state is None:
            state = self._direct.pop(key, None) or self._adopt_or_create(key)
            self._states[key] = state
        return state

    def get_direct(self, provider: str, model: str) -> TargetState:
        """The state of a direct target: a route's if it has one, else from the LRU."""
        key = (provider, model)
        state = self._states.get(key)
        if state is not None:
            return state
        state = self._direct.get(key)
        if state is not None:
            self._direct.move_to_end(key)
            return state
        state = self._adopt_or_create(key)
        self._direct[key] = state
        while len(self._direct) > self._max_direct:
            self._direct.popitem(last=False)
        return state

    def find(self, provider: str, model: str) -> TargetState | None:
        """The state of a target if this generation has one (no LRU reordering)."""
        key = (provider, model)
        return self._states.get(key) or self._direct.get(key)

    def _adopt_or_create(self, key: TargetKey) -> TargetState:
        provider, model = key
        config = self._providers[provider]
        old = self._previous.pop(key, None)
        if old is not None and old.reusable_for(config):
            old.config = config
            return old
        return TargetState(
            provider, model, config, clock=self._clock, on_transition=self._on_transition
        )

    def all(self) -> Iterator[TargetState]:
        """Every target state: routes' in creation order, then direct ones, oldest first."""
        yield from self._states.values()
        yield from self._direct.values()
