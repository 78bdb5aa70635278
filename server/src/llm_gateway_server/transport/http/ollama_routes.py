"""The Ollama surface: /, /api/version, /api/tags, /api/show, /api/ps, /api/chat,
/api/generate, /api/embed, /api/embeddings."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from llm_gateway_server.core.errors import RequestInvalid, RouteNotFound
from llm_gateway_server.core.types import ChatDelta, EmbedRequest, Task, ToolCall
from llm_gateway_server.routing.views import RouteView
from llm_gateway_server.streams import StreamEnd
from llm_gateway_server.transport.http import ollama_convert as convert
from llm_gateway_server.transport.http import ollama_models as m
from llm_gateway_server.transport.http.bodies import parse_model, valid
from llm_gateway_server.transport.http.calls import Call, GatewayCalls
from llm_gateway_server.transport.http.errors import HttpError
from llm_gateway_server.transport.http.responses import answer_headers, json_response
from llm_gateway_server.transport.http.streams import relay

#: The Ollama API version reported: tools check it against the minimum they need, and the
#: facade implements that version's endpoints and fields listed in this module.
OLLAMA_API_VERSION = "0.12.0"

_CAPABILITIES = {
    Task.CHAT: ["completion", "tools"],
    Task.VISION: ["completion", "vision"],
    Task.OCR: ["completion", "vision"],
    Task.EMBEDDING: ["embedding"],
}
_DETAILS = {
    "parent_model": "",
    "format": "",
    "family": "",
    "families": None,
    "parameter_size": "",
    "quantization_level": "",
}


def _line(payload: Any) -> bytes:
    return orjson.dumps(payload) + b"\n"


class _NdjsonEncoder:
    """Ollama's stream: one JSON object per line, the last with ``done: true``; a failure
    is a last line ``{"error": "..."}``, which the ollama client raises as ResponseError."""

    content_type = "application/x-ndjson"

    def __init__(self, call: Call, model: str, *, generate: bool, thinking: bool) -> None:
        self._call = call
        self._model = model
        self._generate = generate
        self._thinking = thinking
        self.timer = convert.Timer()
        # Ollama sends whole tool calls, the core streams fragments: they are joined here.
        self._calls: dict[int, list[str]] = {}

    def _head(self) -> dict[str, Any]:
        # A request without a model went to its task's default route: name that instead.
        return {"model": self._model or self._call.route, "created_at": convert.created_at()}

    def body(self, content: str, reasoning: str) -> dict[str, Any]:
        """A chat message or generate response object (without ``done``)."""
        out = self._head()
        if self._generate:
            out["response"] = content
            if reasoning and self._thinking:
                out["thinking"] = reasoning
        else:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if reasoning and self._thinking:
                message["thinking"] = reasoning
            out["message"] = message
        return out

    def delta(self, delta: ChatDelta) -> bytes:
        for c in delta.tool_calls:
            call = self._calls.setdefault(c.index, ["", "", ""])
            call[0] = call[0] or c.id
            call[1] += c.name
            call[2] += c.arguments
        if not (delta.content or (delta.reasoning_content and self._thinking)):
            return b""
        self.timer.first_token()
        body = self.body(delta.content, delta.reasoning_content)
        body["done"] = False
        return _line(body)

    def end(self, end: StreamEnd) -> bytes:
        data = b""
        if self._calls and not self._generate:
            calls = tuple(ToolCall(*self._calls[i]) for i in sorted(self._calls))
            body = self.body("", "")
            body["message"]["tool_calls"] = convert.tool_calls(calls)
            body["done"] = False
            data += _line(body)
        last = self.body("", "")
        last.update(done=True, done_reason=convert.done_reason(end.finish_reason))
        if self._generate:
            last["context"] = []
        last.update(self.timer.durations(end.usage))
        return data + _line(last)

    def error(self, error: HttpError) -> bytes:
        return _line(error.ollama_body())


class OllamaRoutes:
    """Handlers of the Ollama-compatible endpoints."""

    def __init__(self, calls: GatewayCalls) -> None:
        self._calls = calls

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes."""
        return [
            web.get("/", self.root),
            web.get("/api/version", self.version),
            web.get("/api/tags", self.tags),
            web.get("/api/ps", self.ps),
            web.post("/api/show", self.show),
            web.post("/api/chat", self.chat),
            web.post("/api/generate", self.generate),
            web.post("/api/embed", self.embed),
            web.post("/api/embeddings", self.embeddings),
        ]

    @property
    def _max_bytes(self) -> int:
        return self._calls.config.server.max_message_bytes

    @property
    def _max_image_bytes(self) -> int:
        return self._calls.config.server.max_image_bytes

    async def root(self, request: web.Request) -> web.Response:
        """``GET /``: what Ollama answers, which tools use to detect a server."""
        return web.Response(text="Ollama is running")

    async def version(self, request: web.Request) -> web.Response:
        """``GET /api/version``."""
        return json_response({"version": OLLAMA_API_VERSION})

    async def tags(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tags``: the routes this caller may use, as models."""
        async with self._calls.call("ListModels", request) as call:
            models = [self._model(r) for r in self._calls.models(call)]
            return json_response({"models": models}, headers={"x-request-id": call.request_id})

    async def ps(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/ps``: the routes with a usable target (nothing to load or unload)."""
        async with self._calls.call("ListModels", request) as call:
            models = [
                self._model(r) | {"size_vram": 0} for r in self._calls.models(call) if r.available
            ]
            return json_response({"models": models}, headers={"x-request-id": call.request_id})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/show``: one route's capabilities."""
        parsed = await parse_model(request, m.ShowRequest, max_bytes=self._max_bytes)
        async with self._calls.call("ListModels", request) as call:
            req = valid(parsed)
            route = self._find(call, req.model or req.name)
            body = {
                "modelfile": "",
                "parameters": "",
                "template": "",
                "details": _DETAILS,
                "model_info": {},
                "capabilities": _CAPABILITIES[route.task],
                "modified_at": convert.created_at(),
            }
            return json_response(body, headers={"x-request-id": call.request_id})

    def _find(self, call: Call, name: str) -> RouteView:
        for route in self._calls.models(call):
            if route.name == name:
                return route
        raise RouteNotFound(f"model {name!r} not found")

    @staticmethod
    def _model(route: RouteView) -> dict[str, Any]:
        return {
            "name": route.name,
            "model": route.name,
            "modified_at": convert.created_at(),
            "size": 0,
            "digest": "",
            "details": _DETAILS,
        }

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/chat``: NDJSON unless ``stream`` is false."""
        parsed = await parse_model(request, m.ChatRequest, max_bytes=self._max_bytes)
        streaming = not isinstance(parsed, RequestInvalid) and parsed.stream
        async with self._calls.call("StreamChat" if streaming else "Chat", request) as call:
            req = valid(parsed)
            encoder = _NdjsonEncoder(
                call, req.model, generate=False, thinking=req.think is not False
            )
            if not req.messages:
                # Ollama answers an empty chat by "loading" the model; clients use it to warm up.
                return self._loaded(call, encoder)
            chat = convert.chat_request(req, max_image_bytes=self._max_image_bytes)
            if req.stream:
                return await relay(request, self._calls, call, chat, encoder)
            outcome = await self._calls.chat(call, chat)
            answer = outcome.answer
            body = encoder.body(answer.content, answer.reasoning_content)
            if answer.tool_calls:
                body["message"]["tool_calls"] = convert.tool_calls(answer.tool_calls)
            body.update(done=True, done_reason=convert.done_reason(answer.finish_reason))
            body.update(encoder.timer.durations(answer.usage))
            return json_response(body, headers=self._headers(call, outcome))

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/generate``: a prompt; an empty one only "loads" the model, as in Ollama."""
        parsed = await parse_model(request, m.GenerateRequest, max_bytes=self._max_bytes)
        streaming = not isinstance(parsed, RequestInvalid) and parsed.stream
        async with self._calls.call("StreamChat" if streaming else "Chat", request) as call:
            req = valid(parsed)
            encoder = _NdjsonEncoder(
                call, req.model, generate=True, thinking=req.think is not False
            )
            if not req.prompt and not req.images:
                return self._loaded(call, encoder)
            chat = convert.generate_request(req, max_image_bytes=self._max_image_bytes)
            if req.stream:
                return await relay(request, self._calls, call, chat, encoder)
            outcome = await self._calls.chat(call, chat)
            answer = outcome.answer
            body = encoder.body(answer.content, answer.reasoning_content)
            body.update(
                done=True, done_reason=convert.done_reason(answer.finish_reason), context=[]
            )
            body.update(encoder.timer.durations(answer.usage))
            return json_response(body, headers=self._headers(call, outcome))

    async def embed(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/embed``: one string or a list."""
        parsed = await parse_model(request, m.EmbedRequest, max_bytes=self._max_bytes)
        async with self._calls.call("Embed", request) as call:
            req = valid(parsed)
            timer = convert.Timer()
            inputs = convert.embed_inputs(req.input, "input")
            outcome = await self._calls.embed(
                call,
                EmbedRequest(
                    inputs=inputs,
                    model=req.model,
                    dimensions=req.dimensions,
                    provider_options=convert.provider_options(req),
                    provider_options_strict=False,
                ),
            )
            durations = timer.durations(outcome.answer.usage)
            body = {
                "model": req.model,
                "embeddings": [list(v) for v in outcome.answer.vectors],
                "total_duration": durations["total_duration"],
                "load_duration": 0,
                "prompt_eval_count": outcome.answer.usage.prompt_tokens,
            }
            return json_response(body, headers=self._headers(call, outcome))

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/embeddings`` (older API): ``prompt`` in, ``embedding`` out."""
        parsed = await parse_model(request, m.EmbeddingsRequest, max_bytes=self._max_bytes)
        async with self._calls.call("Embed", request) as call:
            req = valid(parsed)
            inputs = convert.embed_inputs(req.prompt, "prompt")
            outcome = await self._calls.embed(call, EmbedRequest(inputs=inputs, model=req.model))
            body = {"embedding": list(outcome.answer.vectors[0])}
            return json_response(body, headers=self._headers(call, outcome))

    @staticmethod
    def _loaded(call: Call, encoder: _NdjsonEncoder) -> web.Response:
        # Nothing to load: every route is served already. No upstream call is made.
        body = encoder.body("", "") | {"done": True, "done_reason": "load"}
        return json_response(body, headers={"x-request-id": call.request_id})

    @staticmethod
    def _headers(call: Call, outcome: Any) -> dict[str, str]:
        return answer_headers(
            call,
            route=outcome.route,
            provider=outcome.provider,
            model=outcome.model,
            attempts=outcome.attempts,
            cached=getattr(outcome, "cached", None),
        )
