"""The gateway core: one request from admission to answer, free of gRPC.

Order per call: authenticate -> resolve the route (privacy, permissions) -> admit (rate
limits, budget reservation, cache lookup) -> route (fallback, breakers, retries) -> settle
(real tokens and cost, stats, cache store). Transport calls this; it calls routing and state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.core.assembly import AnswerBuilder
from llm_gateway_server.core.errors import GatewayError
from llm_gateway_server.core.types import (
    AttemptOutcome,
    AttemptRecord,
    CallContext,
    ChatAnswer,
    ChatDelta,
    ChatRequest,
    EmbedAnswer,
    EmbedRequest,
    FinishReason,
    Principal,
    Task,
    ToolCallDelta,
    Usage,
)
from llm_gateway_server.routing.results import ChatResult
from llm_gateway_server.routing.router import Router
from llm_gateway_server.routing.routes import Resolution, check_provider_options
from llm_gateway_server.routing.views import HealthView, RouteView
from llm_gateway_server.state import (
    Admission,
    CachedAnswer,
    GatewayState,
    RouteStatsView,
    TenantBudgetView,
)
from llm_gateway_server.state.pricing import cost_usd
from llm_gateway_server.telemetry.rpc import RpcScope


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    """A complete answer with where it came from."""

    answer: ChatAnswer
    route: str
    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...]
    cached: bool = False
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of a stream: the summary, and the error if the stream was cut."""

    finish_reason: FinishReason
    usage: Usage
    route: str
    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...]
    cached: bool = False
    cost_usd: float | None = None
    cut: bool = False
    error: GatewayError | None = None


@dataclass(frozen=True, slots=True)
class EmbedOutcome:
    """Vectors with where they came from."""

    answer: EmbedAnswer
    route: str
    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...]
    cost_usd: float | None = None


