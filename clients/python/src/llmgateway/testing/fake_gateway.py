"""FakeGateway: a GatewayService servicer with scripted answers and errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
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

#: The ErrorInfo domain of the gateway's own errors.
DOMAIN = "llm-gateway"

Context = grpc.aio.ServicerContext


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    retry_after: float | None = None,
    metadata: Mapping[str, str] | None = None,
) -> status_pb2.Status:
    """A google.rpc.Status as the gateway's error model describes it.

    One ErrorInfo (`reason` such as `RATE_LIMITED`, domain `llm-gateway`,
    `metadata`), plus a RetryInfo when `retry_after` is given.
    """
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
    """Answers as scripted, fails on cue and records every call (retries included).

    `failures` are consumed one per call of any method, before answering:
    each aborts that call with its status. `replies` are consumed one per
    Chat or StreamChat call that did not fail (a stream sends the content in
    two deltas); with none left, Chat echoes the last message as
    `echo: <text>` and StreamChat sends `Hello`. `delay` makes every call
    sleep first. `embeddings` are consumed one per Embed call; with none
    left, each input gets `[len(text), index]`.
    """

    failures: list[status_pb2.Status] = field(default_factory=list)
    replies: list[chat_pb2.ChatResponse] = field(default_factory=list)
    #: Vectors for the next Embed calls, one list of vectors per call.
    embeddings: list[list[list[float]]] = field(default_factory=list)
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

    def reply(self, content: str = "", **fields: Any) -> None:
        """Script the next Chat/StreamChat answer: its content and any ChatResponse field."""
        self.replies.append(chat_pb2.ChatResponse(content=content, **fields))

    def embed_reply(self, vectors: Sequence[Sequence[float]]) -> None:
        """Script the next Embed answer: one vector per input."""
        self.embeddings.append([list(vector) for vector in vectors])

    def fail(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str = "",
        *,
        retry_after: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Script the next call's failure, as the gateway reports one (see `rich_status`)."""
        status = rich_status(
            code, message or reason, reason, retry_after=retry_after, metadata=metadata
        )
        self.failures.append(status)

    def methods(self) -> list[str]:
        """The methods called so far, in order (`Chat`, `StreamChat`, `Embed`...)."""
        return [call.method for call in self.calls]

    def _next_reply(self, request_id: str, request: Any) -> chat_pb2.ChatResponse:
        if self.replies:
            reply = chat_pb2.ChatResponse()
            reply.CopyFrom(self.replies.pop(0))
        else:
            last = request.messages[-1].content if request.messages else ""
            reply = chat_pb2.ChatResponse(
                content=f"echo: {last}",
                reasoning_content="thinking about it",
                finish_reason=chat_pb2.FINISH_REASON_STOP,
            )
        reply.request_id = reply.request_id or request_id
        reply.route = reply.route or request.model or "chat"
        if reply.finish_reason == chat_pb2.FINISH_REASON_UNSPECIFIED:
            reply.finish_reason = chat_pb2.FINISH_REASON_STOP
        return reply

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
        return self._next_reply(request_id, request)

    async def StreamChat(
        self,
        request: chat_pb2.StreamChatRequest,
        context: Context[chat_pb2.StreamChatRequest, chat_pb2.StreamChatResponse],
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        request_id = await self._enter("StreamChat", request, context)
        try:
            async for event in self._stream_events(request_id, request):
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            # The caller's cancel lands wherever the handler is: in a sleep
            # (CancelledError) or at a yield while gRPC writes (GeneratorExit).
            self.stream_cancelled.set()
            raise
        if self.cut_stream:
            status = rich_status(
                grpc.StatusCode.UNAVAILABLE, "upstream failed", "STREAM_INTERRUPTED"
            )
            await self._abort(context, status, request_id)

    async def _stream_events(
        self, request_id: str, request: chat_pb2.StreamChatRequest
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        scripted = self._next_reply(request_id, request) if self.replies else None
        content = scripted.content if scripted is not None else "Hello"
        reasoning = scripted.reasoning_content if scripted is not None else "hmm"
        if reasoning:
            yield chat_pb2.StreamChatResponse(delta=chat_pb2.ChatDelta(reasoning_content=reasoning))
        half = (len(content) + 1) // 2
        for piece in (content[:half], content[half:]):
            yield chat_pb2.StreamChatResponse(delta=chat_pb2.ChatDelta(content=piece))
            await asyncio.sleep(self.stream_pause)
        finish = scripted.finish_reason if scripted is not None else chat_pb2.FINISH_REASON_STOP
        yield chat_pb2.StreamChatResponse(
            summary=chat_pb2.ChatSummary(
                request_id=request_id,
                finish_reason=chat_pb2.FINISH_REASON_ERROR if self.cut_stream else finish,
                usage=scripted.usage if scripted is not None else None,
                route=request.model or "chat",
                cut=self.cut_stream,
            )
        )

    async def Embed(
        self,
        request: embed_pb2.EmbedRequest,
        context: Context[embed_pb2.EmbedRequest, embed_pb2.EmbedResponse],
    ) -> embed_pb2.EmbedResponse:
        request_id = await self._enter("Embed", request, context)
        # Unscripted: [length, position], which lets a test check order and correspondence.
        scripted = self.embeddings.pop(0) if self.embeddings else None
        values = scripted or [[float(len(text)), float(i)] for i, text in enumerate(request.inputs)]
        vectors = [embed_pb2.Embedding(values=vector) for vector in values]
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
