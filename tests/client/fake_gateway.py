"""A scripted GatewayService servicer and real grpc.aio servers to run it on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from llmgateway.v1 import (
    chat_pb2,
    common_pb2,
    embed_pb2,
    gateway_service_pb2_grpc,
    models_pb2,
    stats_pb2,
)

DOMAIN = "llm-gateway"

Context = grpc.aio.ServicerContext


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    retry_after: float | None = None,
    metadata: dict[str, str] | None = None,
) -> status_pb2.Status:
    """A google.rpc.Status as the gateway's error model describes it."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))
    details = [info]
    if retry_after is not None:
        retry = any_pb2.Any()
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def unavailable() -> status_pb2.Status:
    """What the gateway returns when every target failed."""
    return rich_status(
        grpc.StatusCode.UNAVAILABLE, "all targets failed", "ALL_TARGETS_FAILED", retry_after=1
    )


@dataclass
class Received:
    """One call as the server saw it."""

    method: str
    request: Any
    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class FakeGateway(gateway_service_pb2_grpc.GatewayServiceServicer):
    """Answers predictably, fails on cue and records every call (retries included).

    `failures` are consumed one per call, before answering: each aborts that
    call with its status. `delay` makes every call sleep first.
    """

    failures: list[status_pb2.Status] = field(default_factory=list)
    delay: float = 0.0
    cut_stream: bool = False
    #: Seconds StreamChat waits after its first delta (room for a cancel).
    stream_pause: float = 0.0
    calls: list[Received] = field(default_factory=list)
    #: Send the response headers before failing, as a server that sends
    #: them first thing would.
    headers_first: bool = False
    #: Set when a StreamChat handler was cancelled by its caller.
    stream_cancelled: threading.Event = field(default_factory=threading.Event)

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    async def _enter(self, method: str, request: Any, context: Context[Any, Any]) -> str:
        metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        self.calls.append(Received(method, request, metadata, context.time_remaining()))
        request_id = metadata.get("x-request-id") or f"generated-{len(self.calls)}"
        if self.headers_first:
            await context.send_initial_metadata((("x-request-id", request_id),))
        if self.failures:
            await self._abort(context, self.failures.pop(0), request_id)
        if self.delay:
            await asyncio.sleep(self.delay)
        # Response headers commit the call: gRPC retries no call that got
        # them, so they are sent only once the call is known to succeed.
        if not self.headers_first:
            await context.send_initial_metadata((("x-request-id", request_id),))
        return request_id

    @staticmethod
    async def _abort(
        context: Context[Any, Any], status: status_pb2.Status, request_id: str
    ) -> None:
        # The gateway puts the request id in the trailers too, beside the
        # google.rpc details that to_status encodes.
        plain = rpc_status.to_status(status)
        trailers = (*plain.trailing_metadata, ("x-request-id", request_id))
        await context.abort(plain.code, plain.details, trailers)

    async def Chat(
        self,
        request: chat_pb2.ChatRequest,
        context: Context[chat_pb2.ChatRequest, chat_pb2.ChatResponse],
    ) -> chat_pb2.ChatResponse:
        request_id = await self._enter("Chat", request, context)
        last = request.messages[-1].content if request.messages else ""
        return chat_pb2.ChatResponse(
            request_id=request_id,
            content=f"echo: {last}",
            reasoning_content="thinking about it",
            finish_reason=chat_pb2.FINISH_REASON_STOP,
            route=request.model or "chat",
        )

    async def StreamChat(
        self,
        request: chat_pb2.StreamChatRequest,
        context: Context[chat_pb2.StreamChatRequest, chat_pb2.StreamChatResponse],
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        request_id = await self._enter("StreamChat", request, context)
        yield chat_pb2.StreamChatResponse(delta=chat_pb2.ChatDelta(reasoning_content="hmm"))
        for piece in ("Hel", "lo"):
            yield chat_pb2.StreamChatResponse(delta=chat_pb2.ChatDelta(content=piece))
            try:
                await asyncio.sleep(self.stream_pause)
            except asyncio.CancelledError:
                self.stream_cancelled.set()
                raise
        yield chat_pb2.StreamChatResponse(
            summary=chat_pb2.ChatSummary(
                request_id=request_id,
                finish_reason=(
                    chat_pb2.FINISH_REASON_ERROR if self.cut_stream else chat_pb2.FINISH_REASON_STOP
                ),
                cut=self.cut_stream,
            )
        )
        if self.cut_stream:
            status = rich_status(
                grpc.StatusCode.UNAVAILABLE, "upstream failed", "STREAM_INTERRUPTED"
            )
            await self._abort(context, status, request_id)

    async def Embed(
        self,
        request: embed_pb2.EmbedRequest,
        context: Context[embed_pb2.EmbedRequest, embed_pb2.EmbedResponse],
    ) -> embed_pb2.EmbedResponse:
        request_id = await self._enter("Embed", request, context)
        # [length, position]: lets a test check order and correspondence.
        vectors = [
            embed_pb2.Embedding(values=[float(len(text)), float(index)])
            for index, text in enumerate(request.inputs)
        ]
        return embed_pb2.EmbedResponse(request_id=request_id, embeddings=vectors)

    async def ListModels(
        self,
        request: models_pb2.ListModelsRequest,
        context: Context[models_pb2.ListModelsRequest, models_pb2.ListModelsResponse],
    ) -> models_pb2.ListModelsResponse:
        await self._enter("ListModels", request, context)
        route = models_pb2.RouteInfo(name="chat", task=common_pb2.TASK_CHAT, available=True)
        return models_pb2.ListModelsResponse(routes=[route])

    async def Health(
        self,
        request: models_pb2.HealthRequest,
        context: Context[models_pb2.HealthRequest, models_pb2.HealthResponse],
    ) -> models_pb2.HealthResponse:
        await self._enter("Health", request, context)
        return models_pb2.HealthResponse(ready=True, config_generation=3)

    async def GetStats(
        self,
        request: stats_pb2.GetStatsRequest,
        context: Context[stats_pb2.GetStatsRequest, stats_pb2.GetStatsResponse],
    ) -> stats_pb2.GetStatsResponse:
        await self._enter("GetStats", request, context)
        row = stats_pb2.RouteStats(tenant=request.tenant or "anonymous", route="chat", requests=2)
        return stats_pb2.GetStatsResponse(stats=[row])


async def start_server(
    servicer: FakeGateway, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, str]:
    """A real grpc.aio server on a free loopback port; returns it and its target."""
    server = grpc.aio.server()
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)
    address = "127.0.0.1:0"
    port = (
        server.add_secure_port(address, credentials)
        if credentials is not None
        else server.add_insecure_port(address)
    )
    await server.start()
    return server, f"127.0.0.1:{port}"


class ServerThread:
    """Runs the aio server on its own event loop in a daemon thread, for sync clients."""

    def __init__(self, servicer: FakeGateway) -> None:
        self._servicer = servicer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    def start(self) -> str:
        self._thread.start()
        self._server, target = self._run(start_server(self._servicer))
        return str(target)

    def stop(self) -> None:
        try:
            if self._server is not None:
                self._run(self._server.stop(grace=None))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
