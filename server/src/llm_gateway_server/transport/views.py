"""Gateway outcomes and routing/state views -> protobuf responses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from llmgateway.v1 import chat_pb2, embed_pb2, models_pb2, stats_pb2

from llm_gateway_server.gateway import ChatOutcome, EmbedOutcome, StreamEnd
from llm_gateway_server.transport.convert import (
    FINISH_TO_PB,
    attempts_pb,
    tool_calls_pb,
    usage_pb,
)


def chat_response(outcome: ChatOutcome, request_id: str) -> chat_pb2.ChatResponse:
    """A ChatResponse for a complete answer."""
    answer = outcome.answer
    response = chat_pb2.ChatResponse(
        request_id=request_id,
        content=answer.content,
        reasoning_content=answer.reasoning_content,
        tool_calls=tool_calls_pb(answer),
        finish_reason=FINISH_TO_PB[answer.finish_reason],
        usage=usage_pb(answer.usage),
        route=outcome.route,
        provider=outcome.provider,
        model=outcome.model or answer.model,
        attempts=attempts_pb(outcome.attempts),
        cached=outcome.cached,
    )
    if outcome.cost_usd is not None:
        response.cost_usd = outcome.cost_usd
    return response


def stream_summary(end: StreamEnd, request_id: str) -> chat_pb2.StreamChatResponse:
    """The last message of a stream."""
    summary = chat_pb2.ChatSummary(
        request_id=request_id,
        finish_reason=FINISH_TO_PB[end.finish_reason],
        usage=usage_pb(end.usage),
        route=end.route,
        provider=end.provider,
        model=end.model,
        attempts=attempts_pb(end.attempts),
        cached=end.cached,
        cut=end.cut,
    )
    if end.cost_usd is not None:
        summary.cost_usd = end.cost_usd
    return chat_pb2.StreamChatResponse(summary=summary)


def embed_response(outcome: EmbedOutcome, request_id: str) -> embed_pb2.EmbedResponse:
    """An EmbedResponse."""
    response = embed_pb2.EmbedResponse(
        request_id=request_id,
        embeddings=[embed_pb2.Embedding(values=v) for v in outcome.answer.vectors],
        usage=usage_pb(outcome.answer.usage),
        route=outcome.route,
        provider=outcome.provider,
        model=outcome.model or outcome.answer.model,
        attempts=attempts_pb(outcome.attempts),
    )
    if outcome.cost_usd is not None:
        response.cost_usd = outcome.cost_usd
    return response


def _duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def _timestamp(epoch_s: float | None) -> Timestamp | None:
    if not epoch_s:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(epoch_s * 1e9))
    return ts


def list_models_response(routes: Sequence[Any], *, direct: bool) -> models_pb2.ListModelsResponse:
    """ListModels from routing's route views."""
    raise NotImplementedError


def health_response(view: Any, *, generation: int) -> models_pb2.HealthResponse:
    """Health from routing's health view."""
    raise NotImplementedError


def stats_response(routes: Sequence[Any], budgets: Sequence[Any]) -> stats_pb2.GetStatsResponse:
    """GetStats from state's stats views."""
    raise NotImplementedError
