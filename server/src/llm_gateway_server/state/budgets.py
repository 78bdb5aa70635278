"""Budget reservations: a call's worst case, held atomically against every budget it counts
toward (its tenant's, the gateway's, its caller's), with ``max_tokens`` capped to the grant."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.errors import LimitExceeded, StateUnavailable
from llm_gateway_server.core.types import ChatRequest, EmbedRequest, Principal, Usage
from llm_gateway_server.state.ledger import Ledger, Reservation, UsageRecord
from llm_gateway_server.state.periods import period_end
from llm_gateway_server.state.pricing import cost_usd
from llm_gateway_server.state.redis_health import StoreUnavailable
from llm_gateway_server.state.tokens import estimate_prompt_tokens
from llm_gateway_server.state.views import to_nanos


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation on the budget of ``owner`` (a tenant, ``@gateway`` or ``@caller:X``)."""

    owner: Principal
    reservation: Reservation


@dataclass(frozen=True, slots=True)
class Grant:
    """What ``Budgets.reserve`` held, and the ``max_tokens`` the holds cover."""

    holds: tuple[Hold, ...] = ()
    max_tokens: int | None = None


class Budgets:
    """Prices a request's worst case and reserves it on each budget in turn."""

    def __init__(self, snapshot: ConfigSnapshot, ledger: Ledger) -> None:
        self._ledger = ledger
        self.swap(snapshot)

    def swap(self, snapshot: ConfigSnapshot) -> None:
        """Take a reloaded config."""
        self._config = snapshot.config

    def _candidates(
        self, route: str, targets: Sequence[tuple[str, str]] | None
    ) -> list[tuple[ProviderConfig, str]]:
        config = self._config
        if targets is None:
            route_config = config.routes.get(route)
            if route_config is not None:
                targets = [(t.provider, t.model) for t in route_config.all_targets]
            elif "/" in route:
                provider, _, model = route.partition("/")
                targets = [(provider, model)]
            else:
                targets = []
        return [(config.providers[p], m) for p, m in targets if p in config.providers]

    def prices_nanos(
        self,
        route: str,
        request: ChatRequest | EmbedRequest,
        targets: Sequence[tuple[str, str]] | None = None,
    ) -> tuple[int, float] | None:
        """The dearest targets' ``(prompt cost, cost of one completion token)`` in
        nano-dollars for ``request``; ``None`` when a price is unknown."""
        kind = "chat" if isinstance(request, ChatRequest) else "embedding"
        prompt = Usage(prompt_tokens=estimate_prompt_tokens(request))
        million = Usage(completion_tokens=1_000_000)
        prompt_costs: list[int] = []
        token_costs: list[float] = []
        for provider, model in self._candidates(route, targets):
            prompt_cost = cost_usd(provider, kind, model, prompt)
            token_cost = cost_usd(provider, kind, model, million) if kind == "chat" else 0.0
            if prompt_cost is None or token_cost is None:
                return None
            prompt_costs.append(to_nanos(prompt_cost))
            token_costs.append(token_cost * 1e9 / 1_000_000)
        if not prompt_costs:
            return None
        return max(prompt_costs), max(token_costs)

    async def reserve(
        self,
        owners: Sequence[Principal],
        route: str,
        request: ChatRequest | EmbedRequest,
        targets: Sequence[tuple[str, str]] | None,
    ) -> Grant:
        """Hold the request's worst case on the budget of each owner that has one.

        Each grant may be smaller than asked (what is left), and the next owner is asked
        for at most that; ``max_tokens`` is the largest completion the last grant covers.

        Raises:
            LimitExceeded: BUDGET_EXCEEDED, not even one completion token fits.
            StateUnavailable: the store does not answer and limits fail closed.
        """
        budgeted = [owner for owner in owners if owner.budget_usd is not None]
        if not budgeted:
            return Grant()
        prices = self.prices_nanos(route, request, targets)
        wanted: int | None = None
        if prices is None:
            # An unknown price still needs some budget left: reserve one nano-dollar.
            prompt, per_token, nanos, least = 0, 0.0, 1, 1
        else:
            prompt, per_token = prices
            if isinstance(request, ChatRequest) and per_token > 0:
                asked = request.sampling.max_tokens
                wanted = asked if asked is not None else self._config.state.budget_max_tokens
                nanos = prompt + math.ceil(per_token * wanted)
                least = prompt + math.ceil(per_token)
            else:
                nanos = least = prompt
            if nanos == 0:
                return Grant()
        holds: list[Hold] = []
        try:
            for owner in budgeted:
                reservation = await self._hold(owner, nanos, least)
                if reservation is not None:
                    holds.append(Hold(owner, reservation))
                    nanos = reservation.nanos
        except BaseException:
            await self.release(holds, route=route)
            raise
        if wanted is None or not holds:
            return Grant(tuple(holds))
        # The largest completion the smallest grant covers: the upstream is held to it.
        fits = math.floor((nanos - prompt) / per_token)
        return Grant(tuple(holds), max(1, min(wanted, fits)))

    async def _hold(self, owner: Principal, nanos: int, least: int) -> Reservation | None:
        assert owner.budget_usd is not None
        try:
            reservation = await self._ledger.reserve(
                owner.tenant,
                owner.budget_period,
                budget_nanos=to_nanos(owner.budget_usd),
                nanos=nanos,
                min_nanos=least,
                ttl_s=self._config.state.reservation_ttl_s,
            )
        except StoreUnavailable:
            if self._config.state.limits_fail_open:
                return None
            raise StateUnavailable(
                "the budget cannot be checked right now (state store unavailable)",
                metadata={"limit": "budget"},
                retry_after_s=1.0,
            ) from None
        if reservation is None:
            end = period_end(owner.budget_period)
            retry = (end - datetime.now(UTC)).total_seconds() if end is not None else None
            raise LimitExceeded(
                f"the budget of {owner.budget_usd:g} USD per {owner.budget_period} is spent"
                + ("" if not owner.tenant.startswith("@") else f" ({owner.tenant})"),
                reason="BUDGET_EXCEEDED",
                metadata={"tenant": owner.tenant, "period": owner.budget_period},
                retry_after_s=retry,
            )
        return reservation

    async def release(
        self, holds: Sequence[Hold], *, route: str, caller: str = "", cost_nanos: int = 0
    ) -> None:
        """Replace each hold by the call's real cost (0: just let go)."""
        for hold in holds:
            owner = hold.owner
            record = UsageRecord(
                tenant=owner.tenant,
                route=route,
                caller=caller,
                period=owner.budget_period,
                budget_usd=owner.budget_usd,
                reservation=hold.reservation,
                cost_nanos=cost_nanos,
                requests=0,
                stats=False,
            )
            try:
                await self._ledger.record(record)
            except StoreUnavailable:
                continue
