"""Every llmgateway.v1 message round-trips, binary and JSON, with every field set."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from .messages import contract_messages, populated, real_oneofs, variant_count

MESSAGES = contract_messages()
CASES = [
    pytest.param(descriptor, variant, id=f"{descriptor.full_name}#{variant}")
    for descriptor in MESSAGES
    for variant in range(variant_count(descriptor))
]


def _unset_fields(message: Message, descriptor: Descriptor) -> list[str]:
    """Fields left at their default, members of oneofs not chosen aside."""
    chosen = {message.WhichOneof(oneof.name) for oneof in real_oneofs(descriptor)}
    in_oneof = {field.name for oneof in real_oneofs(descriptor) for field in oneof.fields}
    set_names = {field.name for field, _ in message.ListFields()}
    return [
        field.name
        for field in descriptor.fields
        if field.name not in set_names and (field.name not in in_oneof or field.name in chosen)
    ]


def test_the_contract_has_messages() -> None:
    names = {descriptor.full_name for descriptor in MESSAGES}
    # Anchors: one message per file; a missing file would silently shrink the test.
    assert {
        "llmgateway.v1.ChatRequest",
        "llmgateway.v1.EmbedRequest",
        "llmgateway.v1.HealthResponse",
        "llmgateway.v1.GetStatsResponse",
        "llmgateway.v1.Attempt",
    } <= names


@pytest.mark.parametrize(("descriptor", "variant"), CASES)
def test_binary_round_trip(descriptor: Descriptor, variant: int) -> None:
    message = populated(descriptor, variant)
    assert _unset_fields(message, descriptor) == []
    wire = message.SerializeToString(deterministic=True)
    decoded = type(message).FromString(wire)
    assert decoded == message
    assert decoded.SerializeToString(deterministic=True) == wire


@pytest.mark.parametrize(("descriptor", "variant"), CASES)
@pytest.mark.parametrize("proto_names", [False, True], ids=["json_names", "proto_names"])
def test_json_round_trip(descriptor: Descriptor, variant: int, proto_names: bool) -> None:
    message = populated(descriptor, variant)
    text = json_format.MessageToJson(message, preserving_proto_field_name=proto_names)
    decoded = json_format.Parse(text, type(message)())
    assert decoded == message


def test_every_oneof_member_is_covered() -> None:
    for descriptor in MESSAGES:
        for oneof in real_oneofs(descriptor):
            covered = {
                populated(descriptor, variant).WhichOneof(oneof.name)
                for variant in range(variant_count(descriptor))
            }
            assert covered == {field.name for field in oneof.fields}, oneof.full_name


OPTIONAL_FIELDS = [
    pytest.param(descriptor, oneof.fields[0].name, id=oneof.fields[0].full_name)
    for descriptor in MESSAGES
    for oneof in descriptor.oneofs
    if oneof not in real_oneofs(descriptor)
]


@pytest.mark.parametrize(("descriptor", "name"), OPTIONAL_FIELDS)
def test_optional_zero_stays_set(descriptor: Descriptor, name: str) -> None:
    """`optional` fields exist so that 0 differs from unset; both encodings keep that."""
    message_class = GetMessageClass(descriptor)
    assert not message_class().HasField(name)
    message = message_class()
    setattr(message, name, descriptor.fields_by_name[name].default_value)
    for decoded in (
        message_class.FromString(message.SerializeToString()),
        json_format.Parse(json_format.MessageToJson(message), message_class()),
    ):
        assert decoded.HasField(name)
