"""The attempt loop of streamed chat: fallback only until the first delta with payload.

Before the first payload delta leaves, a stream fails over exactly like a unary call (an
upstream that ends without payload is an empty answer). After it, an upstream failure ends
the stream with a cut ``StreamSummary`` carrying ``StreamInterrupted``. Closing the
iterator, or cancelling its consumer, closes the upstream stream at once and releases the
breaker ticket and concurrency slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from llm_gateway_server.core.errors import StreamInterrupted, UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    AttemptOutcome,
    AttemptRecord,
    ChatDelta,
    ChatRequest,
    FinishReason,
    Usage,
)
from llm_gateway_server.routing.attempts import CallAttempts, Failed, as_upstream_error
from llm_gateway_server.routing.breakers import BreakerState, Ticket
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from llm_gateway_server.routing.fallback import EMPTY_CHAT, provider_chat_request
from llm_gateway_server.routing.results import StreamSummary
from llm_gateway_server.routing.targets import RouteTarget


@dataclass(frozen=True, slots=True)
class _End:
    """How one streamed attempt ended (the last item of ``_stream_once``)."""

    committed: bool
    error: UpstreamError | None = None
    message: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


async def _close(upstream: AsyncIterator[ChatDelta]) -> None:
    closer = getattr(upstream, "aclose", None)
    if closer is not None:
        await closer()


async def _next(upstream: AsyncIterator[ChatDelta], timeout_s: float) -> ChatDelta | None:
    """The next delta, ``None`` at the end; ``TimeoutError`` past the attempt's time."""
    try:
        async with asyncio.timeout(max(0.0, timeout_s)):
            return await anext(upstream)
    except StopAsyncIteration:
        return None


class _Tracker:
    """What the deltas of one attempt said besides their payload."""

    def __init__(self) -> None:
        self.committed = False
        self.chunks = 0
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None

    def note(self, delta: ChatDelta) -> None:
        self.chunks += 1
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage


async def _stream_once(
    calls: CallAttempts,
    request: ChatRequest,
    target: RouteTarget,
    ticket: Ticket,
    index: int,
    tries: int,
) -> AsyncGenerator[ChatDelta | _End, None]:
    if calls.remaining_s() <= 0:
        target.state.breaker.release(ticket)
        calls.check_deadline()
    timeout = calls.attempt_timeout_s(target)
    stream_deadline = calls.clock() + timeout
    provider = calls.table.providers[target.provider]
    stats = target.state.stats
    seen = _Tracker()
    state = BreakerState.HALF_OPEN if ticket.probe else BreakerState.CLOSED
    with calls.observer.attempt(calls.info(target, index, state.value)) as scope:
        started = calls.clock()
        stats.in_flight += 1
        upstream: AsyncIterator[ChatDelta] | None = None
        try:
            try:
                upstream = provider.stream(
                    provider_chat_request(request, target.model), timeout_s=timeout
                )
                while (delta := await _next(upstream, stream_deadline - calls.clock())) is not None:
                    if seen.chunks == 0:
                        scope.first_chunk()
                    seen.note(delta)
                    if delta.has_payload:
                        seen.committed = True
                        yield delta
                if not seen.committed:
                    raise UpstreamError(UpstreamFailure.EMPTY_ANSWER, EMPTY_CHAT)
            finally:
                stats.in_flight -= 1
                if upstream is not None:
                    await _close(upstream)
        except (asyncio.CancelledError, GeneratorExit):
            target.state.breaker.release(ticket)
            scope.finish(AttemptOutcome.CANCELLED, retries=tries - 1)
            raise
        except Exception as exc:
            error = as_upstream_error(exc, timeout_s=timeout, provider=target.provider)
            latency = calls.clock() - started
            message = calls.settle(
                target, ticket, scope, error, latency_s=latency, retries=tries - 1
            )
            end = _End(seen.committed, error, message, seen.finish_reason, seen.usage)
        else:
            target.state.breaker.record(ticket, ok=True)
            stats.window.add(calls.clock() - started, ok=True)
            scope.finish(
                AttemptOutcome.SUCCESS,
                usage=seen.usage,
                finish_reason=seen.finish_reason,
                retries=tries - 1,
            )
            end = _End(True, None, "", seen.finish_reason, seen.usage)
    yield end


