"""What every attempt needs, unary or streamed: the call's context, outcomes and final errors."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from llm_gateway_server.core.errors import (
    DeadlineExceeded,
    GatewayError,
    NoTargetLeft,
    RequestInvalid,
    UpstreamError,
    UpstreamFailure,
)
from llm_gateway_server.core.redaction import redact
from llm_gateway_server.core.types import (
    AttemptOutcome,
    AttemptRecord,
    CallContext,
    Sampling,
    Task,
)
from llm_gateway_server.routing.balancing import order_targets
from llm_gateway_server.routing.breakers import BreakerState, Ticket
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from llm_gateway_server.routing.observer import AttemptInfo, AttemptScope, RoutingObserver
from llm_gateway_server.routing.privacy import locality_permitted
from llm_gateway_server.routing.retries import plan_retry
from llm_gateway_server.routing.routes import Resolution
from llm_gateway_server.routing.table import RoutingTable
from llm_gateway_server.routing.targets import RouteTarget

_log = logging.getLogger(__name__)

_OUTCOMES = {
    UpstreamFailure.TIMEOUT: AttemptOutcome.TIMEOUT,
    UpstreamFailure.RATE_LIMITED: AttemptOutcome.RATE_LIMITED,
    UpstreamFailure.EMPTY_ANSWER: AttemptOutcome.EMPTY_ANSWER,
}


def outcome_for(error: UpstreamError) -> AttemptOutcome:
    """The attempt outcome an upstream failure is reported as."""
    if error.caller_caused:
        return AttemptOutcome.REQUEST_REJECTED
    return _OUTCOMES.get(error.failure, AttemptOutcome.UPSTREAM_ERROR)


def as_upstream_error(exc: Exception, *, timeout_s: float, provider: str) -> UpstreamError:
    """Classify what an attempt raised; anything but ``UpstreamError`` is the adapter's fault."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, TimeoutError):
        return UpstreamError(UpstreamFailure.TIMEOUT, f"no answer within {timeout_s:.3g} s")
    # A bug in an adapter must not take the gateway down: log it, treat it as a bad answer.
    _log.error("provider %s: adapter raised %s", provider, type(exc).__name__, exc_info=exc)
    return UpstreamError(UpstreamFailure.BAD_RESPONSE, f"adapter raised {type(exc).__name__}")


#: A timeout this close to the caller's deadline is the deadline's doing.
_DEADLINE_MARGIN_S = 0.05


@dataclass(frozen=True, slots=True)
class Failed:
    """A target that did not answer: its trace line, and a hint for RetryInfo."""

    record: AttemptRecord
    error: GatewayError
    retry_after_s: float | None = None


