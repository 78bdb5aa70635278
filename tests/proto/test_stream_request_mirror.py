"""StreamChatRequest mirrors ChatRequest field for field, as its comment promises.

The client builds one ChatRequest and re-reads its bytes as a
StreamChatRequest; that is safe only while the two stay wire-identical.
"""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.unknown_fields import UnknownFieldSet

from llmgateway.v1 import chat_pb2

from .messages import populated


def _shape(field: FieldDescriptor) -> tuple[object, ...]:
    """What decides a field's wire format and meaning, map entries by their key and value."""
    nested: object = None
    if field.message_type is not None:
        entry = field.message_type
        if entry.GetOptions().map_entry:
            nested = tuple(_shape(entry.fields_by_name[name]) for name in ("key", "value"))
        else:
            nested = entry.full_name
    elif field.enum_type is not None:
        nested = field.enum_type.full_name
    return (field.name, field.number, field.type, field.is_repeated, field.has_presence, nested)


def _shapes(descriptor: Descriptor) -> list[tuple[object, ...]]:
    return sorted((_shape(field) for field in descriptor.fields), key=lambda shape: str(shape[1]))


def test_stream_chat_request_has_chat_requests_fields() -> None:
    assert _shapes(chat_pb2.StreamChatRequest.DESCRIPTOR) == _shapes(
        chat_pb2.ChatRequest.DESCRIPTOR
    )


def test_a_full_chat_request_reads_back_as_a_stream_request() -> None:
    request = populated(chat_pb2.ChatRequest.DESCRIPTOR)
    streamed = chat_pb2.StreamChatRequest.FromString(request.SerializeToString())
    assert streamed.SerializeToString(deterministic=True) == request.SerializeToString(
        deterministic=True
    )
    # Every field was understood, none carried along as unknown bytes.
    assert len(UnknownFieldSet(streamed)) == 0
    assert json_format.MessageToDict(streamed) == json_format.MessageToDict(request)
