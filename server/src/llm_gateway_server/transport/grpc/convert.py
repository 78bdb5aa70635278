"""Protobuf <-> internal types, with the request validation that names the bad field.

This is the only module that knows both the generated messages and ``core.types``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2
from google.protobuf.duration_pb2 import Duration

from llm_gateway_server.core import types as t
from llm_gateway_server.core.errors import RequestInvalid
from llm_gateway_server.core.types import AttemptRecord, ChatAnswer, ChatDelta, Usage
from llm_gateway_server.providers.options import from_json
from llmgateway.v1 import chat_pb2, common_pb2, embed_pb2

_ROLES = {
    chat_pb2.ROLE_SYSTEM: t.Role.SYSTEM,
    chat_pb2.ROLE_USER: t.Role.USER,
    chat_pb2.ROLE_ASSISTANT: t.Role.ASSISTANT,
    chat_pb2.ROLE_TOOL: t.Role.TOOL,
}
_TASKS = {
    common_pb2.TASK_CHAT: t.Task.CHAT,
    common_pb2.TASK_VISION: t.Task.VISION,
    common_pb2.TASK_OCR: t.Task.OCR,
    common_pb2.TASK_EMBEDDING: t.Task.EMBEDDING,
}
TASK_TO_PB = {v: k for k, v in _TASKS.items()}
_PRIVACY = {
    common_pb2.PRIVACY_STRICT: t.Privacy.STRICT,
    common_pb2.PRIVACY_FLEXIBLE: t.Privacy.FLEXIBLE,
}
PRIVACY_TO_PB = {v: k for k, v in _PRIVACY.items()}
LOCALITY_TO_PB = {
    t.Locality.LOCAL: common_pb2.LOCALITY_LOCAL,
    t.Locality.CLOUD: common_pb2.LOCALITY_CLOUD,
}
_EFFORT = {
    chat_pb2.REASONING_EFFORT_LOW: t.ReasoningEffort.LOW,
    chat_pb2.REASONING_EFFORT_MEDIUM: t.ReasoningEffort.MEDIUM,
    chat_pb2.REASONING_EFFORT_HIGH: t.ReasoningEffort.HIGH,
    chat_pb2.REASONING_EFFORT_NONE: t.ReasoningEffort.NONE,
}
_FORMATS = {
    chat_pb2.RESPONSE_FORMAT_TYPE_TEXT: t.ResponseFormatType.TEXT,
    chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT: t.ResponseFormatType.JSON_OBJECT,
    chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA: t.ResponseFormatType.JSON_SCHEMA,
}
_TOOL_MODES = {
    chat_pb2.TOOL_CHOICE_MODE_AUTO: "auto",
    chat_pb2.TOOL_CHOICE_MODE_NONE: "none",
    chat_pb2.TOOL_CHOICE_MODE_REQUIRED: "required",
}
_CACHE_MODES = {
    chat_pb2.CACHE_MODE_UNSPECIFIED: t.CacheMode.DEFAULT,
    chat_pb2.CACHE_MODE_BYPASS: t.CacheMode.BYPASS,
    chat_pb2.CACHE_MODE_ENABLED: t.CacheMode.ENABLED,
}
FINISH_TO_PB = {
    t.FinishReason.STOP: chat_pb2.FINISH_REASON_STOP,
    t.FinishReason.LENGTH: chat_pb2.FINISH_REASON_LENGTH,
    t.FinishReason.TOOL_CALLS: chat_pb2.FINISH_REASON_TOOL_CALLS,
    t.FinishReason.CONTENT_FILTER: chat_pb2.FINISH_REASON_CONTENT_FILTER,
    t.FinishReason.REASONING_ONLY: chat_pb2.FINISH_REASON_REASONING_ONLY,
    t.FinishReason.ERROR: chat_pb2.FINISH_REASON_ERROR,
    t.FinishReason.OTHER: chat_pb2.FINISH_REASON_OTHER,
}
OUTCOME_TO_PB = {
    t.AttemptOutcome.SUCCESS: common_pb2.ATTEMPT_OUTCOME_SUCCESS,
    t.AttemptOutcome.UPSTREAM_ERROR: common_pb2.ATTEMPT_OUTCOME_UPSTREAM_ERROR,
    t.AttemptOutcome.TIMEOUT: common_pb2.ATTEMPT_OUTCOME_TIMEOUT,
    t.AttemptOutcome.RATE_LIMITED: common_pb2.ATTEMPT_OUTCOME_RATE_LIMITED,
    t.AttemptOutcome.CIRCUIT_OPEN: common_pb2.ATTEMPT_OUTCOME_CIRCUIT_OPEN,
    t.AttemptOutcome.EMPTY_ANSWER: common_pb2.ATTEMPT_OUTCOME_EMPTY_ANSWER,
    t.AttemptOutcome.REQUEST_REJECTED: common_pb2.ATTEMPT_OUTCOME_REQUEST_REJECTED,
    t.AttemptOutcome.CONCURRENCY_LIMITED: common_pb2.ATTEMPT_OUTCOME_CONCURRENCY_LIMITED,
    t.AttemptOutcome.CANCELLED: common_pb2.ATTEMPT_OUTCOME_CANCELLED,
    t.AttemptOutcome.STREAM_CUT: common_pb2.ATTEMPT_OUTCOME_STREAM_CUT,
}
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_STOP = 4


#: ChatRequest and StreamChatRequest share every field and field number; the servicer
#: re-reads a StreamChatRequest's bytes as a ChatRequest (tests/proto checks they match).
ChatLike = chat_pb2.ChatRequest


_E = TypeVar("_E")


def _enum(value: int, table: Mapping[Any, _E], field: str, *, required: bool = False) -> _E | None:
    if value == 0:
        if required:
            raise RequestInvalid(field, "is required")
        return None
    try:
        return table[value]
    except KeyError:
        raise RequestInvalid(field, f"unknown value {value}") from None


def _optional_float(
    present: Mapping[str, Any], name: str, low: float, high: float, *, low_open: bool = False
) -> float | None:
    raw = present.get(name)
    if raw is None:
        return None
    value = float(raw)
    too_low = value <= low if low_open else value < low
    if math.isnan(value) or too_low or value > high:
        bound = "(" if low_open else "["
        raise RequestInvalid(name, f"must be in {bound}{low:g}, {high:g}], got {value:g}")
    return value


def _image(image: chat_pb2.Image, field: str, max_image_bytes: int) -> t.ImagePart:
    source = image.WhichOneof("source")
    if source is None:
        raise RequestInvalid(field, "needs a url or inline data")
    if source == "url":
        if not image.url.startswith(("http://", "https://", "data:")):
            raise RequestInvalid(f"{field}.url", "must be an http(s) or data: URL")
        return t.ImagePart(url=image.url, mime_type=image.mime_type)
    if len(image.data) > max_image_bytes:
        raise RequestInvalid(
            f"{field}.data",
            f"image is {len(image.data)} bytes, over the limit of {max_image_bytes}",
            reason="REQUEST_TOO_LARGE",
        )
    if not image.mime_type.startswith("image/"):
        raise RequestInvalid(f"{field}.mime_type", "is required with inline data (e.g. image/png)")
    return t.ImagePart(data=image.data, mime_type=image.mime_type)


def _message(msg: chat_pb2.Message, field: str, max_image_bytes: int) -> t.Message:
    role = _enum(msg.role, _ROLES, f"{field}.role", required=True)
    assert role is not None  # required=True raised otherwise
    if msg.content and len(msg.parts):
        raise RequestInvalid(field, "set content or parts, not both")
    parts: list[t.Part] = []
    for j, part in enumerate(msg.parts):
        kind = part.WhichOneof("kind")
        if kind == "text":
            parts.append(t.TextPart(part.text))
        elif kind == "image":
            parts.append(_image(part.image, f"{field}.parts[{j}].image", max_image_bytes))
        else:
            raise RequestInvalid(f"{field}.parts[{j}]", "needs text or image")
    calls = tuple(t.ToolCall(c.id, c.name, c.arguments) for c in msg.tool_calls)
    if role is t.Role.TOOL and not msg.tool_call_id:
        raise RequestInvalid(f"{field}.tool_call_id", "is required for ROLE_TOOL messages")
    return t.Message(role, msg.content, tuple(parts), msg.name, msg.tool_call_id, calls)


def _tools(req: ChatLike) -> tuple[t.Tool, ...]:
    tools = []
    for i, tool in enumerate(req.tools):
        if not _TOOL_NAME.match(tool.name):
            raise RequestInvalid(f"tools[{i}].name", "must be 1-64 of letters, digits, _ and -")
        params = json_format.MessageToDict(tool.parameters) if tool.HasField("parameters") else None
        tools.append(t.Tool(tool.name, tool.description, params, tool.strict))
    return tuple(tools)


def _tool_choice(req: ChatLike, tools: tuple[t.Tool, ...]) -> t.ToolChoice | None:
    if not req.HasField("tool_choice"):
        return None
    choice = req.tool_choice
    which = choice.WhichOneof("choice")
    if which == "function_name":
        if choice.function_name not in {tool.name for tool in tools}:
            raise RequestInvalid("tool_choice.function_name", "names no tool in tools")
        return t.ToolChoice(function_name=choice.function_name)
    if which == "mode":
        mode = _enum(choice.mode, _TOOL_MODES, "tool_choice.mode")
        return t.ToolChoice(mode=mode) if mode else None
    return None


def _response_format(req: ChatLike) -> t.ResponseFormat | None:
    if not req.HasField("response_format"):
        return None
    fmt = req.response_format
    kind = _enum(fmt.type, _FORMATS, "response_format.type") or t.ResponseFormatType.TEXT
    schema = json_format.MessageToDict(fmt.json_schema) if fmt.HasField("json_schema") else None
    if kind is t.ResponseFormatType.JSON_SCHEMA and not schema:
        raise RequestInvalid("response_format.json_schema", "is required for JSON_SCHEMA")
    return t.ResponseFormat(kind, schema, fmt.schema_name, fmt.strict)


def _cache(req: ChatLike) -> t.CacheControl:
    if not req.HasField("cache"):
        return t.CacheControl()
    mode = _CACHE_MODES.get(req.cache.mode)
    if mode is None:
        raise RequestInvalid("cache.mode", f"unknown value {req.cache.mode}")
    ttl = None
    if req.cache.HasField("ttl"):
        ttl = req.cache.ttl.ToTimedelta().total_seconds()
        if ttl < 0:
            raise RequestInvalid("cache.ttl", "must not be negative")
    return t.CacheControl(mode, ttl)


def chat_request(req: ChatLike, *, max_image_bytes: int) -> t.ChatRequest:
    """Validate a ChatRequest or StreamChatRequest and convert it."""
    if not len(req.messages):
        raise RequestInvalid("messages", "at least one message is required")
    messages = tuple(
        _message(m, f"messages[{i}]", max_image_bytes) for i, m in enumerate(req.messages)
    )
    # One C call lists the fields that are set; most requests set only a few, so the checks
    # below skip the rest without a HasField per field.
    present = {fd.name: value for fd, value in req.ListFields()}
    max_tokens = present.get("max_tokens")
    if max_tokens is not None and max_tokens < 0:
        raise RequestInvalid("max_tokens", f"must not be negative, got {max_tokens}")
    stop = present.get("stop", ())
    if len(stop) > _MAX_STOP:
        raise RequestInvalid("stop", f"at most {_MAX_STOP} stop sequences")
    sampling = t.Sampling(
        temperature=_optional_float(present, "temperature", 0.0, 2.0),
        top_p=_optional_float(present, "top_p", 0.0, 1.0, low_open=True),
        max_tokens=max_tokens,
        stop=tuple(stop),
        seed=present.get("seed"),
        presence_penalty=_optional_float(present, "presence_penalty", -2.0, 2.0),
        frequency_penalty=_optional_float(present, "frequency_penalty", -2.0, 2.0),
        reasoning_effort=_enum(present.get("reasoning_effort", 0), _EFFORT, "reasoning_effort"),
    )
    tools = _tools(req) if "tools" in present else ()
    return t.ChatRequest(
        messages=messages,
        model=req.model,
        task=_enum(present.get("task", 0), _TASKS, "task"),
        privacy=_enum(present.get("privacy", 0), _PRIVACY, "privacy"),
        tools=tools,
        tool_choice=_tool_choice(req, tools) if "tool_choice" in present else None,
        response_format=_response_format(req) if "response_format" in present else None,
        sampling=sampling,
        cache=_cache(req) if "cache" in present else t.CacheControl(),
        metadata=dict(present["metadata"]) if "metadata" in present else {},
        provider_options=_options(present.get("provider_options")),
    )


def embed_request(req: embed_pb2.EmbedRequest) -> t.EmbedRequest:
    """Validate an EmbedRequest and convert it."""
    if not len(req.inputs):
        raise RequestInvalid("inputs", "at least one input is required")
    for i, text in enumerate(req.inputs):
        if not text:
            raise RequestInvalid(f"inputs[{i}]", "must not be empty")
    dimensions = None
    if req.HasField("dimensions"):
        dimensions = req.dimensions
        if dimensions <= 0:
            raise RequestInvalid("dimensions", f"must be positive, got {dimensions}")
    return t.EmbedRequest(
        inputs=tuple(req.inputs),
        model=req.model,
        privacy=_enum(req.privacy, _PRIVACY, "privacy"),
        dimensions=dimensions,
        metadata=dict(req.metadata),
        provider_options=_options(
            req.provider_options if req.HasField("provider_options") else None
        ),
    )


def _options(struct: struct_pb2.Struct | None) -> dict[str, Any]:
    """``provider_options`` as plain JSON (checked per provider kind after resolution)."""
    return from_json(json_format.MessageToDict(struct)) if struct is not None else {}


def usage_pb(usage: Usage | None) -> common_pb2.Usage:
    """Internal usage to protobuf."""
    if usage is None:
        return common_pb2.Usage()
    return common_pb2.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_tokens=usage.cached_tokens,
        total_tokens=usage.total_tokens,
    )


def _duration(seconds: float) -> Duration:
    nanos = int(seconds * 1e9)
    return Duration(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def attempts_pb(attempts: tuple[AttemptRecord, ...]) -> list[common_pb2.Attempt]:
    """The fallback trace as protobuf."""
    return [
        common_pb2.Attempt(
            provider=a.provider,
            model=a.model,
            outcome=OUTCOME_TO_PB.get(a.outcome, common_pb2.ATTEMPT_OUTCOME_UNSPECIFIED),
            latency=_duration(a.latency_s),
            error=a.error,
            retries=a.retries,
        )
        for a in attempts
    ]


def tool_calls_pb(answer: ChatAnswer) -> list[chat_pb2.ToolCall]:
    """Tool calls of an answer as protobuf."""
    return [
        chat_pb2.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in answer.tool_calls
    ]


def delta_pb(delta: ChatDelta) -> chat_pb2.StreamChatResponse:
    """One streamed delta as a StreamChatResponse."""
    return chat_pb2.StreamChatResponse(
        delta=chat_pb2.ChatDelta(
            content=delta.content,
            reasoning_content=delta.reasoning_content,
            tool_calls=[
                chat_pb2.ToolCallDelta(index=c.index, id=c.id, name=c.name, arguments=c.arguments)
                for c in delta.tool_calls
            ],
        )
    )


def task_filter(value: int) -> t.Task | None:
    """ListModels' optional task filter."""
    return _enum(value, _TASKS, "task")


def check_size(request: Any, max_bytes: int) -> None:
    """Refuse a request over ``server.max_message_bytes`` with INVALID_ARGUMENT naming it."""
    size = request.ByteSize()
    if size > max_bytes:
        raise RequestInvalid(
            "request",
            f"is {size} bytes, over the limit of {max_bytes} (server.max_message_bytes)",
            reason="REQUEST_TOO_LARGE",
        )
