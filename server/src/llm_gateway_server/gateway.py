"""The gateway core: one request from admission to answer, free of any transport.

Order per call: resolve the route (privacy, permissions) -> admit (rate limits, budget
reservation, cache lookup) -> route (fallback, breakers, retries) -> settle (what was
delivered, charged; stats; cache store). Every call writes its ``CallRecord``; settlement
runs once per call, here on an answer and from ``CallPipeline.close`` on any other exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.core.calls import CallRecord, check_metadata, settle_now
from llm_gateway_server.core.types import (
    AttemptRecord,
    CallContext,
    ChatAnswer,
    ChatRequest,
    EmbedAnswer,
    EmbedRequest,
    Principal,
    Task,
    Usage,
)
from llm_gateway_server.delivered import answer_tokens, counted_usage, reported
from llm_gateway_server.routing.router import Router
from llm_gateway_server.routing.routes import Resolution, check_provider_options
from llm_gateway_server.routing.views import HealthView, RouteView
from llm_gateway_server.state import Admission, GatewayState, RouteStatsView, TenantBudgetView
from llm_gateway_server.state.pricing import cost_usd
from llm_gateway_server.state.tokens import ready_tokenizer
from llm_gateway_server.streams import GatewayStream
from llm_gateway_server.telemetry.rpc import RpcTelemetry, privacy_name


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
class EmbedOutcome:
    """Vectors with where they came from."""

    answer: EmbedAnswer
    route: str
    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...]
    cost_usd: float | None = None


_Request = TypeVar("_Request", ChatRequest, EmbedRequest)


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


def _context(record: CallRecord) -> CallContext:
    return CallContext(
        record.request_id, record.deadline, record.principal, record.metadata, attempts=record
    )


class _Settlement:
    """The one place ``policy.complete`` and ``policy.fail`` are called from."""

    __slots__ = ("_admission", "_gateway", "_operation", "_ttl_s")

    def __init__(
        self, gateway: Gateway, admission: Admission, operation: str, ttl_s: float | None
    ) -> None:
        self._gateway = gateway
        self._admission = admission
        self._operation = operation
        self._ttl_s = ttl_s

    async def settle(self, record: CallRecord) -> None:
        """Charge the record's usage; an answer completes, anything else fails (charged)."""
        policy = self._gateway._state.policy
        usage = record.usage
        if record.cached:
            record.cost_usd = 0.0
        elif usage is not None and record.provider:
            record.cost_usd = self._gateway._cost(
                record.provider, record.model, usage, operation=self._operation
            )
        failed = record.cut or (record.closed and record.status != "OK")
        if failed:
            await policy.fail(
                self._admission,
                error_reason=record.error_reason or "STREAM_INTERRUPTED",
                usage=usage,
                cost_usd=record.cost_usd,
            )
            return
        await policy.complete(
            self._admission,
            answer_usage=usage,
            cost_usd=record.cost_usd,
            provider=record.provider,
            model=record.model,
            fallbacks=record.fallbacks,
            answer=record.answer,
            ttl_s=self._ttl_s,
        )


