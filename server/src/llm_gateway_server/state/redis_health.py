"""Tracks whether Redis answers, so an outage costs one log line and no per-request waits."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

from llm_gateway_server.core.redaction import redact

logger = logging.getLogger(__name__)
T = TypeVar("T")


class RedisHealth:
    """Shared by every Redis-backed store of one replica.

    After a failure Redis is skipped for ``retry_s`` (callers take their fallback at
    once instead of waiting on timeouts); the next call after that tries again. The
    outage and the recovery are each logged once.
    """

    def __init__(
        self,
        url: str,
        *,
        retry_s: float,
        fail_open: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._where = redact(url)
        self._retry_s = retry_s
        self._fail_open = fail_open
        self._clock = clock
        self._down = False
        self._retry_at = 0.0

    def usable(self) -> bool:
        """False while Redis is known down and not yet due for another try."""
        return not self._down or self._clock() >= self._retry_at

    def retry_in_s(self) -> float:
        """Seconds until Redis is tried again (0 when it is up)."""
        return max(self._retry_at - self._clock(), 0.0) if self._down else 0.0

    def failed(self, exc: BaseException) -> None:
        """Record a failed command; logs only the transition from up to down."""
        self._retry_at = self._clock() + self._retry_s
        if self._down:
            return
        self._down = True
        limits = "let through" if self._fail_open else "refused"
        logger.warning(
            "Redis at %s is unreachable (%s): the cache is bypassed, rate-limited and "
            "budgeted requests are %s, circuit breakers use local state; retrying every %.1fs",
            self._where,
            type(exc).__name__,
            limits,
            self._retry_s,
        )

    def succeeded(self) -> None:
        """Record a successful command; logs only the recovery."""
        if self._down:
            self._down = False
            logger.warning("Redis at %s is reachable again: shared state resumed", self._where)


class StoreUnavailable(Exception):
    """Redis did not answer (or is in its retry pause); the caller takes its fallback."""


async def guarded(health: RedisHealth, operation: Callable[[], Awaitable[T]]) -> T:
    """Run one Redis operation, recording the outcome in ``health``.

    Raises:
        StoreUnavailable: Redis failed now, or failed recently and is not due for a retry.
    """
    if not health.usable():
        raise StoreUnavailable
    try:
        result = await operation()
    except (RedisError, OSError) as exc:
        health.failed(exc)
        raise StoreUnavailable from exc
    health.succeeded()
    return result
