"""Plain results of the state layer: stats and budget views, cached answers."""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway_server.core.types import ChatAnswer

#: Costs are kept as integer nano-dollars so sums are exact (Redis INCRBY, no float drift).
NANOS_PER_USD = 1_000_000_000


def to_nanos(usd: float) -> int:
    """US dollars to integer nano-dollars (nearest; prices are far coarser than that)."""
    return max(round(usd * NANOS_PER_USD), 0)


@dataclass(frozen=True, slots=True)
class RouteStatsView:
    """Use of one route by one tenant and caller in the current period (``RouteStats``)."""

    tenant: str
    route: str
    requests: int = 0
    #: The caller (``""`` for rows recorded before callers were).
    caller: str = ""
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    fallbacks: int = 0

    @property
    def cache_hit_rate(self) -> float:
        """``cache_hits / (cache_hits + cache_misses)``; 0 when there were none."""
        looked_up = self.cache_hits + self.cache_misses
        return self.cache_hits / looked_up if looked_up else 0.0


@dataclass(frozen=True, slots=True)
class TenantBudgetView:
    """A tenant's spend against its budget (``llmgateway.v1.TenantBudget``)."""

    tenant: str
    spent_usd: float
    #: 0 means no budget.
    budget_usd: float
    #: ``day``, ``week``, ``month`` or ``total``.
    period: str


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """An answer from the response cache, with where it originally came from."""

    answer: ChatAnswer
    provider: str
    model: str
    #: The route that produced the answer.
    route: str
    #: Unix time the answer was stored.
    stored_at: float