class CallAttempts:
    """The per-call side of routing: order, admission, records, the final error."""

    def __init__(
        self,
        resolution: Resolution,
        ctx: CallContext,
        *,
        table: RoutingTable,
        observer: RoutingObserver,
        clock: Callable[[], float],
        rng: random.Random,
        operation: str,
        streaming: bool,
        sampling: Sampling | None = None,
    ) -> None:
        """Bind one call's resolution and context."""
        self.resolution = resolution
        self.ctx = ctx
        self.table = table
        self.observer = observer
        self.clock = clock
        self.rng = rng
        self.operation = operation
        self.streaming = streaming
        self.sampling = sampling
        self.attempts: list[AttemptRecord] = []
        self.failures: list[Failed] = []
        self.hints: list[float] = []

    def check_task(self, *, embedding: bool) -> None:
        """Refuse a chat on an embedding route and an embedding on a chat route."""
        task = self.resolution.task
        if (task is Task.EMBEDDING) != embedding:
            wanted = "an embedding" if embedding else "a chat"
            raise RequestInvalid(
                "model",
                f"{self.resolution.route!r} serves task {task.value}, not {wanted} request",
                reason="TASK_MISMATCH",
            )

    def order(self) -> list[RouteTarget]:
        """This call's fallback order; STRICT calls never see a cloud target here."""
        permitted = [
            t
            for t in self.resolution.targets
            if locality_permitted(self.resolution.privacy, t.locality)
        ]
        return order_targets(
            permitted,
            self.resolution.balancing,
            self.rng,
            demoted=lambda t: self.table.probe_failed(t.provider),
        )

    def remaining_s(self) -> float:
        """Seconds left before the caller's deadline."""
        return self.ctx.deadline - self.clock()

    def check_deadline(self) -> None:
        """Raise ``DeadlineExceeded`` when the deadline has passed."""
        if self.remaining_s() <= 0:
            tried = len(self.attempts)
            raise DeadlineExceeded(
                f"deadline passed on {self.resolution.route!r} after {tried} attempt(s)"
                + (f": {self.summary()}" if tried else ""),
                metadata={"route": self.resolution.route},
            )

    def attempt_timeout_s(self, target: RouteTarget) -> float:
        """``min(provider.timeout_s, time left)``."""
        cfg = self.table.snapshot.config.providers[target.provider]
        return min(cfg.timeout_s, self.remaining_s())

    def info(self, target: RouteTarget, index: int, breaker_state: str) -> AttemptInfo:
        """The observer's view of an attempt about to start."""
        cfg = self.table.snapshot.config.providers[target.provider]
        sampling = self.sampling
        return AttemptInfo(
            route=self.resolution.route,
            provider=target.provider,
            provider_kind=cfg.kind.value,
            model=target.model,
            attempt=index,
            operation=self.operation,
            streaming=self.streaming,
            breaker_state=breaker_state,
            privacy=self.resolution.privacy,
            server_address=(urlsplit(cfg.api_base).hostname or "") if cfg.api_base else "",
            temperature=sampling.temperature if sampling else None,
            top_p=sampling.top_p if sampling else None,
            max_tokens=sampling.max_tokens if sampling else None,
        )

    def clean(self, text: str) -> str:
        """``text`` without credentials (adapters already strip them; belt and braces)."""
        return redact(text, *self.table.snapshot.secrets())

    def circuit_open(self, target: RouteTarget, index: int, tries: int) -> Failed:
        """The trace line of a target skipped for its open breaker (no upstream call)."""
        wait = target.state.breaker.open_remaining_s()
        message = "circuit open" + (f", probe in {wait:.3g} s" if wait > 0 else ", probe running")
        with self.observer.attempt(self.info(target, index, "open")) as scope:
            scope.finish(AttemptOutcome.CIRCUIT_OPEN, error=message, retries=max(0, tries - 1))
        record = AttemptRecord(
            target.provider,
            target.model,
            AttemptOutcome.CIRCUIT_OPEN,
            0.0,
            message,
            max(0, tries - 1),
        )
        error = UpstreamError(UpstreamFailure.CONNECT, message)
        return Failed(record, error, wait if wait > 0 else None)

    def limited(self, target: RouteTarget, index: int, exc: ConcurrencyLimited) -> Failed:
        """The trace line of a target whose wait queue was full (no upstream call)."""
        info = self.info(target, index, target.breaker_state.value)
        with self.observer.attempt(info) as scope:
            scope.finish(AttemptOutcome.CONCURRENCY_LIMITED, error=exc.message)
        record = AttemptRecord(
            target.provider, target.model, AttemptOutcome.CONCURRENCY_LIMITED, 0.0, exc.message
        )
        return Failed(record, exc)

    def settle(
        self,
        target: RouteTarget,
        ticket: Ticket,
        scope: AttemptScope,
        error: UpstreamError,
        *,
        latency_s: float,
        retries: int,
    ) -> str:
        """Feed a failed upstream call into breaker, statistics and observer; return its text."""
        message = self.clean(f"{error.failure.value}: {error.message}")
        target.state.breaker.record(ticket, ok=False, caller_caused=error.caller_caused)
        if not error.caller_caused:
            target.state.stats.window.add(latency_s, ok=False)
            target.state.stats.note_error(message)
        scope.finish(outcome_for(error), error=message, retries=retries)
        return message

    def retry_delay_s(self, target: RouteTarget, error: UpstreamError, tries: int) -> float | None:
        """Seconds to wait before trying ``target`` again, or ``None`` to move on."""
        if error.caller_caused or target.state.breaker.state is not BreakerState.CLOSED:
            return None
        decision = plan_retry(
            error,
            retry=self.table.snapshot.config.providers[target.provider].retry,
            tries=tries,
            remaining_s=self.remaining_s(),
            typical_s=target.state.stats.window.p50(),
            rng=self.rng,
        )
        return decision.delay_s if decision.retry else None

    def failed(
        self, target: RouteTarget, error: UpstreamError, message: str, *, started: float, tries: int
    ) -> Failed:
        """The trace line of a target whose upstream call failed."""
        record = AttemptRecord(
            target.provider,
            target.model,
            outcome_for(error),
            self.clock() - started,
            message,
            tries - 1,
        )
        return Failed(record, error, error.retry_after_s)

    def record(self, record: AttemptRecord) -> None:
        """Append a trace line and report it to the call's sink (the call record)."""
        self.attempts.append(record)
        self.ctx.attempts.attempt_ended(record)

    def succeeded(self, target: RouteTarget, *, started: float, tries: int) -> None:
        """Append the trace line of the target that answered."""
        self.record(
            AttemptRecord(
                target.provider,
                target.model,
                AttemptOutcome.SUCCESS,
                self.clock() - started,
                "",
                tries - 1,
            )
        )

    def add(self, failed: Failed) -> None:
        """Append a failed target to the trace."""
        self.record(failed.record)
        self.failures.append(failed)
        if failed.retry_after_s is not None and failed.retry_after_s > 0:
            self.hints.append(failed.retry_after_s)

    def moved_on(self, target: RouteTarget) -> None:
        """Tell the observer the call falls back from ``target``."""
        self.observer.fallback(self.resolution.route, target.provider, target.model)

    def summary(self) -> str:
        """The trace as one credential-free line."""
        return "; ".join(
            f"{a.provider}/{a.model}: {a.outcome.value}" + (f" ({a.error})" if a.error else "")
            for a in self.attempts
        )

    def exhausted(self, last: Failed | None) -> GatewayError:
        """The error when every target failed: RESOURCE_EXHAUSTED if load shedding was the
        only or last reason, else ALL_TARGETS_FAILED; with the soonest retry hint."""
        retry_after = min(self.hints) if self.hints else None
        route = self.resolution.route
        outcomes = {a.outcome for a in self.attempts}
        shed_only = outcomes <= {AttemptOutcome.CONCURRENCY_LIMITED, AttemptOutcome.CIRCUIT_OPEN}
        if last is not None and isinstance(last.error, ConcurrencyLimited):
            limited: ConcurrencyLimited | None = last.error
        elif shed_only and AttemptOutcome.CONCURRENCY_LIMITED in outcomes:
            limited = next(
                f.error for f in self.failures if isinstance(f.error, ConcurrencyLimited)
            )
        else:
            limited = None
        if limited is not None:
            return ConcurrencyLimited(
                f"{route!r}: no target has a free slot: {self.summary()}",
                provider=limited.provider,
                attempts=self.attempts,
                retry_after_s=retry_after,
            )
        if not self.attempts:
            return NoTargetLeft(f"{route!r}: no target to try", metadata={"route": route})
        if (
            self.attempts[-1].outcome is AttemptOutcome.TIMEOUT
            and self.remaining_s() <= _DEADLINE_MARGIN_S
        ):
            # The last attempt ran out of the caller's time, not of the provider's timeout:
            # the caller's deadline is the reason, whatever happened before it.
            return DeadlineExceeded(
                f"deadline passed on {route!r}: {self.summary()}", metadata={"route": route}
            )
        return NoTargetLeft(
            f"every target of {route!r} failed: {self.summary()}",
            attempts=self.attempts,
            retry_after_s=retry_after,
            metadata={"route": route},
        )
