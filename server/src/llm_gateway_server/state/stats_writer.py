"""Stats counters batched in memory and flushed to Redis in the background, off the answer.

One replica's writes are aggregated per (tenant, period, row) and sent every ``flush_s`` (or
sooner once ``batch_rows`` rows are pending) in one pipeline. While Redis does not answer the
deltas stay here and keep aggregating, up to ``max_rows`` distinct rows; past that the new
rows are dropped, with one log line per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from llm_gateway_server.state.periods import expire_at, period_id
from llm_gateway_server.state.redis_health import RedisHealth, StoreUnavailable, guarded

logger = logging.getLogger(__name__)

#: Seconds between flushes.
FLUSH_S = 0.5
#: Pending rows that trigger a flush before ``FLUSH_S``.
BATCH_ROWS = 256
#: Distinct pending rows kept while Redis is down; new rows past it are dropped.
MAX_ROWS = 10_000
#: Seconds ``aclose`` waits for the last flush.
CLOSE_FLUSH_S = 2.0


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Where one set of counters goes: a tenant's stats hash of one period, one field row."""

    tenant: str
    period: str
    period_id: str
    #: ``<route>[\\t<caller>]``, as in the ``stats`` hash fields.
    row: str


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """The ``tenants`` registry entry GetStats lists tenants (and budgets) from."""

    period: str
    budget_usd: float | None


class StatsWriter:
    """Aggregates stats increments (and spend without a budget) and flushes them in batches."""

    def __init__(
        self,
        client: Redis,
        health: RedisHealth,
        *,
        prefix: str,
        flush_s: float | None = None,
        batch_rows: int | None = None,
        max_rows: int | None = None,
    ) -> None:
        self._client = client
        self._health = health
        self._prefix = prefix
        # The module values are read here, not bound at import, so one place tunes them.
        self._flush_s = FLUSH_S if flush_s is None else flush_s
        self._batch_rows = BATCH_ROWS if batch_rows is None else batch_rows
        self._max_rows = MAX_ROWS if max_rows is None else max_rows
        self._rows: dict[StatsRow, Counter[str]] = {}
        #: (tenant, period id) -> nano-dollars spent outside any budget reservation.
        self._spend: Counter[tuple[str, str, str]] = Counter()
        self._tenants: dict[str, TenantInfo] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._dropping = False
        #: Rows dropped because the bound was reached (for tests and Health).
        self.dropped = 0

    @property
    def pending_rows(self) -> int:
        """Distinct rows not yet written to Redis."""
        return len(self._rows)

    def add(
        self,
        tenant: str,
        period: str,
        row: str,
        counters: dict[str, int],
        *,
        budget_usd: float | None,
        spend_nanos: int = 0,
    ) -> None:
        """Queue ``counters`` (and ``spend_nanos``) for the next flush; never waits."""
        pid = period_id(period)
        self._tenants[tenant] = TenantInfo(period, budget_usd)
        if spend_nanos:
            self._spend[(tenant, period, pid)] += spend_nanos
        if counters:
            key = StatsRow(tenant, period, pid, row)
            pending = self._rows.get(key)
            if pending is None:
                if len(self._rows) >= self._max_rows:
                    self._drop()
                    return
                pending = self._rows[key] = Counter()
            pending.update(counters)
        self._ensure_task()
        if len(self._rows) >= self._batch_rows:
            self._wake.set()

    async def flush(self) -> None:
        """Write every pending delta in one pipeline; on failure they stay pending.

        Raises:
            StoreUnavailable: Redis does not answer (the deltas are kept).
        """
        async with self._lock:
            rows, spend, tenants = self._rows, self._spend, self._tenants
            if not rows and not spend and not tenants:
                return
            self._rows, self._spend, self._tenants = {}, Counter(), {}
            try:
                await guarded(self._health, lambda: self._write(rows, spend, tenants))
            except StoreUnavailable:
                self._restore(rows, spend, tenants)
                raise
            self._dropping = False

    async def aclose(self) -> None:
        """Stop the background task and flush what is left, waiting at most ``CLOSE_FLUSH_S``."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            await asyncio.wait_for(self.flush(), CLOSE_FLUSH_S)
        if self._rows:
            logger.warning("usage stats of %d rows were not written at shutdown", len(self._rows))

    def _ensure_task(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_s)
            self._wake.clear()
            if not self._health.usable():
                continue  # wait out RedisHealth's retry pause, deltas keep aggregating
            try:
                await self.flush()
            except StoreUnavailable:
                continue  # RedisHealth logged the outage once; the deltas were kept
            except Exception as exc:
                # Dropped, not retried: a batch Redis refuses would be refused forever.
                logger.error("a usage stats batch was not written: %s", type(exc).__name__)

    async def _write(
        self,
        rows: dict[StatsRow, Counter[str]],
        spend: Counter[tuple[str, str, str]],
        tenants: dict[str, TenantInfo],
    ) -> None:
        # No MULTI: the increments are independent. A flush whose reply is lost after Redis
        # applied it is sent again, counting it twice: accepted for stats, never for budgets
        # (a call with a budget settles its spend itself, see ``RedisLedger.record``).
        pipe = self._client.pipeline(transaction=False)
        expiries: dict[str, int] = {}
        for key, counters in rows.items():
            stats_key = f"{self._prefix}stats:{key.tenant}:{key.period_id}"
            for name, value in counters.items():
                pipe.hincrby(stats_key, f"{name}:{key.row}", value)
            expiries[stats_key] = expire_at(key.period)
        for (tenant, period, pid), nanos in spend.items():
            spend_key = f"{self._prefix}spend:{tenant}:{pid}"
            pipe.incrby(spend_key, nanos)
            expiries[spend_key] = expire_at(period)
        for name, at in expiries.items():
            if at > 0:
                pipe.expireat(name, at)
        for tenant, info in tenants.items():
            entry = orjson.dumps({"period": info.period, "budget_usd": info.budget_usd})
            pipe.hset(f"{self._prefix}tenants", tenant, entry)
        await pipe.execute()

    def _restore(
        self,
        rows: dict[StatsRow, Counter[str]],
        spend: Counter[tuple[str, str, str]],
        tenants: dict[str, TenantInfo],
    ) -> None:
        # Deltas added during the failed write are newer: merge the old ones under them.
        for key, counters in rows.items():
            pending = self._rows.get(key)
            if pending is None:
                if len(self._rows) >= self._max_rows:
                    self._drop()
                    continue
                pending = self._rows[key] = Counter()
            pending.update(counters)
        self._spend.update(spend)
        for tenant, info in tenants.items():
            self._tenants.setdefault(tenant, info)

    def _drop(self) -> None:
        self.dropped += 1
        if not self._dropping:
            self._dropping = True
            logger.warning(
                "usage stats are dropped: %d rows wait for the state store already",
                self._max_rows,
            )