def _summary(
    calls: CallAttempts, target: RouteTarget, end: _End, *, started: float, tries: int
) -> StreamSummary:
    """The summary of the attempt that streamed: complete, or cut after its first delta."""
    cut: StreamInterrupted | None = None
    if end.error is None:
        calls.succeeded(target, started=started, tries=tries)
    else:
        calls.record(
            AttemptRecord(
                target.provider,
                target.model,
                AttemptOutcome.STREAM_CUT,
                calls.clock() - started,
                end.message,
                tries - 1,
            )
        )
        cut = StreamInterrupted(
            f"{target.label} failed after the answer had started: {end.message}",
            metadata={"route": calls.resolution.route, "provider": target.provider},
        )
    return StreamSummary(
        finish_reason=FinishReason.ERROR if cut else (end.finish_reason or FinishReason.STOP),
        usage=end.usage,
        route=calls.resolution.route,
        provider=target.provider,
        model=target.model,
        attempts=tuple(calls.attempts),
        cut=cut is not None,
        error=cut,
    )


async def _stream_target(
    calls: CallAttempts, request: ChatRequest, target: RouteTarget, index: int
) -> AsyncGenerator[ChatDelta | StreamSummary | Failed, None]:
    """Stream from one target, retrying it before its first delta; ends with a summary
    (it streamed) or a ``Failed`` (move on)."""
    breaker = target.state.breaker
    limiter = calls.table.limiters[target.provider]
    started = calls.clock()
    tries = 0
    while True:
        calls.check_deadline()
        ticket = breaker.admit()
        if ticket is None:
            yield calls.circuit_open(target, index, tries)
            return
        tries += 1
        handed_over = False
        end: _End | None = None
        try:
            async with limiter.slot(calls.ctx.deadline):
                handed_over = True
                attempt = _stream_once(calls, request, target, ticket, index, tries)
                async with contextlib.aclosing(attempt) as items:
                    async for item in items:
                        if isinstance(item, _End):
                            end = item
                        else:
                            yield item
        except ConcurrencyLimited as exc:
            yield calls.limited(target, index, exc)
            return
        finally:
            if not handed_over:
                breaker.release(ticket)
        if end is None:  # pragma: no cover - _stream_once always ends with _End
            raise AssertionError("stream attempt ended without a result")
        if end.error is None or end.committed:
            yield _summary(calls, target, end, started=started, tries=tries)
            return
        delay = calls.retry_delay_s(target, end.error, tries)
        if delay is None:
            yield calls.failed(target, end.error, end.message, started=started, tries=tries)
            return
        await asyncio.sleep(delay)


async def run_stream(
    calls: CallAttempts, request: ChatRequest
) -> AsyncGenerator[ChatDelta | StreamSummary, None]:
    """Yield payload deltas of the first target that streams, then one ``StreamSummary``.

    Raises (before any delta): as ``fallback.run_unary``.
    """
    order = calls.order()
    last: Failed | None = None
    for index, target in enumerate(order, 1):
        calls.ctx.attempts.attempt_started(target.provider, target.model)
        calls.check_deadline()
        failed: Failed | None = None
        async with contextlib.aclosing(_stream_target(calls, request, target, index)) as items:
            async for item in items:
                if isinstance(item, Failed):
                    failed = item
                    continue
                yield item
                if isinstance(item, StreamSummary):
                    return
        if failed is None:  # pragma: no cover - _stream_target always ends with one
            raise AssertionError("stream target ended without a result")
        calls.add(failed)
        if isinstance(failed.error, UpstreamError) and failed.error.caller_caused:
            raise failed.error
        last = failed
        if index < len(order):
            calls.moved_on(target)
    raise calls.exhausted(last)
