"""Every message of the llmgateway.v1 contract, and instances with every field set."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

from google.protobuf import descriptor_pb2, duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor, OneofDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import llmgateway.v1

PACKAGE = "llmgateway.v1"


def contract_files() -> list[FileDescriptor]:
    """The file descriptors of every generated `*_pb2` module of the package."""
    files = []
    for module in pkgutil.iter_modules(llmgateway.v1.__path__):
        if module.name.endswith("_pb2"):
            files.append(importlib.import_module(f"{PACKAGE}.{module.name}").DESCRIPTOR)
    return files


def contract_messages() -> list[Descriptor]:
    """Every message declared in the contract, nested ones included (map entries not)."""

    def walk(descriptors: Iterator[Descriptor]) -> Iterator[Descriptor]:
        for descriptor in descriptors:
            if descriptor.GetOptions().map_entry:
                continue
            yield descriptor
            yield from walk(iter(descriptor.nested_types))

    found: list[Descriptor] = []
    for file in contract_files():
        found.extend(walk(iter(file.message_types_by_name.values())))
    return sorted(found, key=lambda descriptor: descriptor.full_name)


def real_oneofs(descriptor: Descriptor) -> list[OneofDescriptor]:
    """The message's oneofs, without the synthetic ones of proto3 `optional` fields."""
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    synthetic = {field.oneof_index for field in proto.field if field.proto3_optional}
    return [oneof for oneof in descriptor.oneofs if oneof.index not in synthetic]


def variant_count(descriptor: Descriptor) -> int:
    """How many instances it takes to set every member of every oneof once."""
    return max((len(oneof.fields) for oneof in real_oneofs(descriptor)), default=1)


def populated(descriptor: Descriptor, variant: int = 0, depth: int = 0) -> Message:
    """An instance with every field set to a non-default value.

    In each oneof only one member can be set: the `variant`-th (cycling).
    """
    message = GetMessageClass(descriptor)()
    chosen = {oneof.fields[variant % len(oneof.fields)].name for oneof in real_oneofs(descriptor)}
    in_oneof = {field.name for oneof in real_oneofs(descriptor) for field in oneof.fields}
    for field in descriptor.fields:
        if field.name in in_oneof and field.name not in chosen:
            continue
        _set_field(message, field, depth)
    return message


def _set_field(message: Message, field: FieldDescriptor, depth: int) -> None:
    target = getattr(message, field.name)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        for index in range(2):
            key = _scalar(key_field, index)
            if value_field.message_type is not None:
                target[key].CopyFrom(_message_value(value_field, index, depth))
            else:
                target[key] = _scalar(value_field, index)
    elif field.is_repeated:
        for index in range(2):
            if field.message_type is not None:
                target.add().CopyFrom(_message_value(field, index, depth))
            else:
                target.append(_scalar(field, index))
    elif field.message_type is not None:
        target.CopyFrom(_message_value(field, 0, depth))
    else:
        setattr(message, field.name, _scalar(field, 0))


def _message_value(field: FieldDescriptor, index: int, depth: int) -> Message:
    assert field.message_type is not None
    name = field.message_type.full_name
    if name == "google.protobuf.Duration":
        return duration_pb2.Duration(seconds=3 + index, nanos=250_000_000)
    if name == "google.protobuf.Timestamp":
        return timestamp_pb2.Timestamp(seconds=1_700_000_000 + index, nanos=500_000_000)
    if name == "google.protobuf.Struct":
        value = struct_pb2.Struct()
        value.update({"type": "object", "n": 1.5, "ok": True, "list": [1, "x"], "none": None})
        return value
    assert name.startswith(PACKAGE + "."), f"no sample value for {name}"
    assert depth < 5, f"{name} nests too deep for the sample builder"
    return populated(field.message_type, index, depth + 1)


def _scalar(field: FieldDescriptor, index: int) -> Any:
    """A non-default value of the field's type that survives JSON exactly."""
    kind = field.type
    if field.enum_type is not None:
        numbers = [value.number for value in field.enum_type.values if value.number]
        return numbers[index % len(numbers)]
    if kind == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{index}"
    if kind == FieldDescriptor.TYPE_BYTES:
        return bytes([0, 255, index]) + field.name.encode()
    if kind == FieldDescriptor.TYPE_BOOL:
        return True
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        # Binary fractions: exact in float32 and through JSON text.
        return 0.75 + index
    # Every integer kind; large enough that 64-bit ones go through JSON as strings.
    wide = kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64)
    return (2**40 if wide else 1000) + field.number * 10 + index
