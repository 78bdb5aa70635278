"""Targets: a provider and model with their breaker and live statistics.

The live state of a target is keyed by ``(provider, model)`` and shared by every route that
uses it, so one dead Ollama model opens one breaker for all of them. A reload keeps the
state of targets whose provider still points at the same upstream with the same breaker
settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.types import Locality
from llm_gateway_server.routing.breakers import (
    BreakerState,
    StorageFactory,
    TargetBreaker,
    TransitionHook,
)
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
        storage: StorageFactory,
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
            storage=storage,
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
        storage: StorageFactory,
        clock: Callable[[], float],
        on_transition: TransitionHook,
        previous: TargetRegistry | None = None,
    ) -> None:
        """Create an empty registry, adopting reusable states from ``previous`` lazily."""
        self._providers = providers
        self._storage = storage
        self._clock = clock
        self._on_transition = on_transition
        self._states: dict[TargetKey, TargetState] = {}
        self._previous = dict(previous._states) if previous is not None else {}

    def get(self, provider: str, model: str) -> TargetState:
        """The state of a target of a configured provider, created on first use."""
        key = (provider, model)
        state = self._states.get(key)
        if state is not None:
            return state
        config = self._providers[provider]
        old = self._previous.pop(key, None)
        if old is not None and old.reusable_for(config):
            old.config = config
            state = old
        else:
            state = TargetState(
                provider,
                model,
                config,
                storage=self._storage,
                clock=self._clock,
                on_transition=self._on_transition,
            )
        self._states[key] = state
        return state

    def forget_previous(self) -> None:
        """Drop the states of the previous generation that were not carried over."""
        self._previous.clear()

    def all(self) -> list[TargetState]:
        """Every target state, in creation order."""
        return list(self._states.values())
