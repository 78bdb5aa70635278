"""Request messages built from the helpers' everyday arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor

from llmgateway.v1 import chat_pb2, embed_pb2, models_pb2

#: An enum given as its number, its full name (`PRIVACY_STRICT`) or its short
#: name in any case (`strict`).
EnumLike: TypeAlias = str | int
#: A conversation turn: a Message, or a mapping such as
#: `{"role": "user", "content": "Hi"}` (other keys as in the Message's JSON form).
MessageLike: TypeAlias = chat_pb2.Message | Mapping[str, Any]
#: What `chat()` and `stream()` accept: a user prompt, a conversation, or a
#: whole request (either kind; they have the same fields).
ChatInput: TypeAlias = (
    str | chat_pb2.ChatRequest | chat_pb2.StreamChatRequest | Sequence[MessageLike]
)


def enum_value(enum: EnumDescriptor, value: EnumLike) -> int:
    """Resolve an enum given as a number, full name or short name to its number.

    Raises:
        ValueError: The value names no member of the enum.
    """
    if isinstance(value, bool):
        raise TypeError(f"{enum.name} expects a name or number, got a bool")
    if isinstance(value, int):
        if value not in enum.values_by_number:
            raise ValueError(f"{value} is not a {enum.name} value")
        return value
    # The zero value is X_UNSPECIFIED by the proto's convention, so its name
    # gives the prefix that short names leave out.
    prefix = enum.values_by_number[0].name.removesuffix("UNSPECIFIED")
    name = value.strip().upper().replace("-", "_")
    member = enum.values_by_name.get(name) or enum.values_by_name.get(prefix + name)
    if member is None:
        choices = ", ".join(v.name.removeprefix(prefix).lower() for v in enum.values if v.number)
        raise ValueError(f"{value!r} is not a {enum.name}; expected one of: {choices}")
    return int(member.number)


def to_message(message: MessageLike) -> chat_pb2.Message:
    """A conversation turn as a Message; a mapping's `role` may be a short name."""
    if isinstance(message, chat_pb2.Message):
        return message
    fields = dict(message)
    role = fields.pop("role", None)
    built = json_format.ParseDict(fields, chat_pb2.Message())
    if role is not None:
        built.role = chat_pb2.Role.ValueType(enum_value(chat_pb2.Role.DESCRIPTOR, role))
    return built


def build_chat_request(
    messages: ChatInput,
    *,
    model: str = "",
    system: str | None = None,
    privacy: EnumLike | None = None,
    task: EnumLike | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    fields: Mapping[str, Any] | None = None,
) -> chat_pb2.ChatRequest:
    """A ChatRequest from a prompt or conversation plus options.

    `fields` sets any other ChatRequest field by name (`top_p`, `stop`, `tools`,
    `reasoning_effort`, `cache`, `metadata`...); top-level enum fields may be
    short names such as `"high"`, nested messages may be dicts.

    Raises:
        TypeError: A whole request was given together with options.
        ValueError: An enum option names no member of its enum.
    """
    if isinstance(messages, chat_pb2.ChatRequest | chat_pb2.StreamChatRequest):
        given = [model, system, privacy, task, temperature, max_tokens, fields]
        if any(option not in (None, "", {}) for option in given):
            raise TypeError("pass the options inside the request, not beside it")
        return to_chat_request(messages)
    if fields and "messages" in fields:
        raise TypeError("give the conversation as the first argument, not as messages=")
    request = chat_pb2.ChatRequest(**_coerce_enums(chat_pb2.ChatRequest.DESCRIPTOR, fields or {}))
    request.model = model or request.model
    if system is not None:
        request.messages.add(role=chat_pb2.ROLE_SYSTEM, content=system)
    if isinstance(messages, str):
        request.messages.add(role=chat_pb2.ROLE_USER, content=messages)
    else:
        request.messages.extend(to_message(message) for message in messages)
    if privacy is not None:
        request.privacy = _enum_of(chat_pb2.ChatRequest.DESCRIPTOR, "privacy", privacy)
    if task is not None:
        request.task = _enum_of(chat_pb2.ChatRequest.DESCRIPTOR, "task", task)
    if temperature is not None:
        request.temperature = temperature
    if max_tokens is not None:
        request.max_tokens = max_tokens
    return request


def to_stream_request(
    request: chat_pb2.ChatRequest | chat_pb2.StreamChatRequest,
) -> chat_pb2.StreamChatRequest:
    """The StreamChatRequest with the same fields as a ChatRequest.

    The two messages have the same field numbers and types by contract
    (tests/proto checks it), so the wire bytes carry over unchanged.
    """
    if isinstance(request, chat_pb2.StreamChatRequest):
        return request
    return chat_pb2.StreamChatRequest.FromString(request.SerializeToString())


def to_chat_request(
    request: chat_pb2.ChatRequest | chat_pb2.StreamChatRequest,
) -> chat_pb2.ChatRequest:
    """The ChatRequest with the same fields as a StreamChatRequest."""
    if isinstance(request, chat_pb2.ChatRequest):
        return request
    return chat_pb2.ChatRequest.FromString(request.SerializeToString())


def build_embed_request(
    inputs: Sequence[str],
    *,
    model: str = "",
    privacy: EnumLike | None = None,
    dimensions: int | None = None,
    metadata: Mapping[str, str] | None = None,
    provider_options: Mapping[str, Any] | None = None,
) -> embed_pb2.EmbedRequest:
    """An EmbedRequest for a batch of texts.

    `provider_options` are upstream-specific options such as Ollama's
    `keep_alive` (a JSON object).

    Raises:
        TypeError: `inputs` is a single string (a list of one is meant).
    """
    if isinstance(inputs, str | bytes):
        raise TypeError("inputs must be a list of strings, not one string")
    request = embed_pb2.EmbedRequest(model=model, inputs=list(inputs), metadata=metadata or {})
    if privacy is not None:
        request.privacy = _enum_of(embed_pb2.EmbedRequest.DESCRIPTOR, "privacy", privacy)
    if dimensions is not None:
        request.dimensions = dimensions
    if provider_options:
        request.provider_options.update(dict(provider_options))
    return request


def list_models_request(task: EnumLike | None) -> models_pb2.ListModelsRequest:
    """A ListModelsRequest, for all tasks or one."""
    request = models_pb2.ListModelsRequest()
    if task is not None:
        request.task = _enum_of(models_pb2.ListModelsRequest.DESCRIPTOR, "task", task)
    return request


def _enum_of(message: Descriptor, field: str, value: EnumLike) -> Any:
    # Any: the generated setters want their enum's NewType, which is an int.
    enum = message.fields_by_name[field].enum_type
    assert enum is not None, f"{message.name}.{field} is not an enum field"
    return enum_value(enum, value)


def _coerce_enums(message: Descriptor, fields: Mapping[str, Any]) -> dict[str, Any]:
    coerced = dict(fields)
    for name, value in fields.items():
        field = message.fields_by_name.get(name)
        if field is not None and field.enum_type is not None and value is not None:
            coerced[name] = enum_value(field.enum_type, value)
    return coerced
