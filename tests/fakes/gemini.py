"""A fake Gemini API: generateContent, streamGenerateContent?alt=sse, batchEmbedContents."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.behaviour import Behaviour, pieces
from tests.fakes.server import FakeUpstream, Frame

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class FakeGemini(FakeUpstream):
    """Speaks Google AI Studio's v1beta wire format; ``api_base`` is ``fake.base_url``."""

    @property
    def base_url(self) -> str:
        """The ``api_base`` for LiteLLM's ``gemini/`` (it appends ``/models/{model}:{method}``)."""
        return f"{self.url}/v1beta"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1beta/models/{target}", self.endpoint(self._dispatch)),
            web.get("/v1beta/models", self.endpoint(self._models)),
        ]

    def error_payload(self, status: int, message: str) -> Any:
        return {
            "error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
        }

    async def _dispatch(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        model = b.model or model
        if method == "generateContent":
            return await self.send_json(request, _answer(b, model, _parts(b), final=True), b)
        if method == "streamGenerateContent":
            return await self.send_stream(request, _stream(b, model), b)
        if method in ("batchEmbedContents", "embedContent"):
            return await self._embed(request, body or {}, b, method)
        raise web.HTTPNotFound(text=f"unknown method {method}")

    async def _embed(
        self, request: web.Request, body: dict[str, Any], b: Behaviour, method: str
    ) -> web.StreamResponse:
        if method == "embedContent":
            texts = [_text_of(body.get("content"))]
        else:
            texts = [_text_of(r.get("content")) for r in body.get("requests", [])]
        vectors = b.vectors(texts)
        if method == "embedContent":
            return await self.send_json(request, {"embedding": {"values": vectors[0]}}, b)
        return await self.send_json(request, {"embeddings": [{"values": v} for v in vectors]}, b)

    async def _models(self, request: web.Request, body: Any, b: Behaviour) -> web.StreamResponse:
        models = [{"name": f"models/{m}", "displayName": m} for m in self.models]
        return await self.send_json(request, {"models": models}, b)


def _text_of(content: Any) -> str:
    parts = (content or {}).get("parts", [])
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def _parts(b: Behaviour) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if b.reasoning:
        parts.append({"text": b.reasoning, "thought": True})
    if b.content:
        parts.append({"text": b.content})
    parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in b.tool_calls]
    return parts


def _usage(b: Behaviour) -> dict[str, int]:
    # Gemini counts thoughts apart from candidates; clients add them into completion tokens.
    usage = {
        "promptTokenCount": b.usage.prompt_tokens,
        "candidatesTokenCount": b.usage.completion_tokens - b.usage.reasoning_tokens,
        "totalTokenCount": b.usage.prompt_tokens + b.usage.completion_tokens,
    }
    if b.usage.reasoning_tokens:
        usage["thoughtsTokenCount"] = b.usage.reasoning_tokens
    if b.usage.cached_tokens:
        usage["cachedContentTokenCount"] = b.usage.cached_tokens
    return usage


def _answer(
    b: Behaviour, model: str, parts: list[dict[str, Any]], *, final: bool
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    answer: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": model,
        "responseId": "fake",
    }
    if final:
        candidate["finishReason"] = _FINISH.get(b.effective_finish, "OTHER")
        answer["usageMetadata"] = _usage(b)
    return answer


def _stream(b: Behaviour, model: str) -> list[Frame]:
    def frame(parts: list[dict[str, Any]], final: bool = False) -> Frame:
        data = orjson.dumps(_answer(b, model, parts, final=final))
        return Frame(b"data: " + data + b"\r\n\r\n", not final)

    frames = [frame([{"text": p, "thought": True}]) for p in pieces(b.reasoning)]
    frames += [frame([{"text": p}]) for p in pieces(b.content)]
    calls = [{"functionCall": {"name": c.name, "args": c.arguments}} for c in b.tool_calls]
    if calls:
        frames.append(frame(calls))
    frames.append(frame([{"text": ""}], final=True))
    return frames
