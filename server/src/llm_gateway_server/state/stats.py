"""Usage stats per tenant, route and caller, read by the GetStats RPC."""

from __future__ import annotations

from llm_gateway_server.core.errors import StateUnavailable
from llm_gateway_server.state.ledger import Ledger, StatsResult
from llm_gateway_server.state.redis_health import StoreUnavailable


class StatsUnavailable(StateUnavailable):
    """The shared state store does not answer, so stats cannot be read."""


class StatsStore:
    """Reads the counters ``RequestPolicy`` writes and closes their ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def query(
        self, tenant: str | None, route: str | None, caller: str | None = None
    ) -> StatsResult:
        """Stats per tenant, route and caller and budgets per tenant, for the current periods.

        Args:
            tenant: Only this tenant; ``None``: every tenant.
            route: Only this route; ``None``: every route.
            caller: Only this caller; ``None``: every caller.

        Raises:
            StatsUnavailable: Redis is configured and does not answer.
        """
        try:
            return await self._ledger.query(tenant, route, caller)
        except StoreUnavailable:
            raise StatsUnavailable(
                "usage stats are unavailable right now: the state store does not answer"
            ) from None

    async def aclose(self) -> None:
        """Write what the ledger still holds (bounded) and release it."""
        await self._ledger.aclose()
