"""GatewayService servicer: thin, typed glue between gRPC and the gateway core.

Each method converts protobuf to internal types, calls ``Gateway`` and converts back. The
call record, auth and how a call ends are the pipeline's (``pipeline.CallPipeline``), used
the same way by every transport; errors become a status here, in ``_abort`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar, cast

import grpc

from llm_gateway_server.core.calls import CallRecord
from llm_gateway_server.core.errors import GatewayError, RequestInvalid, ShuttingDown
from llm_gateway_server.gateway import Gateway
from llm_gateway_server.pipeline import CallPipeline
from llm_gateway_server.streams import GatewayStream
from llm_gateway_server.transport.grpc import convert, views
from llm_gateway_server.transport.grpc.handlers import Undecodable
from llm_gateway_server.transport.grpc.status import internal_status, to_status
from llmgateway.v1 import (
    chat_pb2,
    embed_pb2,
    gateway_service_pb2_grpc,
    models_pb2,
    stats_pb2,
)

_Response = TypeVar("_Response")
_Request = TypeVar("_Request")
_Context = grpc.aio.ServicerContext[object, object]


def _request_id_md(request_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-request-id", request_id),)


def _metadata(context: _Context) -> Sequence[tuple[str, str | bytes]]:
    return cast("Sequence[tuple[str, str | bytes]]", context.invocation_metadata() or ())


def _decoded(request: _Request | Undecodable) -> _Request:
    if isinstance(request, Undecodable):
        raise RequestInvalid("request", f"not a valid protobuf message: {request.error}")
    return request


async def _abort(exc: BaseException, record: CallRecord, context: _Context) -> None:
    """The one place a failed call becomes a gRPC status."""
    if context.done() or isinstance(exc, asyncio.CancelledError | GeneratorExit):
        # The caller cancelled or its deadline passed: the call is over, nothing to send.
        return
    if isinstance(exc, GatewayError):
        status = to_status(exc, record.request_id)
    else:
        status = internal_status(record.request_id)
    await context.abort_with_status(status)


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    """Implements llmgateway.v1.GatewayService over a ``Gateway`` and the call pipeline."""

    def __init__(self, gateway: Gateway, pipeline: CallPipeline) -> None:
        self._gateway = gateway
        self._pipeline = pipeline

    def drain(self) -> None:
        """Refuse new calls (UNAVAILABLE, SHUTTING_DOWN); calls in flight go on."""
        self._pipeline.drain()

    async def _unary(
        self,
        method: str,
        context: _Context,
        handle: Callable[[CallRecord], Awaitable[_Response]],
        empty: Callable[[], _Response],
    ) -> _Response:
        """Run one unary RPC through the pipeline."""
        metadata = _metadata(context)
        pipeline = self._pipeline
        record = pipeline.begin("grpc", method, metadata, context.time_remaining())
        try:
            await pipeline.open(record, metadata)
            response = await handle(record)
        except BaseException as exc:
            await pipeline.close(record, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            await _abort(exc, record, context)
            # Only reached when the call had already ended; gRPC drops this.
            return empty()
        # Trailers, not headers: an explicit send_initial_metadata is a batch of its own
        # (7.5 % of the gateway's Python time in the unary benchmark's profile).
        context.set_trailing_metadata(_request_id_md(record.request_id))
        await pipeline.close(record, None)
        return response

    async def Chat(
        self, request: chat_pb2.ChatRequest | Undecodable, context: _Context
    ) -> chat_pb2.ChatResponse:
        """See llmgateway.v1.GatewayService.Chat."""

        async def handle(record: CallRecord) -> chat_pb2.ChatResponse:
            message = _decoded(request)
            self._check_size(message)
            chat = convert.chat_request(message, max_image_bytes=self._max_image_bytes)
            outcome = await self._gateway.chat(chat, record)
            return views.chat_response(outcome, record.request_id)

        return await self._unary("Chat", context, handle, chat_pb2.ChatResponse)

    async def StreamChat(
        self, request: chat_pb2.StreamChatRequest | Undecodable, context: _Context
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        """See llmgateway.v1.GatewayService.StreamChat."""
        metadata = _metadata(context)
        pipeline = self._pipeline
        record = pipeline.begin("grpc", "StreamChat", metadata, context.time_remaining())
        request_id = record.request_id
        stream: GatewayStream | None = None
        started = False
        try:
            await pipeline.open(record, metadata)
            message = _decoded(request)
            self._check_size(message)
            as_chat = chat_pb2.ChatRequest.FromString(message.SerializeToString())
            chat = convert.chat_request(as_chat, max_image_bytes=self._max_image_bytes)
            stream = await self._gateway.stream(chat, record)
            # aclosing: a cancelled call closes the gateway's generator, and with it the
            # upstream HTTP request, at once instead of whenever it is garbage-collected.
            async with contextlib.aclosing(stream.deltas()) as deltas:
                async for delta in deltas:
                    if not started:
                        await context.send_initial_metadata(_request_id_md(request_id))
                        record.first_token()
                        started = True
                    record.sending = True
                    yield convert.delta_pb(delta)
                    record.sending = False
                    if record.interrupted:
                        raise asyncio.CancelledError("shutdown")
            end = stream.end
            if end is None:  # pragma: no cover - deltas() always sets it when it ends
                raise AssertionError("stream ended without a summary")
            if not started:
                await context.send_initial_metadata(_request_id_md(request_id))
            yield views.stream_summary(end, request_id)
            if end.error is not None:
                raise end.error
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if not (record.interrupted and task is not None):
                await pipeline.close(record, exc)
                raise
            # Shutdown grace is over: the caller gets a summary marked cut and a reason,
            # not a bare cancel.
            task.uncancel()
            cut = ShuttingDown("the server shut down during the stream; retry on another one")
            if stream is None:
                await pipeline.close(record, cut)
                await _abort(cut, record, context)
                return
            if not started:
                await context.send_initial_metadata(_request_id_md(request_id))
            yield views.stream_summary(stream.interrupted(cut), request_id)
            await pipeline.close(record, cut)
            await _abort(cut, record, context)
        except GeneratorExit as exc:
            # gRPC dropped the stream (caller gone, or shutdown cancelled it outside this
            # generator): record why; nothing may be sent or raised from here.
            cut = ShuttingDown("the server shut down during the stream")
            await pipeline.close(record, cut if record.interrupted else exc)
        except BaseException as exc:
            await pipeline.close(record, exc)
            await _abort(exc, record, context)
        else:
            await pipeline.close(record, None)

    async def Embed(
        self, request: embed_pb2.EmbedRequest | Undecodable, context: _Context
    ) -> embed_pb2.EmbedResponse:
        """See llmgateway.v1.GatewayService.Embed."""

        async def handle(record: CallRecord) -> embed_pb2.EmbedResponse:
            message = _decoded(request)
            self._check_size(message)
            outcome = await self._gateway.embed(convert.embed_request(message), record)
            return views.embed_response(outcome, record.request_id)

        return await self._unary("Embed", context, handle, embed_pb2.EmbedResponse)

    async def ListModels(
        self, request: models_pb2.ListModelsRequest | Undecodable, context: _Context
    ) -> models_pb2.ListModelsResponse:
        """See llmgateway.v1.GatewayService.ListModels."""

        async def handle(record: CallRecord) -> models_pb2.ListModelsResponse:
            message = _decoded(request)
            routes = self._gateway.list_models(record.principal, convert.task_filter(message.task))
            direct = self._gateway.snapshot.config.server.allow_direct_targets
            return views.list_models_response(routes, direct=direct)

        return await self._unary("ListModels", context, handle, models_pb2.ListModelsResponse)

    async def Health(
        self, request: models_pb2.HealthRequest | Undecodable, context: _Context
    ) -> models_pb2.HealthResponse:
        """See llmgateway.v1.GatewayService.Health."""

        async def handle(record: CallRecord) -> models_pb2.HealthResponse:
            _decoded(request)
            return views.health_response(self._gateway.health())

        return await self._unary("Health", context, handle, models_pb2.HealthResponse)

    async def GetStats(
        self, request: stats_pb2.GetStatsRequest | Undecodable, context: _Context
    ) -> stats_pb2.GetStatsResponse:
        """See llmgateway.v1.GatewayService.GetStats."""

        async def handle(record: CallRecord) -> stats_pb2.GetStatsResponse:
            message = _decoded(request)
            routes, budgets = await self._gateway.stats(
                record.principal, tenant=message.tenant, route=message.route, caller=message.caller
            )
            return views.stats_response(routes, budgets)

        return await self._unary("GetStats", context, handle, stats_pb2.GetStatsResponse)

    @property
    def _max_image_bytes(self) -> int:
        return self._gateway.snapshot.config.server.max_image_bytes

    def _check_size(self, request: object) -> None:
        convert.check_size(request, self._gateway.snapshot.config.server.max_message_bytes)
