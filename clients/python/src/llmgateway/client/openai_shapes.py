"""Request parts given as the openai SDK spells them, or as the proto's JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from llmgateway.client.options import (
    CacheLike,
    EnumLike,
    ResponseFormatLike,
    ToolChoiceLike,
    ToolLike,
)
from llmgateway.v1 import chat_pb2

_M = TypeVar("_M", bound=Message)

# Messages whose JSON form is not an object of their fields (a Struct is any
# JSON object, a Duration a string such as "60s"): ParseDict takes them as they are.
_WELL_KNOWN = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Duration"}
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


def parse_message(fields: Any, into: _M, where: str) -> _M:
    """A message from its JSON form, with short enum names at any depth.

    Raises:
        ValueError: An unknown field or a bad value, named with `where`.
    """
    descriptor: Descriptor = into.DESCRIPTOR  # type: ignore[assignment]  # upb's own class
    if descriptor.full_name in _WELL_KNOWN:
        # A Struct's or Value's JSON form is any JSON, a Duration's a string: as given.
        resolved = fields
    elif isinstance(fields, Mapping):
        resolved = _short_enums(descriptor, fields)
    else:
        raise ValueError(f"{where}: expected an object, got {type(fields).__name__}")
    try:
        return json_format.ParseDict(resolved, into)
    except json_format.ParseError as error:
        raise ValueError(f"{where}: {error}") from None


def set_field(message: Message, name: str, value: Any) -> None:
    """Set one field from an everyday value: an enum name, a dict for a message, a list, a map.

    Raises:
        ValueError: The value does not fit the field, named in the message.
    """
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]  # upb's own class
    field = descriptor.fields_by_name[name]
    try:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entries = getattr(message, name)
            if field.message_type.fields_by_name["value"].message_type is None:
                entries.update(value)
            else:  # map<string, SomeMessage>: each value from its JSON form.
                for key, item in value.items():
                    parse_message(item, entries[key], f"{name}[{key!r}]")
        elif field.is_repeated:
            getattr(message, name).extend(_resolve(field, list(value)))
        elif field.message_type is not None:
            target = getattr(message, name)
            given = (
                value if isinstance(value, Message) else parse_message(value, type(target)(), name)
            )
            target.CopyFrom(given)
        else:
            setattr(message, name, _resolve(field, value))
    except (TypeError, AttributeError, ValueError) as error:
        raise named(name, error) from None


def named(name: str, error: Exception) -> ValueError:
    """The error as a ValueError whose message starts with the field's name."""
    text = str(error)
    return ValueError(text if text.startswith(name) else f"{name}: {text}")


