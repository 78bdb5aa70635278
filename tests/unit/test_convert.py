"""Protobuf -> internal conversion keeps what the caller set, and only that."""

from __future__ import annotations

from google.protobuf import struct_pb2

from llm_gateway_server.core.types import CacheMode, Privacy, Role, Task
from llm_gateway_server.transport.grpc.convert import chat_request
from llmgateway.v1 import chat_pb2, common_pb2


def _user() -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")


def test_unset_sampling_stays_unset_and_explicit_zero_is_kept() -> None:
    unset = chat_request(chat_pb2.ChatRequest(messages=[_user()]), max_image_bytes=10)
    assert (unset.sampling.temperature, unset.sampling.max_tokens, unset.sampling.seed) == (
        None,
        None,
        None,
    )
    assert unset.task is None
    assert unset.metadata == {}
    zero = chat_request(
        chat_pb2.ChatRequest(messages=[_user()], temperature=0, max_tokens=0, seed=0, top_p=1),
        max_image_bytes=10,
    )
    assert (zero.sampling.temperature, zero.sampling.max_tokens, zero.sampling.seed) == (0.0, 0, 0)
    assert zero.sampling.top_p == 1.0


def test_every_routing_and_tool_field_is_converted() -> None:
    params = struct_pb2.Struct()
    params.update({"type": "object", "properties": {"q": {"type": "string"}}})
    request = chat_pb2.ChatRequest(
        model="chat",
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="be brief"), _user()],
        task=common_pb2.TASK_VISION,
        privacy=common_pb2.PRIVACY_FLEXIBLE,
        tools=[chat_pb2.Tool(name="lookup", description="d", parameters=params)],
        tool_choice=chat_pb2.ToolChoice(function_name="lookup"),
        stop=["\n\n"],
        cache=chat_pb2.CacheControl(mode=chat_pb2.CACHE_MODE_ENABLED),
        metadata={"module": "rag"},
    )
    converted = chat_request(request, max_image_bytes=10)
    assert [m.role for m in converted.messages] == [Role.SYSTEM, Role.USER]
    assert (converted.task, converted.privacy) == (Task.VISION, Privacy.FLEXIBLE)
    assert converted.tools[0].parameters == {
        "type": "object",
        "properties": {"q": {"type": "string"}},
    }
    assert converted.tool_choice is not None
    assert converted.tool_choice.function_name == "lookup"
    assert converted.sampling.stop == ("\n\n",)
    assert converted.cache.mode is CacheMode.ENABLED
    assert converted.metadata == {"module": "rag"}
