"""The attempt engine: the one retry and fallback loop behind Chat, StreamChat and Embed.

For each target in the call's order (tiers, balancing, STRICT never sees a cloud target):

1. the breaker admits the call, or the target is skipped as CIRCUIT_OPEN (no upstream call);
2. a concurrency slot is taken (waiting is the gateway's own time: never an upstream
   failure); a full queue skips the target as CONCURRENCY_LIMITED;
3. under the lease (``routing.lease``) the op starts the upstream call within the attempt's
   timeouts, all derived from the caller's deadline: total ``min(timeout_s, time left)``,
   first token ``min(first_token_timeout_s, total)`` for streams, connect (the adapter's
   ``connect_timeout_s``) within the total;
4. an answer is committed (a stream at its first payload delta) and returned; a failure the
   request caused is raised as it is; any other failure is retried on the same target when
   ``retries.plan_retry`` allows it, else the call moves on to the next target.

When no target is left the call fails with the error ``Call.exhausted`` picks.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from llm_gateway_server.core.errors import DeadlineExceeded, UpstreamError
from llm_gateway_server.core.types import AttemptOutcome
from llm_gateway_server.routing.breakers import BreakerState
from llm_gateway_server.routing.call import Call, TargetTrace, as_upstream_error, outcome_for
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from llm_gateway_server.routing.lease import TargetLease
from llm_gateway_server.routing.ops import Op
from llm_gateway_server.routing.targets import RouteTarget

V = TypeVar("V")
T = TypeVar("T")


async def run(call: Call, op: Op[V, T]) -> tuple[T, RouteTarget]:
    """Try the call's targets in order until one answers.

    Raises:
        UpstreamError: a failure caused by the request (no fallback), as the adapter raised it.
        DeadlineExceeded: the deadline passed.
        ConcurrencyLimited: the last target (or every one tried) had a full wait queue.
        NoTargetLeft: every target failed or had an open breaker.
    """
    order = call.order()
    for index, target in enumerate(order, 1):
        call.check_deadline()
        trace = TargetTrace(call, target, index)
        try:
            result = await _try_target(call, op, trace)
        except BaseException as exc:
            # Cancelled, the deadline, or the request's own fault (already ended): the
            # target's trace line is closed on every way out.
            trace.end(*_unfinished(exc))
            raise
        if result is not None:
            return result, target
        if index < len(order):
            call.moved_on(target)
    raise call.exhausted()


def _unfinished(exc: BaseException) -> tuple[AttemptOutcome, str]:
    if isinstance(exc, DeadlineExceeded):
        return AttemptOutcome.TIMEOUT, "the caller's deadline passed"
    return AttemptOutcome.CANCELLED, "cancelled"


async def _try_target(call: Call, op: Op[V, T], trace: TargetTrace) -> T | None:
    """Tries of one target; ``None`` when the call should move on (the trace says why)."""
    target = trace.target
    breaker = target.state.breaker
    limiter = call.table.limiters[target.provider]
    while True:
        ticket = breaker.admit()
        if ticket is None:
            wait = breaker.open_remaining_s()
            message = "circuit open" + (
                f", probe in {wait:.3g} s" if wait > 0 else ", probe running"
            )
            call.skip(trace, AttemptOutcome.CIRCUIT_OPEN, message)
            trace.end(AttemptOutcome.CIRCUIT_OPEN, message, retry_after_s=wait)
            return None
        state = BreakerState.HALF_OPEN if ticket.probe else BreakerState.CLOSED
        try:
            lease = await TargetLease.acquire(
                target,
                ticket,
                limiter,
                deadline=call.ctx.deadline,
                observer=call.observer,
                info=call.info(target, trace.index, state),
                clock=call.clock,
            )
        except ConcurrencyLimited as exc:
            call.limited = call.limited or exc
            call.skip(trace, AttemptOutcome.CONCURRENCY_LIMITED, exc.message)
            trace.end(
                AttemptOutcome.CONCURRENCY_LIMITED,
                exc.message,
                retry_after_s=call.slot_retry_s(target),
            )
            return None
        except DeadlineExceeded:
            where = f" while waiting for a free slot at provider {target.provider}"
            trace.end(AttemptOutcome.CONCURRENCY_LIMITED, "the deadline passed" + where)
            raise call.deadline_error(where) from None
        trace.tries += 1
        try:
            return await _start(call, op, lease, trace)
        except UpstreamError as error:
            message = call.describe(error)
            if error.caller_caused:
                trace.end(AttemptOutcome.REQUEST_REJECTED, message)
                raise
            delay = call.retry_delay_s(target, error, trace.tries)
            if delay is None:
                trace.end(outcome_for(error), message, retry_after_s=error.retry_after_s)
                return None
        await asyncio.sleep(delay)
        call.check_deadline()


async def _start(call: Call, op: Op[V, T], lease: TargetLease, trace: TargetTrace) -> T:
    """One try under ``lease``: the committed result, or the failure raised as ``UpstreamError``
    once the lease is released."""
    target = lease.target
    total = call.timeout_s(target)
    provider = call.table.providers[target.provider]
    try:
        value = await op.start(provider, lease, total, call.first_token_s(target, total))
    except asyncio.CancelledError:
        lease.release(AttemptOutcome.CANCELLED, message="cancelled", retries=trace.retries)
        raise
    except Exception as exc:
        error = as_upstream_error(exc, timeout_s=total, provider=target.provider)
        # A timeout the caller's deadline caused says nothing about the upstream.
        counted = None if call.by_deadline(error) else error
        lease.release(
            outcome_for(error), error=counted, message=call.describe(error), retries=trace.retries
        )
        raise error from None
    except BaseException:
        lease.release(AttemptOutcome.CANCELLED, message="cancelled", retries=trace.retries)
        raise
    return op.commit(value, lease, trace, call)
