"""Per-provider concurrency limits: calls in flight at most, and a bounded wait queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from llm_gateway_server.core.errors import DeadlineExceeded, LimitExceeded
from llm_gateway_server.core.types import AttemptRecord


class ConcurrencyLimited(LimitExceeded):
    """A provider's wait queue is full (RESOURCE_EXHAUSTED, not UNAVAILABLE).

    Raised by the router when the last target it could try was refused for this reason;
    ``attempts`` is the fallback trace like ``NoTargetLeft.attempts``. The metadata names
    the provider and the limits it enforces, and ``retry_after_s`` (RetryInfo) when a slot
    is likely free again.
    """

    default_reason = "CONCURRENCY_LIMITED"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        limits: Mapping[str, int] | None = None,
        attempts: Sequence[AttemptRecord] = (),
        retry_after_s: float | None = None,
    ) -> None:
        metadata = {"provider": provider, **{k: str(v) for k, v in (limits or {}).items()}}
        super().__init__(message, metadata=metadata, retry_after_s=retry_after_s)
        self.provider = provider
        self.limits = dict(limits or {})
        self.attempts = tuple(attempts)


class ProviderLimiter:
    """Admits at most ``max_in_flight`` calls (0: unlimited) and queues ``max_queue`` more.

    Waiting respects the caller's deadline. ``asyncio.Semaphore`` hands permits over in
    FIFO order and copes with waiters cancelled after being woken, so it does the work.
    """

    def __init__(
        self, provider: str, *, max_in_flight: int, max_queue: int, clock: Callable[[], float]
    ) -> None:
        """Create an idle limiter."""
        self.provider = provider
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self._clock = clock
        self._sem = asyncio.Semaphore(max_in_flight) if max_in_flight > 0 else None
        self.in_flight = 0
        self.queued = 0

    def same_limits(self, max_in_flight: int, max_queue: int) -> bool:
        """True when this limiter already enforces these limits (kept across reloads)."""
        return (self.max_in_flight, self.max_queue) == (max_in_flight, max_queue)

    async def acquire(self, deadline: float) -> None:
        """Take one slot; give it back with ``release``.

        Raises:
            ConcurrencyLimited: ``max_queue`` calls are already waiting.
            DeadlineExceeded: the deadline passed while waiting.
        """
        if self._sem is not None:
            await self._acquire(self._sem, deadline)
        self.in_flight += 1

    def release(self) -> None:
        """Give back the slot taken by ``acquire``."""
        self.in_flight -= 1
        if self._sem is not None:
            self._sem.release()

    async def _acquire(self, sem: asyncio.Semaphore, deadline: float) -> None:
        if not sem.locked():
            await sem.acquire()
            return
        if self.queued >= self.max_queue:
            raise ConcurrencyLimited(
                f"provider {self.provider}: {self.in_flight} calls in flight and "
                f"{self.queued} waiting (max_in_flight {self.max_in_flight}, "
                f"max_queue {self.max_queue})",
                provider=self.provider,
                limits={"max_in_flight": self.max_in_flight, "max_queue": self.max_queue},
            )
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise DeadlineExceeded("deadline passed while waiting for a free slot")
        self.queued += 1
        try:
            async with asyncio.timeout(remaining):
                await sem.acquire()
        except TimeoutError:
            raise DeadlineExceeded(
                f"deadline passed while waiting for a free slot at provider {self.provider}"
            ) from None
        finally:
            self.queued -= 1
