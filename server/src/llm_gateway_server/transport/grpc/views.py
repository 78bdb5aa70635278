"""Gateway outcomes and routing/state views -> protobuf responses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from llm_gateway_server.gateway import ChatOutcome, EmbedOutcome
from llm_gateway_server.routing.breakers import BreakerState
from llm_gateway_server.routing.views import (
    HealthView,
    ProviderHealth,
    RouteView,
    TargetHealth,
    TargetView,
)
from llm_gateway_server.state.views import RouteStatsView, TenantBudgetView
from llm_gateway_server.streams import StreamEnd
from llm_gateway_server.transport.grpc.convert import (
    FINISH_TO_PB,
    LOCALITY_TO_PB,
    PRIVACY_TO_PB,
    TASK_TO_PB,
    attempts_pb,
    tool_calls_pb,
    usage_pb,
)
from llmgateway.v1 import chat_pb2, embed_pb2, models_pb2, stats_pb2


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


def _timestamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


def _target_view(view: TargetView) -> models_pb2.TargetInfo:
    return models_pb2.TargetInfo(
        provider=view.provider,
        model=view.model,
        locality=LOCALITY_TO_PB[view.locality],
        tier=view.tier,
        weight=view.weight,
        available=view.available,
        unavailable_reason=view.unavailable_reason,
    )


def list_models_response(
    routes: Sequence[RouteView], *, direct: bool
) -> models_pb2.ListModelsResponse:
    """ListModels from routing's route views."""
    return models_pb2.ListModelsResponse(
        routes=[
            models_pb2.RouteInfo(
                name=r.name,
                task=TASK_TO_PB[r.task],
                default_for_task=r.default_for_task,
                default_privacy=PRIVACY_TO_PB[r.default_privacy],
                max_privacy=PRIVACY_TO_PB[r.max_privacy],
                targets=[_target_view(t) for t in r.targets],
                available=r.available,
            )
            for r in routes
        ],
        direct_targets_allowed=direct,
    )


_BREAKER = {
    BreakerState.CLOSED: models_pb2.BREAKER_STATE_CLOSED,
    BreakerState.OPEN: models_pb2.BREAKER_STATE_OPEN,
    BreakerState.HALF_OPEN: models_pb2.BREAKER_STATE_HALF_OPEN,
}


def _target_health(t: TargetHealth) -> models_pb2.TargetHealth:
    msg = models_pb2.TargetHealth(
        provider=t.provider,
        model=t.model,
        breaker_state=(
            _BREAKER[t.breaker_state]
            if t.breaker_state is not None
            else models_pb2.BREAKER_STATE_UNSPECIFIED
        ),
        consecutive_failures=t.consecutive_failures,
        last_error=t.last_error,
        last_error_time=_timestamp(t.last_error_time),
        success_rate=t.success_rate,
        window_calls=t.window_calls,
        window=_duration(t.window_s),
        in_flight=t.in_flight,
        available=t.available,
        disabled=t.disabled,
        unavailable_reason=t.unavailable_reason,
    )
    if t.latency_p50_s is not None:
        msg.latency_p50.CopyFrom(_duration(t.latency_p50_s))
    if t.latency_p95_s is not None:
        msg.latency_p95.CopyFrom(_duration(t.latency_p95_s))
    return msg


def _provider_health(p: ProviderHealth) -> models_pb2.ProviderHealth:
    msg = models_pb2.ProviderHealth(
        name=p.name,
        kind=p.kind,
        locality=LOCALITY_TO_PB[p.locality],
        enabled=p.enabled,
        disabled_reason=p.disabled_reason,
        probe_error=p.probe_error,
        last_probe_time=_timestamp(p.last_probe_time),
        in_flight=p.in_flight,
        max_in_flight=p.max_in_flight,
        queued=p.queued,
    )
    if p.probe_ok is not None:
        msg.probe_ok = p.probe_ok
    return msg


def health_response(view: HealthView) -> models_pb2.HealthResponse:
    """Health from routing's health view."""
    return models_pb2.HealthResponse(
        ready=view.ready,
        routes=[
            models_pb2.RouteHealth(
                name=r.name,
                available=r.available,
                usable_targets=r.usable_targets,
                total_targets=r.total_targets,
            )
            for r in view.routes
        ],
        targets=[_target_health(t) for t in view.targets],
        providers=[_provider_health(p) for p in view.providers],
        config_generation=view.config_generation,
    )


def stats_response(
    routes: Sequence[RouteStatsView], budgets: Sequence[TenantBudgetView]
) -> stats_pb2.GetStatsResponse:
    """GetStats from state's stats views."""
    return stats_pb2.GetStatsResponse(
        stats=[
            stats_pb2.RouteStats(
                tenant=r.tenant,
                route=r.route,
                requests=r.requests,
                errors=r.errors,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                cost_usd=r.cost_usd,
                cache_hits=r.cache_hits,
                cache_misses=r.cache_misses,
                cache_hit_rate=r.cache_hit_rate,
                fallbacks=r.fallbacks,
                caller=r.caller,
            )
            for r in routes
        ],
        budgets=[
            stats_pb2.TenantBudget(
                tenant=b.tenant, spent_usd=b.spent_usd, budget_usd=b.budget_usd, period=b.period
            )
            for b in budgets
        ],
    )
