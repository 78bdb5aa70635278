"""The ledger in Redis, shared by every replica; check-and-reserve is one Lua script.

Key layout (``P`` = ``state.key_prefix``, ``PID`` = period id such as ``m2025-11``):

- ``P spend:<tenant>:<PID>``  string, integer nano-dollars spent (INCRBY).
- ``P resv:<tenant>:<PID>``   hash, reservation id -> ``<nanos>:<expiry unix ms>``.
- ``P stats:<tenant>:<PID>``  hash, ``<counter>:<route>[\t<caller>]`` -> integer (HINCRBY).
- ``P tenants``               hash, tenant -> ``{"period": ..., "budget_usd": ...}``.

Period keys expire a week after their period ends (``total`` never does).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from llm_gateway_server.state.ledger import (
    Reservation,
    StatsResult,
    UsageRecord,
    new_reservation_id,
    route_view,
)
from llm_gateway_server.state.periods import expire_at, period_id
from llm_gateway_server.state.redis_health import RedisHealth, guarded
from llm_gateway_server.state.stats_writer import StatsWriter
from llm_gateway_server.state.views import NANOS_PER_USD, RouteStatsView, TenantBudgetView

# KEYS: spend, resv. ARGV: budget nanos, nanos, reservation id, ttl ms, least nanos.
# Grants nanos, or what is left when that is at least the least; returns the grant (0: none).
# Expired reservations (a replica died mid-call) are dropped while summing.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = 0
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local amount, expiry = string.match(entries[i + 1], '^(%d+):(%d+)$')
  if amount == nil or tonumber(expiry) <= now then
    redis.call('HDEL', KEYS[2], entries[i])
  else
    held = held + tonumber(amount)
  end
end
local free = tonumber(ARGV[1]) - spent - held
local grant = math.min(tonumber(ARGV[2]), free)
if grant < tonumber(ARGV[5]) or grant <= 0 then
  return 0
end
local ttl = tonumber(ARGV[4])
local entry = string.format('%d', grant) .. ':' .. string.format('%d', now + ttl)
redis.call('HSET', KEYS[2], ARGV[3], entry)
redis.call('PEXPIRE', KEYS[2], ttl)
return grant
"""

# KEYS: spend, resv, tenants. ARGV: reservation id ('' = none), cost nanos,
# expire-at (0 = never), tenant, tenant info. Stats go through the StatsWriter instead.
_RECORD = """
if ARGV[1] ~= '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
local cost = tonumber(ARGV[2])
if cost > 0 then
  redis.call('INCRBY', KEYS[1], ARGV[2])
  local expire_at = tonumber(ARGV[3])
  if expire_at > 0 then redis.call('EXPIREAT', KEYS[1], expire_at) end
end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
return 1
"""


class RedisLedger:
    """Spend and stats in Redis. Raises ``StoreUnavailable`` when Redis does not answer."""

    def __init__(
        self,
        client: Redis,
        health: RedisHealth,
        *,
        prefix: str,
        writer: StatsWriter | None = None,
    ) -> None:
        self._client = client
        self._health = health
        self._prefix = prefix
        self._writer = writer or StatsWriter(client, health, prefix=prefix)
        self._reserve = client.register_script(_RESERVE)
        self._record = client.register_script(_RECORD)

    def _key(self, kind: str, tenant: str, pid: str) -> str:
        return f"{self._prefix}{kind}:{tenant}:{pid}"

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
        pid = period_id(period)
        rid = new_reservation_id()
        keys = [self._key("spend", tenant, pid), self._key("resv", tenant, pid)]
        least = nanos if min_nanos is None else min(min_nanos, nanos)
        ttl_ms = max(int(ttl_s * 1000), 1)
        args: list[str | int] = [budget_nanos, nanos, rid, ttl_ms, least]
        granted = int(await guarded(self._health, lambda: self._reserve(keys=keys, args=args)) or 0)
        return Reservation(tenant, pid, rid, granted) if granted > 0 else None

    @property
    def writer(self) -> StatsWriter:
        """The background writer of this ledger's stats."""
        return self._writer

    async def record(self, record: UsageRecord) -> None:
        """Queue the counters for the stats writer; settle a budget's spend in one round trip.

        Without a budget (no reservation, no ``budget_usd``) nothing waits on Redis: the
        spend is a stat like the others and goes with the next batch.
        """
        row = f"{record.route}\t{record.caller}" if record.caller else record.route
        settles = record.reservation is not None or record.budget_usd is not None
        self._writer.add(
            record.tenant,
            record.period,
            row,
            record.counters(),
            budget_usd=record.budget_usd,
            spend_nanos=0 if settles else record.cost_nanos,
        )
        if settles:
            await self._settle(record)

    async def _settle(self, record: UsageRecord) -> None:
        # Awaited: the next reservation of this tenant must see this spend, not the hold.
        pid = period_id(record.period)
        res = record.reservation
        resv_pid = res.period_id if res is not None else pid
        keys = [
            self._key("spend", record.tenant, pid),
            self._key("resv", record.tenant, resv_pid),
            f"{self._prefix}tenants",
        ]
        info = orjson.dumps({"period": record.period, "budget_usd": record.budget_usd})
        args: list[str | int | bytes] = [
            res.id if res is not None else "",
            record.cost_nanos,
            expire_at(record.period),
            record.tenant,
            info,
        ]
        await guarded(self._health, lambda: self._record(keys=keys, args=args))

    async def query(
        self, tenant: str | None, route: str | None, caller: str | None = None
    ) -> StatsResult:
        """Stats and budgets of the current periods, sorted by tenant, route and caller.

        This replica's pending stats are flushed first, so it reads its own writes.
        """
        await self._writer.flush()
        registry = cast(
            "dict[bytes, bytes]",
            await guarded(self._health, lambda: self._client.hgetall(f"{self._prefix}tenants")),
        )
        tenants: list[tuple[str, dict[str, Any]]] = []
        for raw_name, raw_info in sorted(registry.items()):
            name = raw_name.decode()
            if tenant is None or name == tenant:
                tenants.append((name, orjson.loads(raw_info)))
        pipe = self._client.pipeline(transaction=False)
        for name, info in tenants:
            pid = period_id(str(info.get("period", "month")))
            pipe.hgetall(self._key("stats", name, pid))
            pipe.get(self._key("spend", name, pid))
        replies = await guarded(self._health, pipe.execute) if tenants else []
        stats: list[RouteStatsView] = []
        budgets: list[TenantBudgetView] = []
        for i, (name, info) in enumerate(tenants):
            raw_stats = cast("dict[bytes, bytes]", replies[2 * i])
            rows: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
            for raw_field, raw_value in raw_stats.items():
                counter, _, row = raw_field.decode().partition(":")
                route_name, _, caller_name = row.partition("\t")
                rows[(route_name, caller_name)][counter] = int(raw_value)
            for route_name, caller_name in sorted(rows):
                if (route is None or route_name == route) and (
                    caller is None or caller_name == caller
                ):
                    counters = rows[(route_name, caller_name)]
                    stats.append(route_view(name, route_name, counters, caller_name))
            spent = int(replies[2 * i + 1] or 0)
            budgets.append(
                TenantBudgetView(
                    tenant=name,
                    spent_usd=spent / NANOS_PER_USD,
                    budget_usd=float(info.get("budget_usd") or 0.0),
                    period=str(info.get("period", "month")),
                )
            )
        return stats, budgets

    async def aclose(self) -> None:
        """Flush the pending stats (bounded); the client is owned and closed by ``GatewayState``."""
        await self._writer.aclose()
