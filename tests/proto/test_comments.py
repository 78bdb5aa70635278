"""Every message, field, oneof, enum, enum value, service and RPC of the contract is documented.

The comments are the public API's documentation (`grpcurl describe`, the
generated docstrings), so a declaration without one fails here. Source
positions come from protoc's `--include_source_info` descriptor set.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc  # type: ignore[import-untyped]

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
CONTRACT_DIR = PROTO_ROOT / "llmgateway" / "v1"

# Field numbers of the descriptor.proto messages, which SourceCodeInfo paths use.
FILE_MESSAGES, FILE_ENUMS, FILE_SERVICES = 4, 5, 6
MESSAGE_FIELDS, MESSAGE_NESTED, MESSAGE_ENUMS, MESSAGE_ONEOFS = 2, 3, 4, 8
ENUM_VALUES, SERVICE_METHODS = 2, 2

#: Field comments open with one of these (STYLE.md; AIP-203 field behaviour).
FIELD_BEHAVIOURS = ("Required.", "Optional.", "Output only.")

Path_ = tuple[int, ...]


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path_factory.mktemp("descriptors") / "contract.binpb"
    well_known = resources.files("grpc_tools") / "_proto"
    protos = sorted(str(path.relative_to(PROTO_ROOT)) for path in CONTRACT_DIR.glob("*.proto"))
    assert protos, f"no .proto files in {CONTRACT_DIR}"
    status = protoc.main(
        [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *protos,
        ]
    )
    assert status == 0, "protoc failed on the contract"
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _declarations(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[str, str, Path_]]:
    """(kind, full name, source path) of every declaration in the file."""
    for index, message in enumerate(file.message_type):
        yield from _message_declarations(
            message, f"{file.package}.{message.name}", (FILE_MESSAGES, index)
        )
    for index, enum in enumerate(file.enum_type):
        yield from _enum_declarations(enum, f"{file.package}.{enum.name}", (FILE_ENUMS, index))
    for index, service in enumerate(file.service):
        name = f"{file.package}.{service.name}"
        yield "service", name, (FILE_SERVICES, index)
        for method_index, method in enumerate(service.method):
            path = (FILE_SERVICES, index, SERVICE_METHODS, method_index)
            yield "rpc", f"{name}.{method.name}", path


def _message_declarations(
    message: descriptor_pb2.DescriptorProto, name: str, path: Path_
) -> Iterator[tuple[str, str, Path_]]:
    if message.options.map_entry:
        return  # Synthesized by protoc for a map field; nothing to document.
    yield "message", name, path
    synthetic = {field.oneof_index for field in message.field if field.proto3_optional}
    for index, field in enumerate(message.field):
        yield "field", f"{name}.{field.name}", (*path, MESSAGE_FIELDS, index)
    for index, oneof in enumerate(message.oneof_decl):
        if index not in synthetic:
            yield "oneof", f"{name}.{oneof.name}", (*path, MESSAGE_ONEOFS, index)
    for index, nested in enumerate(message.nested_type):
        yield from _message_declarations(
            nested, f"{name}.{nested.name}", (*path, MESSAGE_NESTED, index)
        )
    for index, enum in enumerate(message.enum_type):
        yield from _enum_declarations(enum, f"{name}.{enum.name}", (*path, MESSAGE_ENUMS, index))


def _enum_declarations(
    enum: descriptor_pb2.EnumDescriptorProto, name: str, path: Path_
) -> Iterator[tuple[str, str, Path_]]:
    yield "enum", name, path
    for index, value in enumerate(enum.value):
        yield "enum value", f"{name}.{value.name}", (*path, ENUM_VALUES, index)


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[Path_, str]:
    return {
        tuple(location.path): location.leading_comments.strip()
        for location in file.source_code_info.location
    }


def _contract(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> list[descriptor_pb2.FileDescriptorProto]:
    files = [file for file in descriptor_set.file if file.name.startswith("llmgateway/v1/")]
    assert len(files) == len(list(CONTRACT_DIR.glob("*.proto")))
    return files


def test_every_declaration_has_a_leading_comment(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    missing = []
    count = 0
    for file in _contract(descriptor_set):
        comments = _comments(file)
        for kind, name, path in _declarations(file):
            count += 1
            if not comments.get(path):
                missing.append(f"{file.name}: {kind} {name}")
    assert count > 200, "the walk found too few declarations to be checking anything"
    assert missing == [], "undocumented:\n" + "\n".join(missing)


def test_field_comments_state_the_field_behaviour(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    """Fields outside a oneof say Required., Optional. or Output only. first.

    Members of a real oneof are exempt: the oneof's own comment says it.
    """
    wrong = []
    for file in _contract(descriptor_set):
        comments = _comments(file)
        for kind, name, path in _declarations(file):
            if kind != "field" or _in_real_oneof(file, path):
                continue
            if not comments.get(path, "").startswith(FIELD_BEHAVIOURS):
                wrong.append(f"{file.name}: {name}: {comments.get(path, '')[:40]!r}")
    assert wrong == [], "field comments without a behaviour:\n" + "\n".join(wrong)


def _in_real_oneof(file: descriptor_pb2.FileDescriptorProto, path: Path_) -> bool:
    """Whether the field at `path` is a member of a (non-synthetic) oneof."""
    message: descriptor_pb2.DescriptorProto = file.message_type[path[1]]
    rest = path[2:]
    while rest[0] == MESSAGE_NESTED:
        message = message.nested_type[rest[1]]
        rest = rest[2:]
    field = message.field[rest[1]]
    return field.HasField("oneof_index") and not field.proto3_optional
