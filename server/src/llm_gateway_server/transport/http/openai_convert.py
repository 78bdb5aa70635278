"""OpenAI wire <-> the core's types: requests in, answers, chunks and embeddings out."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

from llm_gateway_server.core import types as t
from llm_gateway_server.core.errors import RequestInvalid
from llm_gateway_server.gateway import ChatOutcome, EmbedOutcome
from llm_gateway_server.routing.views import RouteView
from llm_gateway_server.streams import StreamEnd
from llm_gateway_server.transport.http import openai_models as m

_ROLES = {
    "system": t.Role.SYSTEM,
    "developer": t.Role.SYSTEM,
    "user": t.Role.USER,
    "assistant": t.Role.ASSISTANT,
    "tool": t.Role.TOOL,
}
_PRIVACY = {"strict": t.Privacy.STRICT, "flexible": t.Privacy.FLEXIBLE}
# OpenAI's "minimal" has no core equivalent; the lowest effort is the closest.
_EFFORT = {
    "minimal": t.ReasoningEffort.LOW,
    "low": t.ReasoningEffort.LOW,
    "medium": t.ReasoningEffort.MEDIUM,
    "high": t.ReasoningEffort.HIGH,
}
#: OpenAI has no "reasoning_only": the token budget ran out before any visible answer.
FINISH = {
    t.FinishReason.STOP: "stop",
    t.FinishReason.LENGTH: "length",
    t.FinishReason.TOOL_CALLS: "tool_calls",
    t.FinishReason.CONTENT_FILTER: "content_filter",
    t.FinishReason.REASONING_ONLY: "length",
    t.FinishReason.ERROR: "stop",
    t.FinishReason.OTHER: "stop",
}
_MAX_STOP = 4


def privacy(*names: str | None) -> t.Privacy | None:
    """The first privacy given (header, ``privacy``, ``privacy_mode``), if any."""
    for name in names:
        if name:
            return _PRIVACY[name]
    return None


def privacy_header(value: str | None) -> str | None:
    """``x-llm-gateway-privacy``, validated."""
    if value is None or value == "":
        return None
    name = value.strip().lower()
    if name not in _PRIVACY:
        raise RequestInvalid("x-llm-gateway-privacy", f"must be strict or flexible, got {value!r}")
    return name


def _image(url: str, field: str, max_image_bytes: int) -> t.ImagePart:
    if not url.startswith(("https://", "http://", "data:")):
        raise RequestInvalid(field, "must be an http(s) or data: URL")
    # base64 grows data by 4/3: bound the inline image like gRPC bounds inline bytes.
    if url.startswith("data:") and len(url) * 3 // 4 > max_image_bytes:
        raise RequestInvalid(
            field,
            f"inline image is over the limit of {max_image_bytes} bytes (server.max_image_bytes)",
            reason="REQUEST_TOO_LARGE",
        )
    return t.ImagePart(url=url)


def _message(msg: m.ChatMessage, field: str, max_image_bytes: int) -> t.Message:
    role = _ROLES[msg.role]
    content = msg.content
    parts: tuple[t.Part, ...] = ()
    text = ""
    if isinstance(content, list):
        parts = tuple(
            t.TextPart(p.text)
            if isinstance(p, m.TextContent)
            else _image(p.image_url.url, f"{field}.content[{j}].image_url.url", max_image_bytes)
            for j, p in enumerate(content)
        )
        if all(isinstance(p, t.TextPart) for p in parts):
            # Text-only parts are plain content to every upstream.
            text, parts = "".join(p.text for p in parts if isinstance(p, t.TextPart)), ()
    elif content is not None:
        text = content
    calls = tuple(
        t.ToolCall(c.id, c.function.name, c.function.arguments) for c in msg.tool_calls or ()
    )
    if role is t.Role.TOOL and not msg.tool_call_id:
        raise RequestInvalid(f"{field}.tool_call_id", "is required for tool messages")
    return t.Message(role, text, parts, msg.name or "", msg.tool_call_id or "", calls)


def _tool_choice(req: m.ChatCompletionRequest, tools: tuple[t.Tool, ...]) -> t.ToolChoice | None:
    choice = req.tool_choice
    if choice is None:
        return None
    if isinstance(choice, str):
        return t.ToolChoice(mode=choice)
    if choice.function.name not in {tool.name for tool in tools}:
        raise RequestInvalid("tool_choice.function.name", "names no tool in tools")
    return t.ToolChoice(function_name=choice.function.name)


def _response_format(fmt: m.ResponseFormatIn | None) -> t.ResponseFormat | None:
    if fmt is None:
        return None
    kind = t.ResponseFormatType(fmt.type)
    if kind is not t.ResponseFormatType.JSON_SCHEMA:
        return t.ResponseFormat(kind)
    spec = fmt.json_schema
    if spec is None or not spec.schema_:
        raise RequestInvalid("response_format.json_schema.schema", "is required for json_schema")
    return t.ResponseFormat(kind, spec.schema_, spec.name, bool(spec.strict))


def chat_request(
    req: m.ChatCompletionRequest, *, privacy_name: str | None, max_image_bytes: int
) -> t.ChatRequest:
    """The core's ChatRequest; ``privacy_name`` is the validated privacy header."""
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or ())
    if len(stop) > _MAX_STOP:
        raise RequestInvalid("stop", f"at most {_MAX_STOP} stop sequences")
    tools = tuple(
        t.Tool(
            x.function.name,
            x.function.description or "",
            x.function.parameters,
            bool(x.function.strict),
        )
        for x in req.tools or ()
    )
    max_tokens = (
        req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    )
    return t.ChatRequest(
        messages=tuple(
            _message(msg, f"messages[{i}]", max_image_bytes) for i, msg in enumerate(req.messages)
        ),
        model=req.model,
        task=t.Task(req.task) if req.task else None,
        privacy=privacy(privacy_name, req.privacy, req.privacy_mode),
        tools=tools,
        tool_choice=_tool_choice(req, tools),
        response_format=_response_format(req.response_format),
        sampling=t.Sampling(
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=max_tokens,
            stop=tuple(stop),
            seed=req.seed,
            presence_penalty=req.presence_penalty,
            frequency_penalty=req.frequency_penalty,
            reasoning_effort=_EFFORT[req.reasoning_effort] if req.reasoning_effort else None,
        ),
        metadata=dict(req.metadata or {}),
    )


