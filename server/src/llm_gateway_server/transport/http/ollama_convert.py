"""Ollama wire <-> the core's types: requests in; chat, generate and embed answers out."""

from __future__ import annotations

import base64
import binascii
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson

from llm_gateway_server.core import types as t
from llm_gateway_server.core.errors import RequestInvalid
from llm_gateway_server.transport.http import ollama_models as m

_ROLES = {
    "system": t.Role.SYSTEM,
    "user": t.Role.USER,
    "assistant": t.Role.ASSISTANT,
    "tool": t.Role.TOOL,
}
_EFFORT = {
    "low": t.ReasoningEffort.LOW,
    "medium": t.ReasoningEffort.MEDIUM,
    "high": t.ReasoningEffort.HIGH,
}
#: Ollama's done_reason is stop or length (tool calls end with stop, as Ollama reports them).
DONE_REASON = {
    t.FinishReason.LENGTH: "length",
    t.FinishReason.REASONING_ONLY: "length",
}
_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)
#: Options the core's Sampling carries; everything else goes to :func:`provider_options`.
_SAMPLING = frozenset(
    {"temperature", "top_p", "num_predict", "seed", "stop", "presence_penalty", "frequency_penalty"}
)


def _mime(data: bytes) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return "image/jpeg"  # Ollama guesses the same way; JPEG is the common unlabelled case


def images(encoded: list[str] | None, field: str, max_image_bytes: int) -> tuple[t.Part, ...]:
    """Ollama's base64 images as inline image parts, each bounded by max_image_bytes."""
    parts: list[t.Part] = []
    for i, text in enumerate(encoded or ()):
        if len(text) * 3 // 4 > max_image_bytes:
            raise RequestInvalid(
                f"{field}[{i}]",
                f"image is over the limit of {max_image_bytes} bytes (server.max_image_bytes)",
                reason="REQUEST_TOO_LARGE",
            )
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise RequestInvalid(f"{field}[{i}]", "is not base64") from None
        parts.append(t.ImagePart(data=data, mime_type=_mime(data)))
    return tuple(parts)


def _with_images(role: t.Role, text: str, parts: tuple[t.Part, ...], **kw: Any) -> t.Message:
    if not parts:
        return t.Message(role, text, **kw)
    return t.Message(role, "", ((t.TextPart(text),) if text else ()) + parts, **kw)


def _messages(req: m.ChatRequest, max_image_bytes: int) -> tuple[t.Message, ...]:
    # Ollama's tool calls carry no ids; the core's wire (OpenAI) pairs a tool result with
    # its call by id. Ids are made up per call and handed to the tool results in order.
    pending: deque[str] = deque()
    out = []
    for i, msg in enumerate(req.messages):
        field = f"messages[{i}]"
        role = _ROLES[msg.role]
        calls = tuple(
            t.ToolCall(
                f"call_{i}_{j}", c.function.name, orjson.dumps(c.function.arguments).decode()
            )
            for j, c in enumerate(msg.tool_calls or ())
        )
        if calls:
            pending = deque(c.id for c in calls)
        call_id = ""
        if role is t.Role.TOOL:
            call_id = pending.popleft() if pending else f"call_{i}"
        parts = images(msg.images, f"{field}.images", max_image_bytes)
        out.append(
            _with_images(
                role,
                msg.content,
                parts,
                name=msg.tool_name or "",
                tool_call_id=call_id,
                tool_calls=calls,
            )
        )
    return tuple(out)


def _response_format(fmt: m.Format | None) -> t.ResponseFormat | None:
    if not fmt:
        return None
    if fmt == "json":
        return t.ResponseFormat(t.ResponseFormatType.JSON_OBJECT)
    assert isinstance(fmt, dict)
    return t.ResponseFormat(t.ResponseFormatType.JSON_SCHEMA, fmt, "response")


def _sampling(req: m.ChatRequest | m.GenerateRequest) -> t.Sampling:
    o = req.options or m.Options()
    if len(o.stop or ()) > 4:
        raise RequestInvalid("options.stop", "at most 4 stop sequences")
    effort = _EFFORT.get(req.think) if isinstance(req.think, str) else None
    if req.think is False:
        effort = t.ReasoningEffort.NONE
    return t.Sampling(
        temperature=o.temperature,
        top_p=o.top_p,
        max_tokens=o.num_predict if o.num_predict is not None and o.num_predict >= 0 else None,
        stop=tuple(o.stop or ()),
        seed=o.seed,
        presence_penalty=o.presence_penalty,
        frequency_penalty=o.frequency_penalty,
        reasoning_effort=effort,
    )


