"""One routed call: its fallback order, deadline, attempt trace and final error."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
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
    Usage,
)
from llm_gateway_server.routing.balancing import order_targets
from llm_gateway_server.routing.breakers import BreakerState
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from llm_gateway_server.routing.observer import AttemptInfo, RoutingObserver
from llm_gateway_server.routing.privacy import locality_permitted, skipped_note
from llm_gateway_server.routing.retries import plan_retry
from llm_gateway_server.routing.routes import Resolution
from llm_gateway_server.routing.table import RoutingTable
from llm_gateway_server.routing.targets import RouteTarget
from llm_gateway_server.routing.usability import probe_demoted

_log = logging.getLogger(__name__)

_OUTCOMES = {
    UpstreamFailure.TIMEOUT: AttemptOutcome.TIMEOUT,
    UpstreamFailure.RATE_LIMITED: AttemptOutcome.RATE_LIMITED,
    UpstreamFailure.EMPTY_ANSWER: AttemptOutcome.EMPTY_ANSWER,
}

#: A timeout this close to the caller's deadline is the deadline's doing.
DEADLINE_MARGIN_S = 0.05
#: RetryInfo for a full wait queue when the target has no recent latency to go by.
_SLOT_RETRY_S = 1.0


@functools.lru_cache(maxsize=256)
def _host(api_base: str) -> str:
    # Parsed once per provider address, not once per attempt.
    return urlsplit(api_base).hostname or ""


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


class TargetTrace:
    """The trace line of one target of a call: started once, ended exactly once.

    Tries (retries of the same target) share the line; ``end`` appends the record to the
    call's trace and tells the call's ``AttemptSink``.
    """

    __slots__ = ("_call", "ended", "index", "started", "target", "tries")

    def __init__(self, call: Call, target: RouteTarget, index: int) -> None:
        self._call = call
        self.target = target
        self.index = index
        self.started = call.clock()
        self.tries = 0
        self.ended = False
        call.ctx.attempts.attempt_started(target.provider, target.model)

    @property
    def retries(self) -> int:
        """Tries after the first."""
        return max(0, self.tries - 1)

    def end(
        self,
        outcome: AttemptOutcome,
        message: str = "",
        *,
        usage: Usage | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        """Close the line (later calls do nothing)."""
        if self.ended:
            return
        self.ended = True
        call = self._call
        record = AttemptRecord(
            self.target.provider,
            self.target.model,
            outcome,
            call.clock() - self.started,
            message,
            self.retries,
            usage,
        )
        call.records.append(record)
        if retry_after_s is not None and retry_after_s > 0:
            call.hints.append(retry_after_s)
        call.ctx.attempts.attempt_ended(record)


class Call:
    """The per-call side of routing: order, deadline, trace, the final error."""

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
        self.records: list[AttemptRecord] = []
        self.hints: list[float] = []
        self.limited: ConcurrencyLimited | None = None

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
        privacy = self.resolution.privacy
        permitted = [t for t in self.resolution.targets if locality_permitted(privacy, t.locality)]
        return order_targets(
            permitted,
            self.resolution.balancing,
            self.rng,
            demoted=lambda t: probe_demoted(self.table, t.state),
        )

    def remaining_s(self) -> float:
        """Seconds left before the caller's deadline."""
        return self.ctx.deadline - self.clock()

    def deadline_error(self, what: str = "") -> DeadlineExceeded:
        """The caller's deadline passed (``what``: where, if not between attempts)."""
        route = self.resolution.route
        tried = len(self.records)
        trace = f": {self.summary()}" if tried else ""
        return DeadlineExceeded(
            f"deadline passed on {route!r}{what} after {tried} attempt(s){trace}",
            metadata={"route": route},
        )

    def check_deadline(self) -> None:
        """Raise ``DeadlineExceeded`` when the deadline has passed."""
        if self.remaining_s() <= 0:
            raise self.deadline_error()

    def by_deadline(self, error: UpstreamError) -> bool:
        """True when ``error`` is a timeout the caller's deadline caused, not the upstream."""
        return error.failure is UpstreamFailure.TIMEOUT and self.remaining_s() <= DEADLINE_MARGIN_S

    def timeout_s(self, target: RouteTarget) -> float:
        """The attempt's total time: ``min(provider.timeout_s, time left)``."""
        return min(
            self.table.snapshot.config.providers[target.provider].timeout_s, self.remaining_s()
        )

    def first_token_s(self, target: RouteTarget, total_s: float) -> float:
        """Time for a stream's first payload: ``first_token_timeout_s`` within the total."""
        first = self.table.snapshot.config.providers[target.provider].first_token_timeout_s
        return total_s if first is None else min(first, total_s)

    def info(self, target: RouteTarget, index: int, breaker_state: BreakerState) -> AttemptInfo:
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
            breaker_state=breaker_state.value,
            privacy=self.resolution.privacy,
            server_address=_host(cfg.api_base) if cfg.api_base else "",
            temperature=sampling.temperature if sampling else None,
            top_p=sampling.top_p if sampling else None,
            max_tokens=sampling.max_tokens if sampling else None,
        )

    def describe(self, error: UpstreamError) -> str:
        """``failure: message`` without credentials (adapters strip them; belt and braces)."""
        return redact(f"{error.failure.value}: {error.message}", *self.table.snapshot.secrets())

    def skip(self, trace: TargetTrace, outcome: AttemptOutcome, message: str) -> None:
        """Report a target skipped without an upstream call (open breaker, full queue)."""
        target = trace.target
        with self.observer.attempt(self.info(target, trace.index, target.breaker_state)) as scope:
            scope.finish(outcome, error=message, retries=trace.retries)

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

    def slot_retry_s(self, target: RouteTarget) -> float:
        """RetryInfo for a full queue: about one call's time, when a slot frees up."""
        return target.state.stats.window.p50() or _SLOT_RETRY_S

    def moved_on(self, target: RouteTarget) -> None:
        """Tell the observer the call falls back from ``target``."""
        self.observer.fallback(self.resolution.route, target.provider, target.model)

    def summary(self) -> str:
        """The trace as one credential-free line."""
        return "; ".join(
            f"{a.provider}/{a.model}: {a.outcome.value}" + (f" ({a.error})" if a.error else "")
            for a in self.records
        ) + skipped_note(self.resolution.skipped)

    def exhausted(self) -> GatewayError:
        """The error when every target failed: RESOURCE_EXHAUSTED if load shedding was the
        only or last reason, else ALL_TARGETS_FAILED; with the soonest retry hint."""
        retry_after = min(self.hints) if self.hints else None
        route = self.resolution.route
        records = self.records
        if not records:
            return NoTargetLeft(f"{route!r}: no target to try", metadata={"route": route})
        last = records[-1].outcome
        shed = {AttemptOutcome.CONCURRENCY_LIMITED, AttemptOutcome.CIRCUIT_OPEN}
        if self.limited is not None and (
            last is AttemptOutcome.CONCURRENCY_LIMITED or {a.outcome for a in records} <= shed
        ):
            return ConcurrencyLimited(
                f"{route!r}: no target has a free slot: {self.summary()}",
                provider=self.limited.provider,
                limits=self.limited.limits,
                attempts=records,
                retry_after_s=retry_after,
            )
        if last is AttemptOutcome.TIMEOUT and self.remaining_s() <= DEADLINE_MARGIN_S:
            # The last attempt ran out of the caller's time, not of the provider's timeout:
            # the caller's deadline is the reason, whatever happened before it.
            return self.deadline_error()
        return NoTargetLeft(
            f"every target of {route!r} failed: {self.summary()}",
            attempts=records,
            retry_after_s=retry_after,
            metadata={"route": route},
        )
