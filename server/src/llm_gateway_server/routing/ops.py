"""What one attempt asks of its provider (chat, embed, stream) and what counts as an answer."""

from __future__ import annotations

import asyncio
from typing import Protocol, TypeVar

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    AttemptOutcome,
    ChatAnswer,
    ChatRequest,
    EmbedAnswer,
    EmbedRequest,
    ProviderChatRequest,
    ProviderEmbedRequest,
)
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.routing.call import Call, TargetTrace
from llm_gateway_server.routing.lease import TargetLease

V = TypeVar("V")
T_co = TypeVar("T_co", covariant=True)


def empty_answer() -> UpstreamError:
    """The one rule for chat: an answer without content, reasoning or tool call is a failure
    (the next target may do better), whether it came whole or as a stream."""
    return UpstreamError(
        UpstreamFailure.EMPTY_ANSWER,
        "the model answered nothing: no content, reasoning or tool call",
    )


def provider_chat_request(request: ChatRequest, model: str) -> ProviderChatRequest:
    """The adapter's view of a chat request for one target."""
    return ProviderChatRequest(
        model=model,
        messages=request.messages,
        tools=request.tools,
        tool_choice=request.tool_choice,
        response_format=request.response_format,
        sampling=request.sampling,
        provider_options=request.provider_options,
    )


class Op(Protocol[V, T_co]):
    """One kind of upstream call, as the attempt engine drives it.

    ``start`` runs under the lease and either returns what the provider gave (``V``) or
    raises; ``commit`` turns a started value into the call's result (``T``) and takes over
    the lease and the trace line: it releases them now (unary) or when it ends (stream).
    """

    async def start(
        self, provider: Provider, lease: TargetLease, total_s: float, first_s: float
    ) -> V:
        """Call the provider once, bounded by the attempt's timeouts."""
        ...

    def commit(self, value: V, lease: TargetLease, trace: TargetTrace, call: Call) -> T_co:
        """The result of a started attempt; owns ``lease`` and ``trace`` from now on."""
        ...


class ChatOp:
    """``Provider.chat``, bounded by the attempt's total time."""

    __slots__ = ("_request",)

    def __init__(self, request: ChatRequest) -> None:
        """Bind the caller's request."""
        self._request = request

    async def start(
        self, provider: Provider, lease: TargetLease, total_s: float, first_s: float
    ) -> ChatAnswer:
        """Ask for one complete answer; an empty one is a failure."""
        request = provider_chat_request(self._request, lease.target.model)
        async with asyncio.timeout(total_s):
            answer = await provider.chat(request, timeout_s=total_s)
        if answer.is_empty:
            raise empty_answer()
        return answer

    def commit(
        self, value: ChatAnswer, lease: TargetLease, trace: TargetTrace, call: Call
    ) -> ChatAnswer:
        """Release the lease as answered."""
        lease.release(
            AttemptOutcome.SUCCESS,
            usage=value.usage,
            response_model=value.model,
            finish_reason=value.finish_reason,
            retries=trace.retries,
        )
        trace.end(AttemptOutcome.SUCCESS, usage=value.usage)
        return value


class EmbedOp:
    """``Provider.embed``; the answer must hold one non-empty vector per input."""

    __slots__ = ("_request",)

    def __init__(self, request: EmbedRequest) -> None:
        """Bind the caller's request."""
        self._request = request

    async def start(
        self, provider: Provider, lease: TargetLease, total_s: float, first_s: float
    ) -> EmbedAnswer:
        """Ask for the vectors; refuse missing, extra or empty ones."""
        inputs = self._request.inputs
        req = ProviderEmbedRequest(
            model=lease.target.model,
            inputs=inputs,
            dimensions=self._request.dimensions,
            provider_options=self._request.provider_options,
        )
        async with asyncio.timeout(total_s):
            answer = await provider.embed(req, timeout_s=total_s)
        if len(answer.vectors) != len(inputs):
            raise UpstreamError(
                UpstreamFailure.BAD_RESPONSE,
                f"expected {len(inputs)} vectors, got {len(answer.vectors)}",
            )
        if any(not v for v in answer.vectors):
            raise UpstreamError(UpstreamFailure.EMPTY_ANSWER, "the model returned an empty vector")
        return answer

    def commit(
        self, value: EmbedAnswer, lease: TargetLease, trace: TargetTrace, call: Call
    ) -> EmbedAnswer:
        """Release the lease as answered."""
        lease.release(
            AttemptOutcome.SUCCESS,
            usage=value.usage,
            response_model=value.model,
            retries=trace.retries,
        )
        trace.end(AttemptOutcome.SUCCESS, usage=value.usage)
        return value
