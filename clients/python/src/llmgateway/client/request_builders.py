"""Request messages built from the helpers' everyday arguments."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from llmgateway.client.openai_shapes import (
    enum_value,
    named,
    set_field,
    to_cache,
    to_message,
    to_response_format,
    to_tool,
    to_tool_choice,
)
from llmgateway.client.options import CALL_OPTIONS, REQUEST_OPTIONS, EnumLike
from llmgateway.v1 import chat_pb2, embed_pb2, models_pb2

#: A conversation turn: a Message, or a mapping such as
#: `{"role": "user", "content": "Hi"}` (openai SDK turns, with content parts
#: and tool calls, or the Message's JSON form).
MessageLike: TypeAlias = chat_pb2.Message | Mapping[str, Any]
#: What `chat()` and `stream()` accept: a user prompt, a conversation, or a
#: whole request (either kind; they have the same fields).
ChatInput: TypeAlias = (
    str | chat_pb2.ChatRequest | chat_pb2.StreamChatRequest | Sequence[MessageLike]
)

# Options whose value is a whole message, built by a converter of its own.
_MESSAGE_OPTIONS: dict[str, Callable[[Any], Message]] = {
    "tool_choice": to_tool_choice,
    "response_format": to_response_format,
    "cache": to_cache,
}


def split_call_options(
    options: Mapping[str, Any],
) -> tuple[dict[str, Any], float | None, str | None]:
    """The request options apart from the call's own `timeout` and `request_id`."""
    request = {k: v for k, v in options.items() if k not in CALL_OPTIONS}
    return request, options.get("timeout"), options.get("request_id")


def build_chat_request(messages: ChatInput, options: Mapping[str, Any]) -> chat_pb2.ChatRequest:
    """A ChatRequest from a prompt or conversation plus RequestOptions.

    Raises:
        TypeError: An unknown option (mypy catches it where the caller is
            type-checked), or a whole request given together with options.
        ValueError: An option's value does not fit its field.
    """
    _check_names(options)
    given = {name: value for name, value in options.items() if value is not None}
    if isinstance(messages, chat_pb2.ChatRequest | chat_pb2.StreamChatRequest):
        if given:
            raise TypeError("pass the options inside the request, not beside it")
        return to_chat_request(messages)
    if isinstance(messages, bytes | Mapping):
        kind = type(messages).__name__
        raise TypeError(f"messages must be a str prompt or a list of turns, not one {kind}")
    request = chat_pb2.ChatRequest(model=given.pop("model", ""))
    system = given.pop("system", None)
    if system is not None:
        request.messages.add(role=chat_pb2.ROLE_SYSTEM, content=system)
    if isinstance(messages, str):
        request.messages.add(role=chat_pb2.ROLE_USER, content=messages)
    else:
        request.messages.extend(
            to_message(message, f"messages[{index}]") for index, message in enumerate(messages)
        )
    for name, convert in _MESSAGE_OPTIONS.items():
        if name in given:
            try:
                getattr(request, name).CopyFrom(convert(given.pop(name)))
            except (TypeError, ValueError) as error:
                raise named(name, error) from None
    tools = given.pop("tools", ())
    request.tools.extend(to_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools))
    stop = given.pop("stop", ())
    request.stop.extend([stop] if isinstance(stop, str) else stop)
    for name, value in given.items():  # Enums, scalars, maps and any other field.
        set_field(request, name, value)
    return request


def _check_names(options: Mapping[str, Any]) -> None:
    for name in options:
        if name == "messages":
            raise TypeError("give the conversation as the first argument, not as messages=")
        if name not in REQUEST_OPTIONS:
            close = difflib.get_close_matches(name, REQUEST_OPTIONS | CALL_OPTIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"unexpected option {name!r}{hint}")


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
    inputs: str | Sequence[str],
    *,
    model: str = "",
    privacy: EnumLike | None = None,
    dimensions: int | None = None,
    metadata: Mapping[str, str] | None = None,
    provider_options: Mapping[str, Any] | None = None,
) -> embed_pb2.EmbedRequest:
    """An EmbedRequest for one text (a str) or a batch of texts.

    `provider_options` are upstream-specific options such as Ollama's
    `keep_alive` (a JSON object).

    Raises:
        TypeError: `inputs` is bytes, not text.
    """
    if isinstance(inputs, bytes):
        raise TypeError("inputs must be a str or a list of str, not bytes")
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    request = embed_pb2.EmbedRequest(model=model, inputs=texts, metadata=metadata or {})
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
    try:
        return enum_value(enum, value)
    except ValueError as error:
        raise named(field, error) from None
