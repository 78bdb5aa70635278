"""Waiting for another replica's background stats flush, within a bound."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from llm_gateway_server.state import GatewayState, StatsUnavailable
from llm_gateway_server.state.ledger import StatsResult
from llm_gateway_server.state.views import RouteStatsView

#: Far above the writer's 0.5 s flush interval; a bound, not a measure.
FLUSH_BOUND_S = 10.0


async def stats_once(
    state: GatewayState,
    ready: Callable[[list[RouteStatsView]], bool],
    *,
    tenant: str | None = None,
) -> StatsResult:
    """GetStats through ``state`` once it answers and ``ready`` holds for its rows (fails
    past the bound)."""
    async with asyncio.timeout(FLUSH_BOUND_S):
        while True:
            # Unavailable while Redis is still in its retry pause after an outage.
            with contextlib.suppress(StatsUnavailable):
                result = await state.stats.query(tenant, None)
                if ready(result[0]):
                    return result
            await asyncio.sleep(0.05)
