"""Typed options, OpenAI-shaped request parts and readable answers, through the shipped fake."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from llmgateway.client import ChatOptions, FinishReason, GatewayClient, GatewayError
from llmgateway.client.channel import DEFAULT_TIMEOUT_S
from llmgateway.testing import FakeGateway
from llmgateway.v1 import chat_pb2

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    },
}
PERSON_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
        "strict": True,
    },
}


def test_openai_shaped_tools_tool_choice_and_response_format(
    fake: FakeGateway, threaded_target: str
) -> None:
    with GatewayClient(threaded_target) as client:
        client.chat(
            "Weather in Paris?",
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            response_format=PERSON_FORMAT,
        )
        client.chat("Again", tools=[WEATHER_TOOL], tool_choice="required")
    sent: chat_pb2.ChatRequest = fake.calls[0].request
    (tool,) = sent.tools
    assert (tool.name, tool.description, tool.strict) == (
        "get_weather",
        "The weather in a city.",
        True,
    )
    assert json_format.MessageToDict(tool.parameters) == WEATHER_TOOL["function"]["parameters"]
    assert sent.tool_choice.function_name == "get_weather"
    assert sent.response_format.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert sent.response_format.schema_name == "person"
    assert sent.response_format.strict
    assert json_format.MessageToDict(sent.response_format.json_schema) == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
    }
    assert fake.calls[1].request.tool_choice.mode == chat_pb2.TOOL_CHOICE_MODE_REQUIRED


def test_openai_turns_with_tool_calls_and_image_parts(
    fake: FakeGateway, threaded_target: str
) -> None:
    turns: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    with GatewayClient(threaded_target) as client:
        client.chat(turns)
    user, assistant, tool = fake.calls[0].request.messages
    assert [part.WhichOneof("kind") for part in user.parts] == ["text", "image"]
    assert user.parts[1].image.url == "https://example.com/cat.png"
    assert assistant.role == chat_pb2.ROLE_ASSISTANT
    (call,) = assistant.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert (tool.role, tool.tool_call_id, tool.content) == (chat_pb2.ROLE_TOOL, "call_1", "sunny")


def test_short_enum_names_in_nested_fields(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client:
        client.chat("Hi", cache={"mode": "bypass"}, response_format={"type": "json_object"})
        client.chat("Hi", cache="enabled", response_format="text")
        client.chat(
            [{"role": "user", "parts": [{"text": "proto form"}]}], tool_choice={"mode": "none"}
        )
    first, second, third = (call.request for call in fake.calls)
    assert first.cache.mode == chat_pb2.CACHE_MODE_BYPASS
    assert first.response_format.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    assert second.cache.mode == chat_pb2.CACHE_MODE_ENABLED
    assert second.response_format.type == chat_pb2.RESPONSE_FORMAT_TYPE_TEXT
    assert third.messages[0].parts[0].text == "proto form"
    assert third.tool_choice.mode == chat_pb2.TOOL_CHOICE_MODE_NONE


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temprature": 0.2}, "unexpected option 'temprature'; did you mean 'temperature'"),
        ({"tools": [{"type": "retrieval", "function": {}}]}, r"tools\[0\]\.type"),
        ({"tools": [{"name": "f", "parameterz": {}}]}, r"tools\[0\].*parameterz"),
        ({"cache": {"mode": "sometimes"}}, "expected one of: bypass, enabled"),
        ({"response_format": "yaml"}, "expected one of: text, json_object, json_schema"),
        ({"temperature": "hot"}, r"^temperature: "),
        ({"tools": ["get_weather"]}, r"tools\[0\]: expected a Tool or a dict"),
        ({"reasoning_effort": "extreme"}, "expected one of: .*high"),
    ],
)
def test_bad_options_name_the_field_before_any_call(
    fake: FakeGateway, threaded_target: str, options: dict[str, object], message: str
) -> None:
    with (
        GatewayClient(threaded_target) as client,
        pytest.raises((TypeError, ValueError), match=message),
    ):
        client.chat("Hi", **options)  # type: ignore[arg-type]
    assert fake.calls == []


def test_finish_reason_is_readable(fake: FakeGateway, threaded_target: str) -> None:
    fake.reply("", finish_reason=chat_pb2.FINISH_REASON_TOOL_CALLS, cost_usd=0.25)
    fake.reply("done")
    with GatewayClient(threaded_target) as client:
        tools = client.chat("Use a tool")
        done = client.chat("Stop")
    assert tools.finish_reason == "tool_calls"
    assert tools.finish_reason is FinishReason.TOOL_CALLS
    assert str(done.finish_reason) == "stop"
    assert (tools.cost_usd, done.cost_usd) == (0.25, None)
    assert str(done) == "done"
    assert done.response.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert FinishReason.from_proto(99) is FinishReason.OTHER


def test_default_timeout_is_the_gateways_default_deadline(
    fake: FakeGateway, threaded_target: str
) -> None:
    assert DEFAULT_TIMEOUT_S == 300.0
    with GatewayClient(threaded_target) as client:
        client.complete("Hi")
        client.complete("Hi", timeout=5)
    default, override = (call.time_remaining for call in fake.calls)
    # gRPC rounds the grpc-timeout header up (to whole seconds past a size), so allow a second.
    assert default is not None and 200 < default <= 301.5
    assert override is not None and 0 < override <= 6.5


def test_scripted_replies_and_failures(fake: FakeGateway, threaded_target: str) -> None:
    fake.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", retry_after=2)
    fake.reply("scripted", usage={"prompt_tokens": 3, "completion_tokens": 1})
    fake.reply("streamed")
    with GatewayClient(threaded_target) as client:
        with pytest.raises(GatewayError) as err:
            client.chat("Hi")
        answer = client.chat("Hi")
        pieces = list(client.stream_text("Hi"))
        echoed = client.complete("fallback")
    assert (err.value.code, err.value.reason, err.value.retry_after) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        2.0,
    )
    assert (answer.content, answer.usage.prompt_tokens) == ("scripted", 3)
    assert "".join(pieces) == "streamed"
    assert echoed == "echo: fallback"


def test_chat_options_cover_every_request_field() -> None:
    """A field added to ChatRequest must be added to ChatOptions too (and typed there)."""
    fields = set(chat_pb2.ChatRequest.DESCRIPTOR.fields_by_name) - {"messages"}
    extras = {"system", "timeout", "request_id"}
    assert set(ChatOptions.__annotations__) - extras == fields


def test_stream_options_are_checked_before_iterating(
    fake: FakeGateway, threaded_target: str
) -> None:
    with GatewayClient(threaded_target) as client:
        with pytest.raises(TypeError, match="temprature"):
            client.stream("Hi", temprature=1.0)  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="privacy"):
            client.stream_text("Hi", privacy="secret")
    assert fake.calls == []


def test_one_turn_must_be_given_in_a_list(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client, pytest.raises(TypeError, match="list of turns"):
        client.chat({"role": "user", "content": "Hi"})  # type: ignore[arg-type]
    assert fake.calls == []


def test_set_field_fills_maps_of_messages_from_their_json_form() -> None:
    """The path a future `map<string, Message>` request field takes (no such field yet)."""
    from google.protobuf import struct_pb2

    from llmgateway.client.openai_shapes import set_field

    message = struct_pb2.Struct()
    set_field(message, "fields", {"n": 1, "s": "x", "o": {"k": True}})
    assert json_format.MessageToDict(message) == {"n": 1, "s": "x", "o": {"k": True}}
    with pytest.raises(ValueError, match=r"^fields"):
        set_field(message, "fields", {"bad": object()})
