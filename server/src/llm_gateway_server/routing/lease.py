"""The lease of one upstream call on one target: everything the call holds, given back once.

A lease owns the breaker ticket, the provider's concurrency slot, the target's in-flight
count, the latency measurement and the observer's attempt scope. ``release`` is the only
place any of them is given back, and it runs exactly once (later calls do nothing), whether
the call answered, failed, was cut or was cancelled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from llm_gateway_server.core.errors import UpstreamError
from llm_gateway_server.core.types import AttemptOutcome, FinishReason, Usage
from llm_gateway_server.routing.breakers import Ticket
from llm_gateway_server.routing.concurrency import ProviderLimiter
from llm_gateway_server.routing.observer import AttemptInfo, AttemptScope, RoutingObserver
from llm_gateway_server.routing.targets import RouteTarget


class TargetLease:
    """One admitted upstream call on ``target``, until ``release``."""

    __slots__ = (
        "_clock",
        "_cm",
        "_limiter",
        "_released",
        "_ticket",
        "scope",
        "started",
        "target",
    )

    def __init__(
        self,
        target: RouteTarget,
        ticket: Ticket,
        limiter: ProviderLimiter,
        cm: contextlib.AbstractContextManager[AttemptScope],
        clock: Callable[[], float],
    ) -> None:
        self.target = target
        self._ticket = ticket
        self._limiter = limiter
        self._clock = clock
        self._cm = cm
        self._released = False
        self.scope = cm.__enter__()
        target.state.stats.in_flight += 1
        self.started = clock()

    @classmethod
    async def acquire(
        cls,
        target: RouteTarget,
        ticket: Ticket,
        limiter: ProviderLimiter,
        *,
        deadline: float,
        observer: RoutingObserver,
        info: AttemptInfo,
        clock: Callable[[], float],
    ) -> TargetLease:
        """Wait for a concurrency slot, then hold ``ticket`` and the slot.

        The wait is the gateway's own: it is not timed as upstream latency and never
        counts against the breaker.

        Raises:
            ConcurrencyLimited: the provider's wait queue is full (the ticket is released).
            DeadlineExceeded: the deadline passed while waiting (the ticket is released).
        """
        try:
            await limiter.acquire(deadline)
        except BaseException:
            target.state.breaker.release(ticket)
            raise
        try:
            return cls(target, ticket, limiter, observer.attempt(info), clock)
        except BaseException:  # pragma: no cover - an observer that fails to open a scope
            limiter.release()
            target.state.breaker.release(ticket)
            raise

    @property
    def elapsed_s(self) -> float:
        """Seconds since the upstream call started."""
        return self._clock() - self.started

    def release(
        self,
        outcome: AttemptOutcome,
        *,
        error: UpstreamError | None = None,
        message: str = "",
        usage: Usage | None = None,
        finish_reason: FinishReason | None = None,
        response_model: str = "",
        retries: int = 0,
    ) -> None:
        """Give everything back and feed the result to breaker, statistics and observer.

        An ``error`` counts as the upstream's failure (as an answer if the request caused
        it); ``SUCCESS`` without one as an answer; any other outcome (cancelled, a timeout
        the caller's deadline caused) as no result at all. ``outcome`` is what the
        observer records.
        """
        if self._released:
            return
        self._released = True
        target = self.target
        stats = target.state.stats
        breaker = target.state.breaker
        latency = self._clock() - self.started
        stats.in_flight -= 1
        self._limiter.release()
        if error is not None and not error.upstream_fault:
            # A wait for the gateway's own pool timed out: nothing reached the upstream.
            breaker.release(self._ticket)
            stats.note_error(message)
        elif error is not None:
            breaker.failed(self._ticket, error)
            if not error.caller_caused:
                stats.window.add(latency, ok=False)
                stats.note_error(message)
        elif outcome is AttemptOutcome.SUCCESS:
            breaker.succeeded(self._ticket)
            stats.window.add(latency, ok=True)
        else:
            breaker.release(self._ticket)
        self.scope.finish(
            outcome,
            usage=usage,
            response_model=response_model,
            finish_reason=finish_reason,
            error=message,
            retries=retries,
        )
        self._cm.__exit__(None, None, None)