class Gateway:
    """Serves Chat, StreamChat, Embed, ListModels, Health and GetStats over routing and state."""

    def __init__(
        self,
        snapshot: ConfigSnapshot,
        router: Router,
        state: GatewayState,
        telemetry: RpcTelemetry | None = None,
    ) -> None:
        self.snapshot = snapshot
        self._router = router
        self._state = state
        self._telemetry = telemetry

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
        self, request: _Request, record: CallRecord, *, task: Task, streaming: bool = False
    ) -> tuple[Resolution, Admission, _Request]:
        record.metadata = check_metadata(request.metadata)
        resolution = self._router.resolve(
            model=request.model, task=task, privacy=request.privacy, principal=record.principal
        )
        if request.provider_options_strict:
            check_provider_options(
                resolution, request.provider_options, embedding=isinstance(request, EmbedRequest)
            )
        record.route = resolution.route
        record.privacy = privacy_name(resolution.privacy)
        record.model_requested = request.model
        record.streaming = streaming
        record.request = request
        admission = await self._state.policy.admit(
            record.principal,
            resolution.route,
            request,
            targets=[(t.provider, t.model) for t in resolution.targets],
            caller=record.caller_label,
        )
        is_chat = isinstance(request, ChatRequest)
        ttl = request.cache.ttl_s if isinstance(request, ChatRequest) else None
        record.pending = _Settlement(self, admission, "chat" if is_chat else "embedding", ttl)
        if admission.cache_key is not None:
            record.cache_hit = admission.cached is not None
        if isinstance(request, ChatRequest):
            if admission.max_tokens is not None:
                # The budget reserved for this many completion tokens: hold the upstream to it.
                sampling = replace(request.sampling, max_tokens=admission.max_tokens)
                request = replace(request, sampling=sampling)
            record.max_tokens = request.sampling.max_tokens
        if self._telemetry is not None:
            self._telemetry.admitted(record)
        return resolution, admission, request

    async def chat(self, request: ChatRequest, record: CallRecord) -> ChatOutcome:
        """One complete answer, from the cache or through routing."""
        resolution, admission, request = await self._admit(
            request, record, task=request.task or Task.CHAT
        )
        if admission.cached is not None:
            hit = admission.cached
            _cache_hit(record, hit.provider, hit.model, hit.answer)
            await settle_now(record)
            return ChatOutcome(
                hit.answer, resolution.route, hit.provider, hit.model, (), cached=True, cost_usd=0.0
            )
        result = await self._router.chat(resolution, request, _context(record))
        answer = result.answer
        record.provider, record.model = result.provider, result.model
        record.finish_reason = str(answer.finish_reason)
        if reported(answer.usage):
            record.usage = answer.usage
        else:
            await ready_tokenizer()
            record.usage = counted_usage(request, answer_tokens(answer))
            record.usage_counted = True
            answer = replace(answer, usage=record.usage)
        record.answer = answer
        await settle_now(record)
        return ChatOutcome(
            answer,
            result.route,
            result.provider,
            result.model,
            tuple(record.attempts),
            cost_usd=record.cost_usd,
        )

    async def stream(self, request: ChatRequest, record: CallRecord) -> GatewayStream:
        """A committed stream (or a cached answer replayed); errors before its first delta
        are raised here, as ``chat``'s are."""
        resolution, admission, request = await self._admit(
            request, record, task=request.task or Task.CHAT, streaming=True
        )
        if admission.cached is not None:
            hit = admission.cached
            _cache_hit(record, hit.provider, hit.model, hit.answer)
            return GatewayStream(record, request, None, hit.answer, collect=False)
        routed = await self._router.open_stream(resolution, request, _context(record))
        # The whole answer is reassembled only when someone needs it: the cache, or content
        # recording in traces; otherwise deltas pass straight through.
        collect = admission.cache_key is not None or (
            self._telemetry is not None and self._telemetry.records_content(record)
        )
        return GatewayStream(record, request, routed, None, collect=collect)

    async def embed(self, request: EmbedRequest, record: CallRecord) -> EmbedOutcome:
        """One vector per input."""
        resolution, _, request = await self._admit(request, record, task=Task.EMBEDDING)
        result = await self._router.embed(resolution, request, _context(record))
        record.provider, record.model = result.provider, result.model
        usage = result.answer.usage
        if not reported(usage):
            await ready_tokenizer()
            usage, record.usage_counted = counted_usage(request, 0), True
        record.usage = usage
        await settle_now(record)
        return EmbedOutcome(
            result.answer,
            result.route,
            result.provider,
            result.model,
            tuple(record.attempts),
            record.cost_usd,
        )

    def list_models(self, principal: Principal, task: Task | None) -> list[RouteView]:
        """The routes the caller may use."""
        return list(self._router.routes_view(principal, task))

    def health(self) -> HealthView:
        """Live detail per route, target and provider."""
        return self._router.health_view()

    async def stats(
        self, principal: Principal, *, tenant: str, route: str, caller: str = ""
    ) -> tuple[Sequence[RouteStatsView], Sequence[TenantBudgetView]]:
        """Usage counters; with auth on, a key sees only its own tenant."""
        if self.snapshot.config.auth.enabled:
            tenant = principal.tenant
        return await self._state.stats.query(tenant or None, route or None, caller or None)


def _cache_hit(record: CallRecord, provider: str, model: str, answer: ChatAnswer) -> None:
    record.provider, record.model = provider, model
    record.usage = answer.usage
    record.finish_reason = str(answer.finish_reason)
    record.answer = answer