def _short_enums(message: Descriptor, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form with every enum name resolved to its number, nested ones too."""
    resolved = dict(fields)
    for name, value in fields.items():
        field = message.fields_by_name.get(name)
        if field is None or value is None:
            continue  # ParseDict names the unknown field.
        resolved[name] = _resolve(field, value)
    return resolved


def _resolve(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return value  # map<string, string> only, in this contract.
    if isinstance(value, list | tuple) and field.is_repeated:
        return [_resolve_one(field, item) for item in value]
    return _resolve_one(field, value)


def _resolve_one(field: FieldDescriptor, value: Any) -> Any:
    if field.enum_type is not None and isinstance(value, str | int):
        return enum_value(field.enum_type, value)
    message = field.message_type
    if message is not None and message.full_name not in _WELL_KNOWN:
        if isinstance(value, Message):
            return json_format.MessageToDict(value)
        if isinstance(value, Mapping):
            return _short_enums(message, value)
    return value


def to_message(message: chat_pb2.Message | Mapping[str, Any], where: str) -> chat_pb2.Message:
    """A conversation turn: a Message, or a dict as the openai SDK or the proto spells it.

    OpenAI turns have `content` as a string, None or a list of parts
    (`{"type": "text", ...}`, `{"type": "image_url", ...}`) and assistant
    `tool_calls` as `{"id", "type": "function", "function": {"name", "arguments"}}`.
    """
    if isinstance(message, chat_pb2.Message):
        return message
    if not isinstance(message, Mapping):
        raise TypeError(f"{where}: expected a Message or a dict, got {type(message).__name__}")
    fields = dict(message)
    content = fields.get("content")
    if content is None:
        fields.pop("content", None)
    elif isinstance(content, list):
        fields.pop("content")
        fields["parts"] = [_part(part) for part in content]
    if isinstance(fields.get("tool_calls"), list):
        fields["tool_calls"] = [_tool_call(call) for call in fields["tool_calls"]]
    return parse_message(fields, chat_pb2.Message(), where)


def _part(part: Any) -> Any:
    if not isinstance(part, Mapping) or "type" not in part:
        return part  # Already the proto's form: {"text": ...} or {"image": {...}}.
    kind = part["type"]
    if kind == "text":
        return {"text": part.get("text", "")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return {"image": {"url": url}}
    raise ValueError(f"content part type {kind!r} is not supported; expected text or image_url")


def _tool_call(call: Any) -> Any:
    if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
        function = call["function"]
        return {
            "id": call.get("id", ""),
            "name": function.get("name", ""),
            "arguments": function.get("arguments", ""),
        }
    return call


def to_tool(tool: ToolLike, where: str) -> chat_pb2.Tool:
    """A Tool from an OpenAI-shaped dict, the Tool's JSON form or a Tool."""
    if isinstance(tool, chat_pb2.Tool):
        return tool
    if not isinstance(tool, Mapping):
        raise TypeError(f"{where}: expected a Tool or a dict, got {type(tool).__name__}")
    fields = dict(tool)
    if "function" in fields:
        kind = fields.pop("type", "function")
        if kind != "function":
            raise ValueError(f"{where}.type: {kind!r} is not supported; expected 'function'")
        function = fields.pop("function")
        if not isinstance(function, Mapping):
            raise ValueError(f"{where}.function: expected an object")
        fields = {**fields, **function}
    return parse_message(fields, chat_pb2.Tool(), where)


def to_tool_choice(choice: ToolChoiceLike) -> chat_pb2.ToolChoice:
    """A ToolChoice from a mode name, an OpenAI-shaped dict or the proto's JSON form."""
    if isinstance(choice, chat_pb2.ToolChoice):
        return choice
    if isinstance(choice, str):
        mode = enum_value(chat_pb2.ToolChoiceMode.DESCRIPTOR, choice)
        return chat_pb2.ToolChoice(mode=chat_pb2.ToolChoiceMode.ValueType(mode))
    function = choice.get("function")
    if isinstance(function, Mapping):
        return chat_pb2.ToolChoice(function_name=str(function.get("name", "")))
    return parse_message(choice, chat_pb2.ToolChoice(), "tool_choice")


def to_response_format(value: ResponseFormatLike) -> chat_pb2.ResponseFormat:
    """A ResponseFormat from a type name, an OpenAI-shaped dict or the proto's JSON form.

    The openai SDK nests the schema: `json_schema={"name", "schema", "strict"}`;
    the proto has `json_schema` (the schema itself), `schema_name` and `strict`.
    `schema` is no JSON Schema keyword, so its presence tells the two apart.
    """
    if isinstance(value, chat_pb2.ResponseFormat):
        return value
    if isinstance(value, str):
        kind = enum_value(chat_pb2.ResponseFormatType.DESCRIPTOR, value)
        return chat_pb2.ResponseFormat(type=chat_pb2.ResponseFormatType.ValueType(kind))
    fields = dict(value)
    nested = fields.get("json_schema")
    if isinstance(nested, Mapping) and "schema" in nested:
        fields["json_schema"] = nested["schema"]
        if "name" in nested:
            fields.setdefault("schema_name", nested["name"])
        if "strict" in nested:
            fields.setdefault("strict", nested["strict"])
    return parse_message(fields, chat_pb2.ResponseFormat(), "response_format")


def to_cache(value: CacheLike) -> chat_pb2.CacheControl:
    """A CacheControl from a mode name, the proto's JSON form or a CacheControl."""
    if isinstance(value, chat_pb2.CacheControl):
        return value
    if isinstance(value, str):
        value = {"mode": value}
    return parse_message(value, chat_pb2.CacheControl(), "cache")
