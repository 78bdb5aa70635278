"""A fake Anthropic Messages API: POST /v1/messages, unary and SSE (Anthropic's event format)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.behaviour import Behaviour, halves, pieces
from tests.fakes.server import FakeUpstream, Frame

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeUpstream):
    """Speaks the Anthropic Messages wire format; ``api_base`` is ``fake.url`` (no path)."""

    @property
    def base_url(self) -> str:
        """The ``api_base`` for clients (LiteLLM appends ``/v1/messages``)."""
        return self.url

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self.endpoint(self._messages))]

    def error_payload(self, status: int, message: str) -> Any:
        return {
            "type": "error",
            "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
        }

    def malformed_frame(self) -> bytes:
        return b"event: content_block_delta\ndata: {this is not json\n\n"

    async def _messages(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        body = body or {}
        model = b.model or body.get("model", "claude-fake")
        if body.get("stream"):
            return await self.send_stream(request, _events(b, model), b)
        content: list[dict[str, Any]] = []
        if b.reasoning:
            content.append({"type": "thinking", "thinking": b.reasoning, "signature": "fake-sig"})
        if b.content:
            content.append({"type": "text", "text": b.content})
        content += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in b.tool_calls
        ]
        answer = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": _STOP_REASONS.get(b.effective_finish, "end_turn"),
            "stop_sequence": None,
            "usage": {**_input_usage(b), "output_tokens": b.usage.completion_tokens},
        }
        return await self.send_json(request, answer, b)


def _input_usage(b: Behaviour) -> dict[str, int]:
    # Anthropic's input_tokens excludes cache reads; clients add them back into prompt tokens.
    return {
        "input_tokens": b.usage.prompt_tokens - b.usage.cached_tokens,
        "cache_read_input_tokens": b.usage.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def _event(name: str, data: dict[str, Any], payload: bool = False) -> Frame:
    return Frame(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n", payload)


def _events(b: Behaviour, model: str) -> list[Frame]:
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**_input_usage(b), "output_tokens": 1},
    }
    frames = [_event("message_start", {"type": "message_start", "message": message})]
    frames.append(_event("ping", {"type": "ping"}))
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        frames.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for delta in deltas:
            data = {"type": "content_block_delta", "index": index, "delta": delta}
            frames.append(_event("content_block_delta", data, delta["type"] != "signature_delta"))
        frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if b.reasoning:
        thinking = [{"type": "thinking_delta", "thinking": p} for p in pieces(b.reasoning)]
        block(
            {"type": "thinking", "thinking": "", "signature": ""},
            [*thinking, {"type": "signature_delta", "signature": "fake-sig"}],
        )
    if b.content:
        block(
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": p} for p in pieces(b.content)],
        )
    for call in b.tool_calls:
        fragments = halves(orjson.dumps(call.arguments).decode())
        block(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": f} for f in fragments],
        )
    frames.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _STOP_REASONS.get(b.effective_finish, "end_turn"),
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": b.usage.completion_tokens},
            },
        )
    )
    frames.append(_event("message_stop", {"type": "message_stop"}))
    return frames
