"""Spend and usage stats per tenant and route: the protocol and the in-memory ledger.

Budgets are enforced by reservations: before a call its worst case is reserved atomically
(all of it when it fits, else what is left if that covers the call's least, else refused);
after it the reservation is replaced by the real cost. The caller caps the call to what was
granted, so concurrent calls cannot overrun a budget beyond the error of the prompt estimate.
Stats are kept per tenant, route and caller.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from llm_gateway_server.state.periods import period_id
from llm_gateway_server.state.views import NANOS_PER_USD, RouteStatsView, TenantBudgetView

#: Counter names of ``RouteStatsView`` (cost kept in nano-dollars as ``cost_nanos``).
STAT_FIELDS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost_nanos",
    "cache_hits",
    "cache_misses",
    "fallbacks",
)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A held amount of a tenant's budget in one period."""

    tenant: str
    period_id: str
    id: str
    nanos: int


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one finished (or refused) request adds to the ledger."""

    tenant: str
    route: str
    #: The caller's stats label (``""``: none recorded).
    caller: str = ""
    #: The tenant's budget period (``day``, ``week``, ``month``, ``total``).
    period: str = "month"
    budget_usd: float | None = None
    reservation: Reservation | None = None
    cost_nanos: int = 0
    requests: int = 1
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    fallbacks: int = 0
    #: False for spend against a shared budget (``@gateway``, ``@caller:X``): no stats row.
    stats: bool = True

    def counters(self) -> dict[str, int]:
        """The non-zero stat increments."""
        if not self.stats:
            return {}
        values = {name: int(getattr(self, name)) for name in STAT_FIELDS}
        return {name: value for name, value in values.items() if value}


def new_reservation_id() -> str:
    """A random id for one reservation."""
    return secrets.token_hex(8)


def route_view(
    tenant: str, route: str, counters: dict[str, int], caller: str = ""
) -> RouteStatsView:
    """Build a stats view from raw counters."""
    return RouteStatsView(
        tenant=tenant,
        route=route,
        caller=caller,
        requests=counters.get("requests", 0),
        errors=counters.get("errors", 0),
        prompt_tokens=counters.get("prompt_tokens", 0),
        completion_tokens=counters.get("completion_tokens", 0),
        cost_usd=counters.get("cost_nanos", 0) / NANOS_PER_USD,
        cache_hits=counters.get("cache_hits", 0),
        cache_misses=counters.get("cache_misses", 0),
        fallbacks=counters.get("fallbacks", 0),
    )


StatsResult = tuple[list[RouteStatsView], list[TenantBudgetView]]


class Ledger(Protocol):
    """Budget reservations, spend and stats; memory or Redis."""

    async def reserve(
        self,
        tenant: str,
        period: str,
        *,
        budget_nanos: int,
        nanos: int,
        ttl_s: float,
        min_nanos: int | None = None,
    ) -> Reservation | None:
        """Hold ``nanos`` of the budget atomically, or what is left when that is at least
        ``min_nanos`` (default: ``nanos``); ``None`` when not even that fits."""
        ...

    async def record(self, record: UsageRecord) -> None:
        """Release the record's reservation, add its cost to the spend and its stats."""
        ...

    async def query(
        self, tenant: str | None, route: str | None, caller: str | None = None
    ) -> StatsResult:
        """Stats and budgets of the current periods (``None``: no filter)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class _TenantBook:
    period_id: str
    period: str
    budget_usd: float | None
    spent_nanos: int = 0
    #: reservation id -> (nanos, monotonic expiry)
    held: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: (route, caller) -> counters
    rows: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)


class MemoryLedger:
    """One replica's ledger. Every method body runs without an ``await`` in between its
    check and its update, so on one event loop a reservation is atomic."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._books: dict[str, _TenantBook] = {}
        self._clock = clock

    def _book(self, tenant: str, period: str, budget_usd: float | None = None) -> _TenantBook:
        current = period_id(period)
        book = self._books.get(tenant)
        if book is None or book.period_id != current or book.period != period:
            # A new period starts from zero; the previous one is dropped.
            book = _TenantBook(current, period, budget_usd)
            self._books[tenant] = book
        return book

    async def reserve(
        self,
        tenant: str,
        period: str,
        *,
        budget_nanos: int,
        nanos: int,
        ttl_s: float,
        min_nanos: int | None = None,
    ) -> Reservation | None:
        """Hold ``nanos``, or what is left of ``budget_nanos`` if at least ``min_nanos``."""
        book = self._book(tenant, period)
        held = book.held
        now = self._clock()
        for rid in [rid for rid, (_, expiry) in held.items() if expiry <= now]:
            del held[rid]
        free = budget_nanos - book.spent_nanos - sum(amount for amount, _ in held.values())
        least = nanos if min_nanos is None else min(min_nanos, nanos)
        if free < least:
            return None
        nanos = min(nanos, free)
        reservation = Reservation(tenant, book.period_id, new_reservation_id(), nanos)
        held[reservation.id] = (nanos, now + ttl_s)
        return reservation

    async def record(self, record: UsageRecord) -> None:
        """Settle the reservation and add the record's counters."""
        book = self._book(record.tenant, record.period, record.budget_usd)
        book.budget_usd = record.budget_usd
        res = record.reservation
        if res is not None and res.period_id == book.period_id:
            book.held.pop(res.id, None)
        book.spent_nanos += record.cost_nanos
        counters = record.counters()
        if counters:  # a released hold alone adds no stats row
            book.rows.setdefault((record.route, record.caller), Counter()).update(counters)

    async def query(
        self, tenant: str | None, route: str | None, caller: str | None = None
    ) -> StatsResult:
        """Stats and budgets of the current periods, sorted by tenant, route and caller."""
        stats: list[RouteStatsView] = []
        budgets: list[TenantBudgetView] = []
        for name in sorted(self._books):
            if tenant is not None and name != tenant:
                continue
            book = self._book(name, self._books[name].period, self._books[name].budget_usd)
            for (route_name, caller_name), counters in sorted(book.rows.items()):
                if (route is None or route_name == route) and (
                    caller is None or caller_name == caller
                ):
                    stats.append(route_view(name, route_name, dict(counters), caller_name))
            budgets.append(
                TenantBudgetView(
                    tenant=name,
                    spent_usd=book.spent_nanos / NANOS_PER_USD,
                    budget_usd=book.budget_usd or 0.0,
                    period=book.period,
                )
            )
        return stats, budgets

    async def aclose(self) -> None:
        """Nothing to release."""
