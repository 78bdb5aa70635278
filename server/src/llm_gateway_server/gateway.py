"""The gateway core: one request from admission to answer, free of gRPC.

Order per call: authenticate -> resolve the route (privacy, permissions) -> admit (rate
limits, budget reservation, cache lookup) -> route (fallback, breakers, retries) -> settle
(real tokens and cost, stats, cache store). Transport calls this; it calls routing and state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from llm_gateway_server.config.loader import ConfigSnapshot
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
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llm_gateway_server.routing.results import ChatResult, StreamSummary
from llm_gateway_server.routing.router import Router
from llm_gateway_server.routing.views import HealthView, RouteView
from llm_gateway_server.state import GatewayState
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

    def _cost(self, provider: str, model: str, usage: Usage) -> float | None:
        cfg = self.snapshot.config.providers.get(provider)
        if cfg is None:
            return None
        return cost_usd(cfg, cfg.kind.value, model, usage)

    async def chat(self, request: ChatRequest, ctx: CallContext, scope: RpcScope) -> ChatOutcome:
        """One complete answer, from the cache or through routing."""
        resolution = self._router.resolve(
            model=request.model,
            task=request.task or Task.CHAT,
            privacy=request.privacy,
            principal=ctx.principal,
        )
        scope.set_request(
            route=resolution.route,
            privacy=resolution.privacy.name.lower(),
            model_requested=request.model,
            temperature=request.sampling.temperature,
            max_tokens=request.sampling.max_tokens,
        )
        admission = await self._state.policy.admit(ctx.principal, resolution.route, request)
        if admission.cached is not None:
            scope.set_cache(True)
            hit = admission.cached
            await self._state.policy.complete(
                admission,
                answer_usage=Usage(),
                cost_usd=0.0,
                provider=hit.provider,
                model=hit.model,
                fallbacks=0,
                answer=None,
                ttl_s=None,
            )
            return ChatOutcome(
                hit.answer, resolution.route, hit.provider, hit.model, (), cached=True, cost_usd=0.0
            )
        if admission.cache_key is not None:
            scope.set_cache(False)
        try:
            result: ChatResult = await self._router.chat(resolution, request, ctx)
        except GatewayError as exc:
            await self._state.policy.fail(admission, error_reason=exc.reason)
            raise
        cost = self._cost(result.provider, result.model, result.answer.usage)
        await self._state.policy.complete(
            admission,
            answer_usage=result.answer.usage,
            cost_usd=cost,
            provider=result.provider,
            model=result.model,
            fallbacks=_fallbacks(result.attempts),
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
    ) -> AsyncIterator[ChatDelta | StreamEnd]:
        """Deltas as they arrive, then one ``StreamEnd``; a cached answer is replayed."""
        resolution = self._router.resolve(
            model=request.model,
            task=request.task or Task.CHAT,
            privacy=request.privacy,
            principal=ctx.principal,
        )
        scope.set_request(
            route=resolution.route,
            privacy=resolution.privacy.name.lower(),
            model_requested=request.model,
            temperature=request.sampling.temperature,
            max_tokens=request.sampling.max_tokens,
        )
        admission = await self._state.policy.admit(ctx.principal, resolution.route, request)
        if admission.cached is not None:
            scope.set_cache(True)
            hit = admission.cached
            yield _replay(hit.answer)
            await self._state.policy.complete(
                admission,
                answer_usage=Usage(),
                cost_usd=0.0,
                provider=hit.provider,
                model=hit.model,
                fallbacks=0,
                answer=None,
                ttl_s=None,
            )
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
        collector = _Collector() if admission.cache_key is not None else None
        if collector is not None:
            scope.set_cache(False)
        summary: StreamSummary | None = None
        try:
            async with contextlib.aclosing(self._router.stream(resolution, request, ctx)) as events:
                async for event in events:
                    if isinstance(event, StreamSummary):
                        summary = event
                        break
                    if collector is not None:
                        collector.add(event)
                    yield event
        except GatewayError as exc:
            await self._state.policy.fail(admission, error_reason=exc.reason)
            raise
        if summary is None:  # pragma: no cover - routing always ends with a summary
            raise AssertionError("routing ended a stream without a summary")
        usage = summary.usage or Usage()
        cost = self._cost(summary.provider, summary.model, usage) if summary.provider else None
        if summary.error is not None:
            await self._state.policy.fail(admission, error_reason=summary.error.reason)
        else:
            answer = collector.answer(summary) if collector is not None else None
            await self._state.policy.complete(
                admission,
                answer_usage=usage,
                cost_usd=cost,
                provider=summary.provider,
                model=summary.model,
                fallbacks=_fallbacks(summary.attempts),
                answer=answer,
                ttl_s=request.cache.ttl_s,
            )
        yield StreamEnd(
            summary.finish_reason,
            usage,
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
        resolution = self._router.resolve(
            model=request.model,
            task=Task.EMBEDDING,
            privacy=request.privacy,
            principal=ctx.principal,
        )
        scope.set_request(
            route=resolution.route,
            privacy=resolution.privacy.name.lower(),
            model_requested=request.model,
            temperature=None,
            max_tokens=None,
        )
        admission = await self._state.policy.admit(ctx.principal, resolution.route, request)
        try:
            result = await self._router.embed(resolution, request, ctx)
        except GatewayError as exc:
            await self._state.policy.fail(admission, error_reason=exc.reason)
            raise
        cost = self._cost(result.provider, result.model, result.answer.usage)
        await self._state.policy.complete(
            admission,
            answer_usage=result.answer.usage,
            cost_usd=cost,
            provider=result.provider,
            model=result.model,
            fallbacks=_fallbacks(result.attempts),
            answer=None,
            ttl_s=None,
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
    ) -> tuple[Sequence[object], Sequence[object]]:
        """Usage counters; a key sees only its own tenant."""
        if self.snapshot.config.auth.enabled:
            tenant = principal.tenant
        return await self._state.stats.query(tenant or None, route or None)


def _replay(answer: ChatAnswer) -> ChatDelta:
    return ChatDelta(
        content=answer.content,
        reasoning_content=answer.reasoning_content,
        tool_calls=tuple(
            ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(answer.tool_calls)
        ),
    )


class _Collector:
    """Reassembles a streamed answer so it can be cached."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[str]] = {}
        self._heads: dict[int, tuple[str, str]] = {}

    def add(self, delta: ChatDelta) -> None:
        if delta.content:
            self._content.append(delta.content)
        if delta.reasoning_content:
            self._reasoning.append(delta.reasoning_content)
        for call in delta.tool_calls:
            self._calls.setdefault(call.index, []).append(call.arguments)
            if call.id or call.name:
                old_id, old_name = self._heads.get(call.index, ("", ""))
                self._heads[call.index] = (call.id or old_id, call.name or old_name)

    def answer(self, summary: StreamSummary) -> ChatAnswer:
        calls = tuple(
            ToolCall(
                self._heads.get(i, ("", ""))[0], self._heads.get(i, ("", ""))[1], "".join(parts)
            )
            for i, parts in sorted(self._calls.items())
        )
        return ChatAnswer(
            "".join(self._content),
            "".join(self._reasoning),
            calls,
            summary.finish_reason,
            summary.usage or Usage(),
            summary.model,
        )
