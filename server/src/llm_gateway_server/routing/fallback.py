"""The attempt loop of unary calls (chat, embed): targets in order, retries within each.

Per target: breaker admission (an open breaker is recorded as CIRCUIT_OPEN without an
upstream call), a concurrency slot (a full queue is CONCURRENCY_LIMITED), then the call
bounded by ``min(provider.timeout_s, time left)``. A retryable failure is retried on the
same target when ``retries.plan_retry`` allows it, else the call moves on to the next
target; a failure caused by the request stops everything and is raised as it is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    AttemptOutcome,
    ChatAnswer,
    ChatRequest,
    EmbedAnswer,
    EmbedRequest,
    FinishReason,
    ProviderChatRequest,
    ProviderEmbedRequest,
    Usage,
)
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.routing.attempts import CallAttempts, Failed, as_upstream_error
from llm_gateway_server.routing.breakers import BreakerState, Ticket
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from llm_gateway_server.routing.targets import RouteTarget

T = TypeVar("T")

EMPTY_CHAT = "the model answered nothing: no content, reasoning or tool call"


class UnaryOp(Protocol[T]):
    """One kind of unary upstream call."""

    async def call(self, provider: Provider, model: str, timeout_s: float) -> T:
        """Call the provider once."""
        ...

    def check(self, value: T) -> UpstreamError | None:
        """Refuse an answer that is no answer (empty, wrong shape)."""
        ...

    def describe(self, value: T) -> tuple[Usage | None, str, FinishReason | None]:
        """Usage, upstream model name and finish reason, for the observer."""
        ...


def provider_chat_request(request: ChatRequest, model: str) -> ProviderChatRequest:
    """The adapter's view of a chat request for one target."""
    return ProviderChatRequest(
        model=model,
        messages=request.messages,
        tools=request.tools,
        tool_choice=request.tool_choice,
        response_format=request.response_format,
        sampling=request.sampling,
    )


class ChatOp:
    """``Provider.chat``; an answer with no content, reasoning or tool call is a failure."""

    def __init__(self, request: ChatRequest) -> None:
        """Bind the caller's request."""
        self._request = request

    async def call(self, provider: Provider, model: str, timeout_s: float) -> ChatAnswer:
        """Ask for one complete answer."""
        return await provider.chat(provider_chat_request(self._request, model), timeout_s=timeout_s)

    def check(self, value: ChatAnswer) -> UpstreamError | None:
        """Refuse an empty answer."""
        return UpstreamError(UpstreamFailure.EMPTY_ANSWER, EMPTY_CHAT) if value.is_empty else None

    def describe(self, value: ChatAnswer) -> tuple[Usage | None, str, FinishReason | None]:
        """Usage, model and finish reason of the answer."""
        return value.usage, value.model, value.finish_reason


class EmbedOp:
    """``Provider.embed``; the answer must hold one non-empty vector per input."""

    def __init__(self, request: EmbedRequest) -> None:
        """Bind the caller's request."""
        self._request = request

    async def call(self, provider: Provider, model: str, timeout_s: float) -> EmbedAnswer:
        """Ask for the vectors."""
        req = ProviderEmbedRequest(
            model=model, inputs=self._request.inputs, dimensions=self._request.dimensions
        )
        return await provider.embed(req, timeout_s=timeout_s)

    def check(self, value: EmbedAnswer) -> UpstreamError | None:
        """Refuse missing, extra or empty vectors."""
        expected = len(self._request.inputs)
        if len(value.vectors) != expected:
            return UpstreamError(
                UpstreamFailure.BAD_RESPONSE,
                f"expected {expected} vectors, got {len(value.vectors)}",
            )
        if any(not v for v in value.vectors):
            return UpstreamError(UpstreamFailure.EMPTY_ANSWER, "the model returned an empty vector")
        return None

    def describe(self, value: EmbedAnswer) -> tuple[Usage | None, str, FinishReason | None]:
        """Usage and model of the answer."""
        return value.usage, value.model, None


