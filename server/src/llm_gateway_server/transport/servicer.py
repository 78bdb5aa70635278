"""GatewayService servicer: thin, typed glue between gRPC and the gateway core.

Each method converts protobuf to internal types, calls ``Gateway``, converts back, and
leaves every error to ``status.py`` through ``_failure``. Nothing else here knows gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar, cast

import grpc

from llm_gateway_server.core.errors import GatewayError, ShuttingDown
from llm_gateway_server.core.types import CallContext, Principal
from llm_gateway_server.gateway import Gateway, StreamEnd
from llm_gateway_server.telemetry.rpc import RpcScope, RpcTelemetry
from llm_gateway_server.transport import convert, views
from llm_gateway_server.transport.status import internal_status, status_code, to_status
from llmgateway.v1 import (
    chat_pb2,
    embed_pb2,
    gateway_service_pb2_grpc,
    models_pb2,
    stats_pb2,
)

logger = logging.getLogger(__name__)


_Response = TypeVar("_Response")


def _request_id_md(request_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-request-id", request_id),)


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    """Implements llmgateway.v1.GatewayService over a ``Gateway``."""

    def __init__(self, gateway: Gateway, telemetry: RpcTelemetry) -> None:
        self._gateway = gateway
        self._telemetry = telemetry
        self._draining = False

    def drain(self) -> None:
        """Refuse new calls (UNAVAILABLE, SHUTTING_DOWN); calls in flight go on."""
        self._draining = True

    async def _begin(
        self, method: str, context: grpc.aio.ServicerContext[object, object]
    ) -> tuple[RpcScope, CallContext]:
        metadata = cast("Sequence[tuple[str, str | bytes]]", context.invocation_metadata() or ())
        scope = self._telemetry.start(method, metadata)
        # Response headers are sent only with the first answer message: headers commit a call
        # (gRFC A6), and a committed call is never retried by the client's retry policy.
        if self._draining:
            raise ShuttingDown("the server is shutting down; retry on another replica")
        principal: Principal = await self._gateway.authenticate(metadata)
        remaining = context.time_remaining()
        if remaining is None:
            remaining = self._gateway.snapshot.config.server.default_deadline_s
        ctx = CallContext(scope.request_id, time.monotonic() + remaining, principal)
        return scope, ctx

    async def _failure(
        self,
        exc: BaseException,
        scope: RpcScope | None,
        request_id: str,
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        if isinstance(exc, GatewayError):
            status = to_status(exc, request_id)
            attempts = getattr(exc, "attempts", None)
            if scope is not None and attempts:
                # The fallback trace of a failed call still belongs in its log line.
                scope.attempts = len(attempts)
                scope.fallbacks = max(len(attempts) - 1, 0)
            if scope is not None:
                scope.end(status_code(exc).name, error_reason=exc.reason, error_message=exc.message)
        else:
            logger.exception("unexpected error in request %s", request_id)
            status = internal_status(request_id)
            if scope is not None:
                scope.end("INTERNAL", error_reason="INTERNAL")
        if context.done():
            # The caller cancelled or its deadline passed: the call is over, nothing to send.
            return
        await context.abort_with_status(status)

    async def _unary(
        self,
        method: str,
        context: grpc.aio.ServicerContext[object, object],
        handle: Callable[[RpcScope, CallContext], Awaitable[_Response]],
        empty: Callable[[], _Response],
    ) -> _Response:
        """Run one unary RPC: telemetry scope, auth, the handler, and the one error path."""
        scope: RpcScope | None = None
        request_id = ""
        try:
            scope, ctx = await self._begin(method, context)
            request_id = scope.request_id
            response = await handle(scope, ctx)
            # Trailers, not headers: an explicit send_initial_metadata is a batch of its own
            # (7.5 % of the gateway's Python time in the unary benchmark's profile).
            context.set_trailing_metadata(_request_id_md(request_id))
            scope.end("OK")
            return response
        except asyncio.CancelledError:
            if scope is not None:
                scope.end("CANCELLED")
            raise
        except BaseException as exc:
            await self._failure(exc, scope, request_id, context)
            # Only reached when the call had already ended; gRPC drops this.
            return empty()

    async def Chat(
        self, request: chat_pb2.ChatRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> chat_pb2.ChatResponse:
        """See llmgateway.v1.GatewayService.Chat."""

        async def handle(scope: RpcScope, ctx: CallContext) -> chat_pb2.ChatResponse:
            self._check_size(request)
            chat = convert.chat_request(request, max_image_bytes=self._max_image_bytes)
            outcome = await self._gateway.chat(chat, ctx, scope)
            return views.chat_response(outcome, scope.request_id)

        return await self._unary("Chat", context, handle, chat_pb2.ChatResponse)

    async def StreamChat(
        self,
        request: chat_pb2.StreamChatRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        """See llmgateway.v1.GatewayService.StreamChat."""
        scope: RpcScope | None = None
        request_id = ""
        try:
            scope, ctx = await self._begin("StreamChat", context)
            request_id = scope.request_id
            self._check_size(request)
            as_chat = chat_pb2.ChatRequest.FromString(request.SerializeToString())
            chat = convert.chat_request(as_chat, max_image_bytes=self._max_image_bytes)
            end = None
            first = True
            events = self._gateway.stream(chat, ctx, scope)
            # aclosing: a cancelled call closes the gateway's generator, and with it the
            # upstream HTTP request, at once instead of whenever it is garbage-collected.
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, StreamEnd):
                        end = event
                        break
                    if first:
                        await context.send_initial_metadata(_request_id_md(request_id))
                        scope.first_token()
                        first = False
                    yield convert.delta_pb(event)
            if end is None:
                raise AssertionError("stream ended without a summary")
            if first:
                await context.send_initial_metadata(_request_id_md(request_id))
            yield views.stream_summary(end, request_id)
            if end.error is not None:
                raise end.error
            scope.end("OK")
        except asyncio.CancelledError:
            if scope is not None:
                scope.end("CANCELLED")
            raise
        except BaseException as exc:
            await self._failure(exc, scope, request_id, context)

    async def Embed(
        self, request: embed_pb2.EmbedRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> embed_pb2.EmbedResponse:
        """See llmgateway.v1.GatewayService.Embed."""

        async def handle(scope: RpcScope, ctx: CallContext) -> embed_pb2.EmbedResponse:
            self._check_size(request)
            outcome = await self._gateway.embed(convert.embed_request(request), ctx, scope)
            return views.embed_response(outcome, scope.request_id)

        return await self._unary("Embed", context, handle, embed_pb2.EmbedResponse)

    async def ListModels(
        self,
        request: models_pb2.ListModelsRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> models_pb2.ListModelsResponse:
        """See llmgateway.v1.GatewayService.ListModels."""

        async def handle(scope: RpcScope, ctx: CallContext) -> models_pb2.ListModelsResponse:
            routes = self._gateway.list_models(ctx.principal, convert.task_filter(request.task))
            direct = self._gateway.snapshot.config.server.allow_direct_targets
            return views.list_models_response(routes, direct=direct)

        return await self._unary("ListModels", context, handle, models_pb2.ListModelsResponse)

    async def Health(
        self, request: models_pb2.HealthRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> models_pb2.HealthResponse:
        """See llmgateway.v1.GatewayService.Health."""

        async def handle(scope: RpcScope, ctx: CallContext) -> models_pb2.HealthResponse:
            return views.health_response(self._gateway.health())

        return await self._unary("Health", context, handle, models_pb2.HealthResponse)

    async def GetStats(
        self, request: stats_pb2.GetStatsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> stats_pb2.GetStatsResponse:
        """See llmgateway.v1.GatewayService.GetStats."""

        async def handle(scope: RpcScope, ctx: CallContext) -> stats_pb2.GetStatsResponse:
            routes, budgets = await self._gateway.stats(
                ctx.principal, tenant=request.tenant, route=request.route
            )
            return views.stats_response(routes, budgets)

        return await self._unary("GetStats", context, handle, stats_pb2.GetStatsResponse)

    @property
    def _max_image_bytes(self) -> int:
        return self._gateway.snapshot.config.server.max_image_bytes

    def _check_size(self, request: object) -> None:
        convert.check_size(request, self._gateway.snapshot.config.server.max_message_bytes)