def embed_request(req: m.EmbeddingRequest, *, privacy_name: str | None) -> t.EmbedRequest:
    """The core's EmbedRequest."""
    inputs = [req.input] if isinstance(req.input, str) else req.input
    if not inputs:
        raise RequestInvalid("input", "at least one input is required")
    for i, text in enumerate(inputs):
        if not text:
            raise RequestInvalid(
                f"input[{i}]" if isinstance(req.input, list) else "input", "must not be empty"
            )
    return t.EmbedRequest(
        inputs=tuple(inputs),
        model=req.model,
        privacy=privacy(privacy_name, req.privacy, req.privacy_mode),
        dimensions=req.dimensions,
    )


def usage(u: t.Usage) -> dict[str, Any]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def completion_id(request_id: str) -> str:
    """The completion id: the request id, so a caller's log line finds the gateway's."""
    return f"chatcmpl-{request_id}"


def chat_completion(outcome: ChatOutcome, request_id: str) -> dict[str, Any]:
    """``chat.completion`` for a complete answer."""
    answer = outcome.answer
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.reasoning_content:
        message["reasoning_content"] = answer.reasoning_content
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls
        ]
        if not answer.content:
            message["content"] = None
    return {
        "id": completion_id(request_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": outcome.model or answer.model or outcome.route,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": FINISH[answer.finish_reason],
                "logprobs": None,
            }
        ],
        "usage": usage(answer.usage),
    }


class ChunkWriter:
    """Builds the ``chat.completion.chunk`` objects of one stream."""

    def __init__(self, request_id: str, model: str) -> None:
        self._id = completion_id(request_id)
        self._created = int(time.time())
        self.model = model
        self._role_sent = False

    def _chunk(self, choices: list[dict[str, Any]], model: str = "") -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": model or self.model,
            "choices": choices,
        }

    def delta(self, delta: t.ChatDelta) -> dict[str, Any]:
        """One delta; the first one also carries the role, as OpenAI sends it."""
        body: dict[str, Any] = {}
        if not self._role_sent:
            body["role"] = "assistant"
            self._role_sent = True
        if delta.content:
            body["content"] = delta.content
        if delta.reasoning_content:
            body["reasoning_content"] = delta.reasoning_content
        if delta.tool_calls:
            body["tool_calls"] = [_tool_call_delta(c) for c in delta.tool_calls]
        choice = {"index": 0, "delta": body, "finish_reason": None, "logprobs": None}
        return self._chunk([choice], delta.model)

    def finish(self, end: StreamEnd) -> dict[str, Any]:
        """The chunk with the finish reason."""
        body: dict[str, Any] = {} if self._role_sent else {"role": "assistant"}
        choice = {
            "index": 0,
            "delta": body,
            "finish_reason": FINISH[end.finish_reason],
            "logprobs": None,
        }
        return self._chunk([choice], end.model)

    def usage(self, end: StreamEnd) -> dict[str, Any]:
        """The ``stream_options.include_usage`` chunk: no choices, the usage."""
        chunk = self._chunk([], end.model)
        chunk["usage"] = usage(end.usage)
        return chunk


def _tool_call_delta(c: t.ToolCallDelta) -> dict[str, Any]:
    out: dict[str, Any] = {"index": c.index, "function": {"arguments": c.arguments}}
    if c.id:
        out["id"] = c.id
        out["type"] = "function"
    if c.name:
        out["function"]["name"] = c.name
    return out


def _base64(vector: tuple[float, ...]) -> str:
    # OpenAI's base64 encoding: little-endian float32, what numpy.frombuffer(dtype=float32) reads.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings(outcome: EmbedOutcome, *, encoding: str) -> dict[str, Any]:
    """The ``list`` of embeddings, as floats or base64."""
    answer = outcome.answer
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": _base64(v) if encoding == "base64" else list(v),
            }
            for i, v in enumerate(answer.vectors)
        ],
        "model": outcome.model or answer.model or outcome.route,
        "usage": {
            "prompt_tokens": answer.usage.prompt_tokens,
            "total_tokens": answer.usage.prompt_tokens,
        },
    }


def model_object(route: RouteView) -> dict[str, Any]:
    """A route as an OpenAI model, with the gateway's route facts beside the usual fields."""
    return {
        "id": route.name,
        "object": "model",
        "created": 0,
        "owned_by": "llm-gateway",
        "task": route.task.value,
        "available": route.available,
        "default_for_task": route.default_for_task,
        "max_privacy": route.max_privacy.name.lower(),
    }
