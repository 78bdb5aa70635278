"""The OpenAI surface: /v1/chat/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from llm_gateway_server.core.errors import RequestInvalid, RouteNotFound
from llm_gateway_server.core.types import ChatDelta
from llm_gateway_server.streams import StreamEnd
from llm_gateway_server.transport.http import openai_convert as convert
from llm_gateway_server.transport.http.bodies import parse_model, read_model, valid
from llm_gateway_server.transport.http.calls import GatewayCalls
from llm_gateway_server.transport.http.errors import HttpError
from llm_gateway_server.transport.http.openai_models import (
    ChatCompletionRequest,
    EmbeddingRequest,
)
from llm_gateway_server.transport.http.responses import answer_headers, json_response
from llm_gateway_server.transport.http.streams import relay

#: The gateway's privacy header (``strict`` or ``flexible``).
PRIVACY_HEADER = "x-llm-gateway-privacy"


def _sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class _SseEncoder:
    """OpenAI's stream: ``data: {chunk}`` events, then ``data: [DONE]``; errors as
    ``data: {"error": {...}}`` without ``[DONE]``, which the openai SDK raises as APIError."""

    content_type = "text/event-stream"

    def __init__(self, request_id: str, model: str, *, include_usage: bool) -> None:
        self._chunks = convert.ChunkWriter(request_id, model)
        self._include_usage = include_usage

    def delta(self, delta: ChatDelta) -> bytes:
        if not delta.has_payload:
            return b""
        return _sse(self._chunks.delta(delta))

    def end(self, end: StreamEnd) -> bytes:
        data = _sse(self._chunks.finish(end))
        if self._include_usage:
            data += _sse(self._chunks.usage(end))
        return data + b"data: [DONE]\n\n"

    def error(self, error: HttpError) -> bytes:
        return _sse(error.openai_body())


class OpenAIRoutes:
    """Handlers of the OpenAI-compatible endpoints."""

    def __init__(self, calls: GatewayCalls) -> None:
        self._calls = calls

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes."""
        return [
            web.post("/v1/chat/completions", self.chat_completions),
            web.post("/v1/embeddings", self.embeddings),
            web.get("/v1/models", self.models),
            web.get("/v1/models/{model:.+}", self.model),
        ]

    @property
    def _max_bytes(self) -> int:
        return self._calls.config.server.max_message_bytes

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``, unary or streamed (SSE)."""
        # Parsed before the call opens, to name it Chat or StreamChat; a bad body is still
        # reported inside the call, after auth, so a caller without a key learns nothing.
        parsed = await parse_model(request, ChatCompletionRequest, max_bytes=self._max_bytes)
        streaming = not isinstance(parsed, RequestInvalid) and parsed.stream
        async with self._calls.call("StreamChat" if streaming else "Chat", request) as call:
            req = valid(parsed)
            chat = convert.chat_request(
                req,
                privacy_name=convert.privacy_header(request.headers.get(PRIVACY_HEADER)),
                max_image_bytes=self._calls.config.server.max_image_bytes,
            )
            if req.stream:
                include_usage = bool(req.stream_options and req.stream_options.include_usage)
                encoder = _SseEncoder(call.request_id, req.model, include_usage=include_usage)
                return await relay(request, self._calls, call, chat, encoder)
            outcome = await self._calls.chat(call, chat)
            headers = answer_headers(
                call,
                route=outcome.route,
                provider=outcome.provider,
                model=outcome.model,
                attempts=outcome.attempts,
                cached=outcome.cached,
            )
            return json_response(convert.chat_completion(outcome, call.request_id), headers=headers)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/embeddings``."""
        async with self._calls.call("Embed", request) as call:
            req = await read_model(request, EmbeddingRequest, max_bytes=self._max_bytes)
            embed = convert.embed_request(
                req, privacy_name=convert.privacy_header(request.headers.get(PRIVACY_HEADER))
            )
            outcome = await self._calls.embed(call, embed)
            headers = answer_headers(
                call,
                route=outcome.route,
                provider=outcome.provider,
                model=outcome.model,
                attempts=outcome.attempts,
            )
            return json_response(
                convert.embeddings(outcome, encoding=req.encoding_format), headers=headers
            )

    async def models(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models``: the routes this caller may use."""
        async with self._calls.call("ListModels", request) as call:
            data = [convert.model_object(r) for r in self._calls.models(call)]
            return json_response(
                {"object": "list", "data": data}, headers={"x-request-id": call.request_id}
            )

    async def model(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models/{id}``."""
        name = request.match_info["model"]
        async with self._calls.call("ListModels", request) as call:
            for route in self._calls.models(call):
                if route.name == name:
                    return json_response(
                        convert.model_object(route), headers={"x-request-id": call.request_id}
                    )
            raise RouteNotFound(f"no route named {name!r}")
