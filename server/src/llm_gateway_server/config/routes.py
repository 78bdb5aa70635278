"""The ``routes:`` section: named routes and their ordered targets, per privacy level."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field

from llm_gateway_server.core.types import Privacy, Task

_Strict = ConfigDict(extra="forbid", frozen=True)


class PrivacySetting(enum.StrEnum):
    """Privacy as written in YAML."""

    STRICT = "strict"
    FLEXIBLE = "flexible"

    def to_privacy(self) -> Privacy:
        """The internal, ordered privacy value."""
        return Privacy.STRICT if self is PrivacySetting.STRICT else Privacy.FLEXIBLE


class Balancing(enum.StrEnum):
    """How a tier's equivalent targets share the load."""

    #: Random by weight.
    WEIGHTED = "weighted"
    #: Fewest calls in flight first (ties broken by weight).
    LEAST_OUTSTANDING = "least_outstanding"
    #: Lowest recent median latency first.
    LOWEST_LATENCY = "lowest_latency"


class TargetConfig(BaseModel):
    """One provider and model a route can use."""

    model_config = _Strict
    #: A key of ``providers:``.
    provider: str
    #: The model name sent upstream (``qwen3:30b``, ``gpt-4o-mini``).
    model: str
    #: Fallback tier; lower first. Unset: the target's position in the list, so a plain
    #: list is a strict fallback chain. Targets with equal tiers are load-balanced.
    tier: int | None = Field(default=None, ge=0)
    #: Share of the tier's traffic (weighted balancing).
    weight: int = Field(default=1, ge=1)


class RouteConfig(BaseModel):
    """A named route: a task and the targets serving it."""

    model_config = _Strict
    task: Task = Task.CHAT
    #: Answer requests of ``task`` that name no model. Unset: the route named like the task.
    default: bool | None = None
    #: Privacy for requests that ask for none. Unset: ``server.default_privacy``.
    default_privacy: PrivacySetting | None = None
    #: Widest privacy this route serves with. A ``strict`` route never reaches the cloud;
    #: it still serves FLEXIBLE requests (with its local targets), since FLEXIBLE means
    #: "cloud allowed", never "cloud required". Only a key's ``max_privacy`` refuses.
    max_privacy: PrivacySetting = PrivacySetting.FLEXIBLE
    balancing: Balancing = Balancing.LEAST_OUTSTANDING
    #: The targets in fallback order. STRICT requests use the local ones among them;
    #: FLEXIBLE requests use all of them unless ``flexible`` is set.
    targets: tuple[TargetConfig, ...] = Field(min_length=1)
    #: The targets of FLEXIBLE requests, in their own fallback order (e.g. the cloud model
    #: first, the local one as fallback). Unset: ``targets``.
    flexible: tuple[TargetConfig, ...] | None = Field(default=None, min_length=1)

    @property
    def all_targets(self) -> tuple[TargetConfig, ...]:
        """Every distinct target of the route: ``targets``, then ``flexible``'s others.

        Health, ListModels and readiness look at these; a request gets the ones of its
        privacy (``routing.privacy.targets_for``).
        """
        seen = {(t.provider, t.model) for t in self.targets}
        extra = tuple(t for t in self.flexible or () if (t.provider, t.model) not in seen)
        return self.targets + extra

    def targets_of(self, privacy: Privacy) -> tuple[TargetConfig, ...]:
        """The configured list a request of ``privacy`` orders its targets by."""
        if privacy is Privacy.FLEXIBLE and self.flexible is not None:
            return self.flexible
        return self.targets