def provider_options(req: m.ChatRequest | m.GenerateRequest | m.EmbedRequest) -> dict[str, Any]:
    """``options`` the core's Sampling does not carry (``num_ctx``, ``top_k``, ...).

    They travel as the request's ``provider_options``, not strict: targets whose kind takes
    them get them, the others go without, as Ollama ignores options a model lacks.
    ``think: false`` is ``ReasoningEffort.NONE`` (see ``_sampling``); ``keep_alive`` is
    accepted and not passed on: the gateway, not each caller, decides how long upstream
    models stay loaded.
    """
    options = req.options.model_dump(exclude_none=True) if req.options else {}
    return {k: v for k, v in options.items() if k not in _SAMPLING}


def chat_request(req: m.ChatRequest, *, max_image_bytes: int) -> t.ChatRequest:
    """The core's ChatRequest for ``/api/chat``."""
    if not req.messages:
        raise RequestInvalid("messages", "at least one message is required")
    tools = tuple(
        t.Tool(x.function.name, x.function.description or "", x.function.parameters)
        for x in req.tools or ()
    )
    return t.ChatRequest(
        messages=_messages(req, max_image_bytes),
        model=req.model,
        tools=tools,
        response_format=_response_format(req.format),
        sampling=_sampling(req),
        provider_options=provider_options(req),
        provider_options_strict=False,
    )


def generate_request(req: m.GenerateRequest, *, max_image_bytes: int) -> t.ChatRequest:
    """``/api/generate`` as a chat: the system prompt, then the prompt with its images."""
    messages = []
    if req.system:
        messages.append(t.Message(t.Role.SYSTEM, req.system))
    parts = images(req.images, "images", max_image_bytes)
    messages.append(_with_images(t.Role.USER, req.prompt, parts))
    return t.ChatRequest(
        messages=tuple(messages),
        model=req.model,
        response_format=_response_format(req.format),
        sampling=_sampling(req),
        provider_options=provider_options(req),
        provider_options_strict=False,
    )


def embed_inputs(value: str | list[str], field: str) -> tuple[str, ...]:
    """The inputs of ``/api/embed`` (one string or a list), none empty."""
    inputs = [value] if isinstance(value, str) else value
    if not inputs:
        raise RequestInvalid(field, "at least one input is required")
    for i, text in enumerate(inputs):
        if not text:
            raise RequestInvalid(
                f"{field}[{i}]" if isinstance(value, list) else field, "must not be empty"
            )
    return tuple(inputs)


def created_at() -> str:
    """Now, as Ollama writes it (RFC 3339, UTC)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        value = None
    # Ollama's arguments are an object; text that is not one is kept whole, never dropped.
    return value if isinstance(value, dict) else {"arguments": raw}


def tool_calls(calls: tuple[t.ToolCall, ...]) -> list[dict[str, Any]]:
    """Tool calls as Ollama writes them (arguments as an object)."""
    return [{"function": {"name": c.name, "arguments": _arguments(c.arguments)}} for c in calls]


class Timer:
    """The durations Ollama reports, in nanoseconds, measured from the request's arrival."""

    def __init__(self) -> None:
        self._start = time.perf_counter_ns()
        self._first: int | None = None

    def first_token(self) -> None:
        """The first delta arrived (ends the prompt evaluation, as far as the caller sees)."""
        if self._first is None:
            self._first = time.perf_counter_ns()

    def durations(self, usage: t.Usage) -> dict[str, Any]:
        """``total_duration`` and friends, with the token counts."""
        now = time.perf_counter_ns()
        first = self._first if self._first is not None else now
        return {
            "total_duration": now - self._start,
            "load_duration": 0,
            "prompt_eval_count": usage.prompt_tokens,
            "prompt_eval_duration": first - self._start,
            "eval_count": usage.completion_tokens,
            "eval_duration": now - first,
        }


def done_reason(finish: t.FinishReason) -> str:
    """Ollama's done_reason for a finish reason."""
    return DONE_REASON.get(finish, "stop")
