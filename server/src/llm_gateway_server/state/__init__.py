"""State layer: API keys, rate limits, budgets, response cache, stats and breaker storage.

In memory by default (one replica); in Redis with ``state.redis_url`` (shared by replicas).
"""

from __future__ import annotations

from llm_gateway_server.state.factory import GatewayState, build_state
from llm_gateway_server.state.keys import KeyPrincipal, KeyStore
from llm_gateway_server.state.policy import Admission, RequestPolicy
from llm_gateway_server.state.pricing import cost_usd
from llm_gateway_server.state.stats import StatsStore, StatsUnavailable
from llm_gateway_server.state.views import CachedAnswer, RouteStatsView, TenantBudgetView

__all__ = [
    "Admission",
    "CachedAnswer",
    "GatewayState",
    "KeyPrincipal",
    "KeyStore",
    "RequestPolicy",
    "RouteStatsView",
    "StatsStore",
    "StatsUnavailable",
    "TenantBudgetView",
    "build_state",
    "cost_usd",
]
