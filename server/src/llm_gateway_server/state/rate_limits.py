"""Request and token rate limits per tenant and per tenant and route, with ``limits``.

Requests use a moving window (exact: N per rolling minute); tokens use a sliding-window
counter (one counter per window instead of one entry per token). Tokens are counted in two
steps: the prompt estimate before the call (refused when it does not fit), then the rest
of the real usage after it, so a call that turned out bigger fills the window instead of
being forgotten. Both are atomic in Redis (the library's Lua scripts) and in memory.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from llm_gateway_server.core.errors import LimitExceeded, StateUnavailable
from llm_gateway_server.core.types import Principal
from llm_gateway_server.state.keys import route_limits_of
from llm_gateway_server.state.redis_health import RedisHealth, StoreUnavailable, guarded

T = TypeVar("T")
_MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class _Check:
    item: RateLimitItem
    identifiers: tuple[str, ...]
    scope: str


def _checks(kind: str, principal: Principal, route: str) -> list[_Check]:
    checks: list[_Check] = []
    key_limit = principal.rpm if kind == "rpm" else principal.tpm
    if key_limit is not None:
        checks.append(_Check(RateLimitItemPerMinute(key_limit), (kind, principal.tenant), "key"))
    route_limit = route_limits_of(principal).get(route)
    if route_limit is not None:
        amount = route_limit.rpm if kind == "rpm" else route_limit.tpm
        if amount is not None:
            ids = (kind, principal.tenant, route)
            checks.append(_Check(RateLimitItemPerMinute(amount), ids, "route"))
    return checks


class RateLimits:
    """Applies a principal's ``rpm``/``tpm`` and its per-route limits.

    With Redis (``health`` set), an unreachable store lets requests through when
    ``fail_open`` and refuses them otherwise.
    """

    def __init__(self, storage: Storage, *, health: RedisHealth | None, fail_open: bool) -> None:
        self._requests = MovingWindowRateLimiter(storage)
        self._tokens = SlidingWindowCounterRateLimiter(storage)
        self._health = health
        self.fail_open = fail_open

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self._health is None:
            return await operation()
        return await guarded(self._health, operation)

    def _unavailable(self, limit: str) -> StateUnavailable:
        # The caller is not over any limit: the store that counts it does not answer.
        retry = self._health.retry_in_s() if self._health is not None else None
        return StateUnavailable(
            f"{limit} cannot be checked right now (state store unavailable)",
            metadata={"limit": limit},
            retry_after_s=retry or 1.0,
        )

    async def _retry_after(
        self, limiter: MovingWindowRateLimiter | SlidingWindowCounterRateLimiter, check: _Check
    ) -> float | None:
        try:
            stats = await self._run(
                partial(limiter.get_window_stats, check.item, *check.identifiers)
            )
        except StoreUnavailable:
            return None
        return min(max(stats.reset_time - time.time(), 0.001), _MAX_RETRY_AFTER_S)

    async def acquire_request(self, principal: Principal, route: str) -> None:
        """Count one request; raise ``LimitExceeded`` (RATE_LIMITED) when over a limit."""
        for check in _checks("rpm", principal, route):
            try:
                ok = await self._run(partial(self._requests.hit, check.item, *check.identifiers))
            except StoreUnavailable:
                if self.fail_open:
                    return
                raise self._unavailable("requests_per_minute") from None
            if not ok:
                raise LimitExceeded(
                    f"rate limit of {check.item.amount} requests per minute exceeded"
                    + (f" on route {route}" if check.scope == "route" else ""),
                    reason="RATE_LIMITED",
                    metadata=_metadata(principal, route, check, "requests_per_minute"),
                    retry_after_s=await self._retry_after(self._requests, check),
                )

    async def acquire_tokens(self, principal: Principal, route: str, tokens: int) -> None:
        """Count the estimated ``tokens``; raise ``LimitExceeded`` (TOKEN_RATE_LIMITED)."""
        if tokens <= 0:
            return
        for check in _checks("tpm", principal, route):
            if tokens > check.item.amount:
                raise LimitExceeded(
                    f"the request (about {tokens} tokens) exceeds the limit of "
                    f"{check.item.amount} tokens per minute",
                    reason="TOKEN_RATE_LIMITED",
                    metadata=_metadata(principal, route, check, "tokens_per_minute"),
                )
            try:
                ok = await self._run(
                    partial(self._tokens.hit, check.item, *check.identifiers, cost=tokens)
                )
            except StoreUnavailable:
                if self.fail_open:
                    return
                raise self._unavailable("tokens_per_minute") from None
            if not ok:
                raise LimitExceeded(
                    f"token limit of {check.item.amount} tokens per minute exceeded"
                    + (f" on route {route}" if check.scope == "route" else ""),
                    reason="TOKEN_RATE_LIMITED",
                    metadata=_metadata(principal, route, check, "tokens_per_minute"),
                    retry_after_s=await self._retry_after(self._tokens, check),
                )

    async def add_tokens(self, principal: Principal, route: str, tokens: int) -> None:
        """Count ``tokens`` used beyond the estimate; never raises.

        When they do not fit any more, the window is filled up instead, so the next calls
        wait for it to slide.
        """
        if tokens <= 0:
            return
        for check in _checks("tpm", principal, route):
            try:
                await self._fill(check, tokens)
            except StoreUnavailable:
                return

    async def _fill(self, check: _Check, tokens: int) -> None:
        ids = check.identifiers
        cost = min(tokens, check.item.amount)
        if await self._run(lambda: self._tokens.hit(check.item, *ids, cost=cost)):
            return
        stats = await self._run(lambda: self._tokens.get_window_stats(check.item, *ids))
        if stats.remaining > 0:
            await self._run(lambda: self._tokens.hit(check.item, *ids, cost=stats.remaining))


def _metadata(principal: Principal, route: str, check: _Check, limit: str) -> dict[str, str]:
    metadata = {"tenant": principal.tenant, "limit": limit, "value": str(check.item.amount)}
    if check.scope == "route":
        metadata["route"] = route
    return metadata
