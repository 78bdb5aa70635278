"""Builds the state layer from config: in memory by default, Redis with ``state.redis_url``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

import redis.asyncio
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.core.redaction import redact
from llm_gateway_server.state.breakers import ApplyTransition, BreakerSharing
from llm_gateway_server.state.keys import KeyStore
from llm_gateway_server.state.ledger import Ledger, MemoryLedger
from llm_gateway_server.state.policy import RequestPolicy
from llm_gateway_server.state.pricing import load_cost_map, needs_cost_map
from llm_gateway_server.state.rate_limits import RateLimits
from llm_gateway_server.state.redis_health import RedisHealth
from llm_gateway_server.state.redis_ledger import RedisLedger
from llm_gateway_server.state.response_cache import (
    MemoryResponseCache,
    RedisResponseCache,
    ResponseCache,
)
from llm_gateway_server.state.stats import StatsStore

logger = logging.getLogger(__name__)
#: Seconds ``aclose`` waits for the Redis client to close.
_CLOSE_TIMEOUT_S = 2.0


def _limits_uri(url: str) -> str:
    # limits picks its backend from the scheme; the pool passed along does the connecting.
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url


class GatewayState:
    """Keys, request policy, stats and breaker sharing of one replica."""

    def __init__(
        self,
        snapshot: ConfigSnapshot,
        *,
        keys: KeyStore,
        policy: RequestPolicy,
        stats: StatsStore,
        health: RedisHealth | None = None,
        client: redis.asyncio.Redis | None = None,
        breakers: BreakerSharing | None = None,
    ) -> None:
        self.keys = keys
        self.policy = policy
        self.stats = stats
        self.health = health
        self._client = client
        #: Routing's ``BreakerPeers``: ``None`` in memory mode (breakers stay local).
        self.breaker_peers = breakers
        self._snapshot = snapshot

    @property
    def backend(self) -> str:
        """``memory`` or ``redis``."""
        return "redis" if self._client is not None else "memory"

    async def start(self, *, on_peer_transition: ApplyTransition) -> None:
        """Start the background work of shared state (breaker sharing), if any."""
        if self.breaker_peers is not None:
            await self.breaker_peers.start(on_peer_transition)

    def swap(self, snapshot: ConfigSnapshot) -> None:
        """Take a reloaded config: keys, limits, budgets and cache settings.

        The backend (``state.redis_url``) is fixed at start-up; changing it needs a restart.
        """
        old = self._snapshot.config
        new = snapshot.config
        if new.state.redis_url != old.state.redis_url:
            logger.warning("state.redis_url changed: the new value takes effect after a restart")
        self.keys.swap(new.auth)
        cache: ResponseCache | None = None
        current = self.policy.cache
        if isinstance(current, MemoryResponseCache) and (
            new.cache.max_entries != current.max_entries
        ):
            cache = MemoryResponseCache(new.cache.max_entries)
        self.policy.swap(snapshot, cache=cache)
        self._snapshot = snapshot

    async def aclose(self) -> None:
        """Stop breaker sharing, flush pending stats and close Redis connections."""
        if self.breaker_peers is not None:
            await self.breaker_peers.aclose()
        # Before the client closes: the last stats batch needs it (bounded wait).
        await self.stats.aclose()
        if self._client is not None:
            # Bounded: closing a pool whose server just went away must not hold shutdown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._client.aclose(), _CLOSE_TIMEOUT_S)


async def build_state(snapshot: ConfigSnapshot) -> GatewayState:
    """The state layer for ``snapshot``: memory by default, Redis when ``state.redis_url``.

    Never fails because Redis is down at start-up: everything degrades as configured and
    recovers once Redis answers.
    """
    config = snapshot.config
    if needs_cost_map(p for n, p in config.providers.items() if snapshot.provider_enabled(n)):
        # Read LiteLLM's cost map off the event loop, once, before the first request.
        await asyncio.to_thread(load_cost_map)
    state = config.state
    if state.redis_url is None:
        ledger: Ledger = MemoryLedger()
        policy = RequestPolicy(
            snapshot,
            limits=RateLimits(MemoryStorage(), health=None, fail_open=state.limits_fail_open),
            ledger=ledger,
            cache=MemoryResponseCache(config.cache.max_entries),
        )
        return GatewayState(
            snapshot, keys=KeyStore(config.auth), policy=policy, stats=StatsStore(ledger)
        )
    health = RedisHealth(
        state.redis_url, retry_s=state.redis_retry_s, fail_open=state.limits_fail_open
    )
    pool = redis.asyncio.ConnectionPool.from_url(
        state.redis_url,
        socket_timeout=state.redis_timeout_s,
        socket_connect_timeout=state.redis_timeout_s,
        # One immediate retry replaces a pooled connection that died with a restart;
        # no backoff: an outage is handled by RedisHealth, not by waiting here.
        retry=AsyncRetry(NoBackoff(), 1),
    )
    client = redis.asyncio.Redis(connection_pool=pool)
    # One pool for everything; limits' own option types do not list a pool.
    shared_pool: dict[str, Any] = {"connection_pool": pool}
    # Built in a thread: limits imports its optional Redis clients (coredis among them)
    # when the storage is made, about 1.2 s of imports that would hold the event loop.
    storage: Storage = await asyncio.to_thread(
        functools.partial(
            RedisStorage,
            _limits_uri(state.redis_url),
            implementation="redispy",
            key_prefix=f"{state.key_prefix}limits",
            **shared_pool,
        )
    )
    ledger = RedisLedger(client, health, prefix=state.key_prefix)
    policy = RequestPolicy(
        snapshot,
        limits=RateLimits(storage, health=health, fail_open=state.limits_fail_open),
        ledger=ledger,
        cache=RedisResponseCache(client, health, prefix=state.key_prefix),
    )
    keys = KeyStore(config.auth, client=client, health=health, prefix=state.key_prefix)
    logger.info("shared state in Redis at %s", redact(state.redis_url))
    return GatewayState(
        snapshot,
        keys=keys,
        policy=policy,
        stats=StatsStore(ledger),
        health=health,
        client=client,
        breakers=BreakerSharing(
            client, health, prefix=state.key_prefix, retry_s=state.redis_retry_s
        ),
    )
