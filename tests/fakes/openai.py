"""A fake OpenAI-compatible upstream: /v1/chat/completions (unary, SSE), /v1/embeddings, /v1/models."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.behaviour import Behaviour, FakeUsage, halves, pieces
from tests.fakes.server import FakeUpstream, Frame


class FakeOpenAI(FakeUpstream):
    """Speaks OpenAI's wire format; point ``api_base`` at ``fake.base_url``.

    ``expected_api_key``: when set, requests without ``Authorization: Bearer <it>`` get 401.
    """

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        models: tuple[str, ...] = (),
        expected_api_key: str | None = None,
    ) -> None:
        super().__init__(behaviour, models=models)
        self.expected_api_key = expected_api_key

    @property
    def base_url(self) -> str:
        """The ``api_base`` for clients: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self.endpoint(self._chat)),
            web.post("/v1/embeddings", self.endpoint(self._embeddings)),
            web.get("/v1/models", self.endpoint(self._models)),
        ]

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.expected_api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.expected_api_key}":
            return None
        body = self.error_payload(401, "Incorrect API key provided")
        return web.Response(status=401, body=orjson.dumps(body), content_type="application/json")

    async def _chat(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        model = b.model or (body or {}).get("model", "fake-model")
        limit = (body or {}).get("max_tokens")
        if b.honour_max_tokens and isinstance(limit, int):
            usage = dataclasses.replace(
                b.usage, completion_tokens=min(b.usage.completion_tokens, limit)
            )
            b = dataclasses.replace(b, usage=usage)
        if (body or {}).get("stream"):
            include_usage = bool(((body or {}).get("stream_options") or {}).get("include_usage"))
            include_usage = include_usage and not b.omit_usage
            return await self.send_stream(request, _chunks(b, model, include_usage), b)
        message: dict[str, Any] = {"role": "assistant", "content": b.content or None}
        if b.reasoning:
            message[b.reasoning_field] = b.reasoning
        if b.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()},
                }
                for c in b.tool_calls
            ]
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": b.effective_finish}],
            "usage": usage_json(b.usage),
        }
        return await self.send_json(request, answer, b)

    async def _embeddings(
        self, request: web.Request, body: Any, b: Behaviour
    ) -> web.StreamResponse:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        inputs = (body or {}).get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": v}
            for i, v in enumerate(b.vectors(inputs))
        ]
        if b.shuffle_embeddings:
            data.reverse()
        answer = {
            "object": "list",
            "data": data,
            "model": b.model or (body or {}).get("model", "fake-embed"),
            "usage": {
                "prompt_tokens": b.usage.prompt_tokens,
                "total_tokens": b.usage.prompt_tokens,
            },
        }
        return await self.send_json(request, answer, b)

    async def _models(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
        return await self.send_json(request, {"object": "list", "data": data}, b)


def usage_json(usage: FakeUsage) -> dict[str, Any]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def _chunks(b: Behaviour, model: str, include_usage: bool) -> list[Frame]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        obj = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    frames = [Frame(chunk({"role": "assistant", "content": ""}))]
    frames += [Frame(chunk({b.reasoning_field: p}), True) for p in pieces(b.reasoning)]
    frames += [Frame(chunk({"content": p}), True) for p in b.stream_pieces()]
    for i, call in enumerate(b.tool_calls):
        head = {"index": i, "id": call.id, "type": "function"}
        frames.append(
            Frame(chunk({"tool_calls": [{**head, "function": {"name": call.name}}]}), True)
        )
        for fragment in halves(orjson.dumps(call.arguments).decode()):
            tc = {"index": i, "function": {"arguments": fragment}}
            frames.append(Frame(chunk({"tool_calls": [tc]}), True))
    usage = usage_json(b.usage)
    if include_usage and not b.usage_in_separate_chunk:
        frames.append(Frame(chunk({}, b.effective_finish, usage=usage)))
    else:
        frames.append(Frame(chunk({}, b.effective_finish)))
        if include_usage:
            last = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            frames.append(Frame(b"data: " + orjson.dumps(last) + b"\n\n"))
    if b.send_done:
        frames.append(Frame(b"data: [DONE]\n\n"))
    if b.stream_error is not None:
        first = next(i for i, f in enumerate(frames) if f.payload)
        error = Frame(b"data: " + orjson.dumps(b.stream_error) + b"\n\n")
        frames = [*frames[: first + 1], error]
    return frames