@dataclass(frozen=True, slots=True)
class _Once(Generic[T]):
    value: T | None
    error: UpstreamError | None = None
    message: str = ""


async def _call_once(
    calls: CallAttempts,
    op: UnaryOp[T],
    target: RouteTarget,
    ticket: Ticket,
    index: int,
    tries: int,
) -> _Once[T]:
    if calls.remaining_s() <= 0:
        target.state.breaker.release(ticket)
        calls.check_deadline()
    timeout = calls.attempt_timeout_s(target)
    provider = calls.table.providers[target.provider]
    stats = target.state.stats
    state = BreakerState.HALF_OPEN if ticket.probe else BreakerState.CLOSED
    with calls.observer.attempt(calls.info(target, index, state.value)) as scope:
        started = calls.clock()
        stats.in_flight += 1
        try:
            try:
                async with asyncio.timeout(timeout):
                    value = await op.call(provider, target.model, timeout)
            finally:
                stats.in_flight -= 1
            refused = op.check(value)
            if refused is not None:
                raise refused
        except asyncio.CancelledError:
            target.state.breaker.release(ticket)
            scope.finish(AttemptOutcome.CANCELLED, retries=tries - 1)
            raise
        except Exception as exc:
            error = as_upstream_error(exc, timeout_s=timeout, provider=target.provider)
            latency = calls.clock() - started
            message = calls.settle(
                target, ticket, scope, error, latency_s=latency, retries=tries - 1
            )
            return _Once(None, error, message)
        target.state.breaker.record(ticket, ok=True)
        stats.window.add(calls.clock() - started, ok=True)
        usage, model, finish = op.describe(value)
        scope.finish(
            AttemptOutcome.SUCCESS,
            usage=usage,
            response_model=model,
            finish_reason=finish,
            retries=tries - 1,
        )
        return _Once(value)


async def _try_target(
    calls: CallAttempts, op: UnaryOp[T], target: RouteTarget, index: int
) -> _Once[T] | Failed:
    breaker = target.state.breaker
    limiter = calls.table.limiters[target.provider]
    started = calls.clock()
    tries = 0
    while True:
        calls.check_deadline()
        ticket = breaker.admit()
        if ticket is None:
            return calls.circuit_open(target, index, tries)
        tries += 1
        handed_over = False
        try:
            async with limiter.slot(calls.ctx.deadline):
                handed_over = True
                once = await _call_once(calls, op, target, ticket, index, tries)
        except ConcurrencyLimited as exc:
            return calls.limited(target, index, exc)
        finally:
            if not handed_over:
                breaker.release(ticket)
        if once.error is None:
            calls.succeeded(target, started=started, tries=tries)
            return once
        delay = calls.retry_delay_s(target, once.error, tries)
        if delay is None:
            return calls.failed(target, once.error, once.message, started=started, tries=tries)
        await asyncio.sleep(delay)


async def run_unary(calls: CallAttempts, op: UnaryOp[T]) -> tuple[T, RouteTarget]:
    """Try the call's targets in order until one answers.

    Raises:
        UpstreamError: a failure caused by the request (no fallback), as the adapter raised it.
        DeadlineExceeded: the deadline passed.
        ConcurrencyLimited: the last target (or every one tried) had a full wait queue.
        NoTargetLeft: every target failed or had an open breaker.
    """
    order = calls.order()
    last: Failed | None = None
    for index, target in enumerate(order, 1):
        calls.ctx.attempts.attempt_started(target.provider, target.model)
        calls.check_deadline()
        outcome = await _try_target(calls, op, target, index)
        if isinstance(outcome, _Once):
            if outcome.value is None:  # pragma: no cover - _Once without error has a value
                raise AssertionError("an answer without value")
            return outcome.value, target
        calls.add(outcome)
        if isinstance(outcome.error, UpstreamError) and outcome.error.caller_caused:
            raise outcome.error
        last = outcome
        if index < len(order):
            calls.moved_on(target)
    raise calls.exhausted(last)