def api_key_from(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    """The API key from ``authorization: Bearer <key>`` or ``x-api-key`` metadata."""
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif key == "x-api-key" and isinstance(value, str) and value:
            return value
    return None


def _fallbacks(attempts: tuple[AttemptRecord, ...]) -> int:
    return sum(1 for a in attempts if a.outcome is not AttemptOutcome.SUCCESS)


class Gateway:
    """Serves Chat, StreamChat, Embed, ListModels, Health and GetStats over routing and state."""

    def __init__(self, snapshot: ConfigSnapshot, router: Router, state: GatewayState) -> None:
        self.snapshot = snapshot
        self._router = router
        self._state = state

    def swap(self, snapshot: ConfigSnapshot) -> None:
        """Use a reloaded config for calls that start from now on."""
        self.snapshot = snapshot

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Principal:
        """The caller behind the metadata; raises Unauthenticated when auth is on."""
        return await self._state.keys.authenticate(api_key_from(metadata))

    def _cost(self, provider: str, model: str, usage: Usage, *, operation: str) -> float | None:
        cfg = self.snapshot.config.providers.get(provider)
        if cfg is None:
            return None
        return cost_usd(cfg, operation, model, usage)

    async def _admit(
        self,
        request: ChatRequest | EmbedRequest,
        ctx: CallContext,
        scope: RpcScope,
        *,
        task: Task,
        streaming: bool = False,
    ) -> tuple[Resolution, Admission]:
        resolution = self._router.resolve(
            model=request.model, task=task, privacy=request.privacy, principal=ctx.principal
        )
        if request.provider_options_strict:
            check_provider_options(
                resolution, request.provider_options, embedding=isinstance(request, EmbedRequest)
            )
        if isinstance(request, ChatRequest):
            scope.set_request(
                route=resolution.route,
                privacy=resolution.privacy,
                model_requested=request.model,
                temperature=request.sampling.temperature,
                max_tokens=request.sampling.max_tokens,
                top_p=request.sampling.top_p,
                streaming=streaming,
                messages=request.messages,
            )
        else:
            scope.set_request(
                route=resolution.route,
                privacy=resolution.privacy,
                model_requested=request.model,
                inputs=request.inputs,
            )
        admission = await self._state.policy.admit(
            ctx.principal,
            resolution.route,
            request,
            targets=[(t.provider, t.model) for t in resolution.targets],
        )
        if admission.cache_key is not None:
            scope.set_cache(admission.cached is not None)
        return resolution, admission

    async def _settle(
        self,
        admission: Admission,
        scope: RpcScope,
        *,
        provider: str,
        model: str,
        usage: Usage | None,
        attempts: tuple[AttemptRecord, ...],
        finish_reason: FinishReason | None,
        answer: ChatAnswer | None,
        ttl_s: float | None,
        operation: str = "chat",
    ) -> float | None:
        cost = self._cost(provider, model, usage or Usage(), operation=operation)
        fallbacks = _fallbacks(attempts)
        await self._state.policy.complete(
            admission,
            answer_usage=usage,
            cost_usd=cost,
            provider=provider,
            model=model,
            fallbacks=fallbacks,
            answer=answer,
            ttl_s=ttl_s,
        )
        scope.set_result(
            provider=provider,
            model=model,
            usage=usage,
            cost_usd=cost,
            finish_reason=finish_reason,
            attempts=len(attempts),
            fallbacks=fallbacks,
            cached=False,
            answer=answer,
        )
        return cost

    @staticmethod
    def _cache_hit(scope: RpcScope, hit: CachedAnswer) -> None:
        scope.set_result(
            provider=hit.provider,
            model=hit.model,
            usage=hit.answer.usage,
            cost_usd=0.0,
            finish_reason=hit.answer.finish_reason,
            attempts=0,
            fallbacks=0,
            cached=True,
        )

    async def chat(self, request: ChatRequest, ctx: CallContext, scope: RpcScope) -> ChatOutcome:
        """One complete answer, from the cache or through routing."""
        resolution, admission = await self._admit(
            request, ctx, scope, task=request.task or Task.CHAT
        )
        if admission.cached is not None:
            hit = admission.cached
            self._cache_hit(scope, hit)
            return ChatOutcome(
                hit.answer, resolution.route, hit.provider, hit.model, (), cached=True, cost_usd=0.0
            )
        try:
            result: ChatResult = await self._router.chat(resolution, request, ctx)
        except BaseException as exc:
            await self._state.policy.fail(admission, error_reason=_reason(exc))
            raise
        cost = await self._settle(
            admission,
            scope,
            provider=result.provider,
            model=result.model,
            usage=result.answer.usage,
            attempts=result.attempts,
            finish_reason=result.answer.finish_reason,
            answer=result.answer,
            ttl_s=request.cache.ttl_s,
        )
        return ChatOutcome(
            result.answer,
            result.route,
            result.provider,
            result.model,
            result.attempts,
            cost_usd=cost,
        )

    async def stream(
        self, request: ChatRequest, ctx: CallContext, scope: RpcScope
    ) -> AsyncGenerator[ChatDelta | StreamEnd, None]:
        """Deltas as they arrive, then one ``StreamEnd``; a cached answer is replayed."""
        resolution, admission = await self._admit(
            request, ctx, scope, task=request.task or Task.CHAT, streaming=True
        )
        if admission.cached is not None:
            hit = admission.cached
            self._cache_hit(scope, hit)
            yield _replay(hit.answer)
            yield StreamEnd(
                hit.answer.finish_reason,
                hit.answer.usage,
                resolution.route,
                hit.provider,
                hit.model,
                (),
                cached=True,
                cost_usd=0.0,
            )
            return
        # The whole answer is reassembled only when someone needs it: the cache, or content
        # recording in traces; otherwise deltas pass straight through.
        collect = admission.cache_key is not None or scope.records_content
        collector = AnswerBuilder() if collect else None
        try:
            routed = await self._router.open_stream(resolution, request, ctx)
            try:
                async for event in routed:
                    if collector is not None:
                        collector.add(event)
                    yield event
            finally:
                await routed.aclose()
        except BaseException as exc:
            await self._state.policy.fail(admission, error_reason=_reason(exc))
            raise
        summary = routed.summary
        if summary is None:  # pragma: no cover - aclose always leaves a summary
            raise AssertionError("routing ended a stream without a summary")
        cost: float | None = None
        if summary.error is not None:
            await self._state.policy.fail(admission, error_reason=summary.error.reason)
        else:
            cost = await self._settle(
                admission,
                scope,
                provider=summary.provider,
                model=summary.model,
                usage=summary.usage,
                attempts=summary.attempts,
                finish_reason=summary.finish_reason,
                answer=(
                    collector.answer(summary.finish_reason, summary.usage, summary.model)
                    if collector is not None
                    else None
                ),
                ttl_s=request.cache.ttl_s,
            )
        yield StreamEnd(
            summary.finish_reason,
            summary.usage or Usage(),
            summary.route,
            summary.provider,
            summary.model,
            summary.attempts,
            cost_usd=cost,
            cut=summary.cut,
            error=summary.error,
        )

    async def embed(self, request: EmbedRequest, ctx: CallContext, scope: RpcScope) -> EmbedOutcome:
        """One vector per input."""
        resolution, admission = await self._admit(request, ctx, scope, task=Task.EMBEDDING)
        try:
            result = await self._router.embed(resolution, request, ctx)
        except BaseException as exc:
            await self._state.policy.fail(admission, error_reason=_reason(exc))
            raise
        cost = await self._settle(
            admission,
            scope,
            provider=result.provider,
            model=result.model,
            usage=result.answer.usage,
            attempts=result.attempts,
            finish_reason=None,
            answer=None,
            ttl_s=None,
            operation="embedding",
        )
        return EmbedOutcome(
            result.answer, result.route, result.provider, result.model, result.attempts, cost
        )

    def list_models(self, principal: Principal, task: Task | None) -> list[RouteView]:
        """The routes the caller may use."""
        return list(self._router.routes_view(principal, task))

    def health(self) -> HealthView:
        """Live detail per route, target and provider."""
        return self._router.health_view()

    async def stats(
        self, principal: Principal, *, tenant: str, route: str
    ) -> tuple[Sequence[RouteStatsView], Sequence[TenantBudgetView]]:
        """Usage counters; with auth on, a key sees only its own tenant."""
        if self.snapshot.config.auth.enabled:
            tenant = principal.tenant
        return await self._state.stats.query(tenant or None, route or None)


def _reason(exc: BaseException) -> str:
    # A cancelled call (client gone, deadline) must release its reservations too.
    if isinstance(exc, GatewayError):
        return exc.reason
    return "CANCELLED" if isinstance(exc, asyncio.CancelledError | GeneratorExit) else "INTERNAL"


def _replay(answer: ChatAnswer) -> ChatDelta:
    return ChatDelta(
        content=answer.content,
        reasoning_content=answer.reasoning_content,
        tool_calls=tuple(
            ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(answer.tool_calls)
        ),
    )
