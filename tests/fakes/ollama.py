"""A fake Ollama native API: /api/chat (NDJSON stream or unary), /api/embed, /api/tags, /api/show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.behaviour import Behaviour, pieces
from tests.fakes.server import FakeUpstream, Frame

# Ollama reports "stop" after tool calls; content filtering does not exist there.
_DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "content_filter": "stop"}


class FakeOllama(FakeUpstream):
    """Speaks Ollama's native wire format; ``api_base`` is ``fake.url`` (no path)."""

    stream_content_type = "application/x-ndjson"

    @property
    def base_url(self) -> str:
        """The ``api_base`` for LiteLLM's ``ollama_chat/`` (it appends ``/api/chat``)."""
        return self.url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/chat", self.endpoint(self._chat)),
            web.post("/api/embed", self.endpoint(self._embed)),
            web.get("/api/tags", self.endpoint(self._tags)),
            web.post("/api/show", self.endpoint(self._show)),
        ]

    def error_payload(self, status: int, message: str) -> Any:
        return {"error": message}

    def malformed_frame(self) -> bytes:
        return b"{this is not json\n"

    async def _chat(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        body = body or {}
        model = b.model or body.get("model", "fake-model")
        if body.get("stream", True):
            return await self.send_stream(request, _lines(b, model), b)
        message: dict[str, Any] = {"role": "assistant", "content": b.content}
        if b.reasoning:
            message["thinking"] = b.reasoning
        if b.tool_calls:
            message["tool_calls"] = _tool_calls(b)
        return await self.send_json(request, {**_base(model, message), **_done(b)}, b)

    async def _embed(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        body = body or {}
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        answer = {
            "model": b.model or body.get("model", "fake-embed"),
            "embeddings": b.vectors(inputs),
            "prompt_eval_count": b.usage.prompt_tokens,
        }
        return await self.send_json(request, answer, b)

    async def _tags(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        models = [
            {"name": m, "model": m, "modified_at": _now(), "size": 1, "digest": "0", "details": {}}
            for m in self.models
        ]
        return await self.send_json(request, {"models": models}, b)

    async def _show(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        info = {"modelfile": "", "template": "{{ .Prompt }}", "details": {}, "model_info": {}}
        return await self.send_json(
            request, {**info, "capabilities": ["completion", "tools", "thinking"]}, b
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _base(model: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "created_at": _now(), "message": message}


def _tool_calls(b: Behaviour) -> list[dict[str, Any]]:
    return [{"function": {"name": c.name, "arguments": c.arguments}} for c in b.tool_calls]


def _done(b: Behaviour) -> dict[str, Any]:
    return {
        "done": True,
        "done_reason": _DONE_REASONS.get(b.effective_finish, "stop"),
        "total_duration": 1000,
        "prompt_eval_count": b.usage.prompt_tokens,
        "eval_count": b.usage.completion_tokens,
    }


def _lines(b: Behaviour, model: str) -> list[Frame]:
    def line(message: dict[str, Any], payload: bool = True, **extra: Any) -> Frame:
        obj = {
            **_base(model, {"role": "assistant", "content": "", **message}),
            "done": False,
            **extra,
        }
        return Frame(orjson.dumps(obj) + b"\n", payload)

    frames = [line({"thinking": p}) for p in pieces(b.reasoning)]
    frames += [line({"content": p}) for p in b.stream_pieces()]
    if b.tool_calls:
        frames.append(line({"tool_calls": _tool_calls(b)}))
    frames.append(line({}, False, **_done(b)))
    return frames
