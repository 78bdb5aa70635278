"""Prompt and answer text as gen_ai.input.messages / gen_ai.output.messages (JSON).

Only used when ``telemetry.record_content`` is on. Shapes follow the GenAI conventions'
message schemas: ``{"role", "parts": [{"type": "text", "content"}, ...]}``. Inline image
bytes are never copied into a span; their part names the MIME type and size only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from llm_gateway_server.core.types import ChatAnswer, ImagePart, Message, Role, TextPart


def _image_part(part: ImagePart) -> dict[str, Any]:
    if part.url and not part.url.startswith("data:"):
        return {"type": "uri", "modality": "image", "uri": part.url}
    size = len(part.data) if part.data is not None else len(part.url or "")
    return {"type": "blob", "modality": "image", "mime_type": part.mime_type, "size": size}


def _message(message: Message) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if message.role is Role.TOOL:
        parts.append(
            {"type": "tool_call_response", "id": message.tool_call_id, "response": message.content}
        )
    elif message.content:
        parts.append({"type": "text", "content": message.content})
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "content": part.text})
        else:
            parts.append(_image_part(part))
    parts.extend(
        {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        for call in message.tool_calls
    )
    doc: dict[str, Any] = {"role": message.role.value, "parts": parts}
    if message.name:
        doc["name"] = message.name
    return doc


def input_messages(messages: Sequence[Message]) -> str:
    """The chat history as a gen_ai.input.messages JSON string."""
    return orjson.dumps([_message(m) for m in messages]).decode()


def embedding_inputs(inputs: Sequence[str]) -> str:
    """Embedding inputs as gen_ai.input.messages (one user message per input)."""
    return orjson.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": text}]} for text in inputs]
    ).decode()


def output_messages(answer: ChatAnswer) -> str:
    """An answer as a gen_ai.output.messages JSON string."""
    parts: list[dict[str, Any]] = []
    if answer.reasoning_content:
        parts.append({"type": "reasoning", "content": answer.reasoning_content})
    if answer.content:
        parts.append({"type": "text", "content": answer.content})
    parts.extend(
        {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        for call in answer.tool_calls
    )
    message = {"role": "assistant", "parts": parts, "finish_reason": answer.finish_reason.value}
    return orjson.dumps([message]).decode()
