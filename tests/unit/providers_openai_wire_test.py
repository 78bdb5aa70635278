"""The OpenAI wire mapping shared by both adapters: request bodies, answers, stream chunks."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    FinishReason,
    ImagePart,
    Message,
    ProviderChatRequest,
    ProviderEmbedRequest,
    ReasoningEffort,
    ResponseFormat,
    ResponseFormatType,
    Role,
    Sampling,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from llm_gateway_server.providers.openai_wire import (
    StreamAssembler,
    build_chat_body,
    build_embed_body,
    map_finish_reason,
    parse_chat_answer,
    parse_embed_answer,
    parse_usage,
)

USER = Message(Role.USER, "hi")


def answer(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        **extra,
    }


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"model": "m", "choices": choices, **extra}


# ---------------------------------------------------------------- requests


def test_minimal_body_leaves_unset_sampling_out() -> None:
    body = build_chat_body(ProviderChatRequest(model="m", messages=(USER,)), stream=False)
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_sampling_zero_is_sent_and_max_tokens_field_is_chosen() -> None:
    sampling = Sampling(
        temperature=0.0,
        top_p=0.5,
        max_tokens=64,
        stop=("END",),
        seed=7,
        presence_penalty=0.0,
        frequency_penalty=1.5,
        reasoning_effort=ReasoningEffort.LOW,
    )
    request = ProviderChatRequest(model="m", messages=(USER,), sampling=sampling)
    body = build_chat_body(request, stream=False, max_tokens_field="max_completion_tokens")
    assert body["temperature"] == 0.0 and body["presence_penalty"] == 0.0
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    assert (body["top_p"], body["seed"], body["frequency_penalty"]) == (0.5, 7, 1.5)
    assert body["stop"] == ["END"] and body["reasoning_effort"] == "low"


def test_stream_asks_for_usage() -> None:
    body = build_chat_body(ProviderChatRequest(model="m", messages=(USER,)), stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_parts_images_and_tool_history() -> None:
    png = b"\x89PNG-bytes"
    messages = (
        Message(Role.SYSTEM, "be brief"),
        Message(
            Role.USER,
            parts=(
                TextPart("what is it?"),
                ImagePart(url="https://example.com/a.png"),
                ImagePart(data=png, mime_type="image/webp"),
            ),
        ),
        Message(Role.ASSISTANT, tool_calls=(ToolCall("c1", "get", '{"x":1}'),)),
        Message(Role.TOOL, "42", tool_call_id="c1", name="get"),
    )
    body = build_chat_body(ProviderChatRequest(model="m", messages=messages), stream=False)
    system, user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "be brief"}
    assert user["content"] == [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/webp;base64," + base64.b64encode(png).decode()},
        },
    ]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get", "arguments": '{"x":1}'}}
        ],
    }
    assert tool == {"role": "tool", "content": "42", "name": "get", "tool_call_id": "c1"}


def test_tools_choice_and_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = ProviderChatRequest(
        model="m",
        messages=(USER,),
        tools=(Tool("get", "Gets.", schema, strict=True), Tool("ping")),
        tool_choice=ToolChoice(function_name="get"),
        response_format=ResponseFormat(
            ResponseFormatType.JSON_SCHEMA, schema, "answer", strict=True
        ),
    )
    body = build_chat_body(request, stream=False)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get",
                "parameters": schema,
                "description": "Gets.",
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (ResponseFormat(ResponseFormatType.TEXT), None),
        (ResponseFormat(ResponseFormatType.JSON_OBJECT), {"type": "json_object"}),
    ],
)
def test_response_format_text_and_json_object(fmt: ResponseFormat, expected: Any) -> None:
    body = build_chat_body(
        ProviderChatRequest(
            model="m", messages=(USER,), response_format=fmt, tool_choice=ToolChoice("required")
        ),
        stream=False,
    )
    assert body.get("response_format") == expected
    assert body["tool_choice"] == "required"


def test_embed_body() -> None:
    assert build_embed_body(ProviderEmbedRequest(model="e", inputs=("a", "b"), dimensions=8)) == {
        "model": "e",
        "input": ["a", "b"],
        "dimensions": 8,
    }


# ---------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("function_call", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("eos_token", FinishReason.OTHER),
        (None, FinishReason.OTHER),
    ],
)
def test_finish_reason_mapping(raw: str | None, expected: FinishReason) -> None:
    assert map_finish_reason(raw) is expected


def test_usage_details() -> None:
    usage = parse_usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "completion_tokens_details": {"reasoning_tokens": 3},
            "prompt_tokens_details": {"cached_tokens": 4},
        }
    )
    assert usage == Usage(10, 5, 3, 4)
    assert parse_usage({"prompt_tokens": None, "completion_tokens_details": None}) == Usage()


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "thinking"])
def test_reasoning_under_each_name(field: str) -> None:
    parsed = parse_chat_answer(answer({"content": "x", field: "why"}))
    assert parsed.reasoning_content == "why" and parsed.content == "x"


def test_content_parts_and_dict_arguments() -> None:
    parsed = parse_chat_answer(
        answer(
            {
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                "tool_calls": [{"function": {"name": "f", "arguments": {"k": 1}}}],
            },
            finish="stop",
        )
    )
    assert parsed.content == "ab"
    assert parsed.tool_calls == (ToolCall("call_0", "f", '{"k":1}'),)
    assert parsed.finish_reason is FinishReason.TOOL_CALLS  # "stop" with tool calls


def test_reasoning_only_and_empty_answers() -> None:
    only = parse_chat_answer(answer({"content": "", "reasoning": "hmm"}, finish="length"))
    assert only.finish_reason is FinishReason.REASONING_ONLY
    with pytest.raises(UpstreamError) as err:
        parse_chat_answer(answer({"content": None}))
    assert err.value.failure is UpstreamFailure.EMPTY_ANSWER and not err.value.caller_caused


@pytest.mark.parametrize(
    "raw", [[], {"choices": []}, {"choices": [{"message": "x"}]}, {"choices": "x"}]
)
def test_wrong_shapes_are_bad_responses(raw: Any) -> None:
    with pytest.raises(UpstreamError) as err:
        parse_chat_answer(raw)
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE


def test_embeddings_sorted_by_index_and_counted() -> None:
    data = {
        "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1, 1.5]}],
        "model": "e",
    }
    assert parse_embed_answer(data, 2).vectors == ((1.0, 1.5), (2.0,))
    with pytest.raises(UpstreamError):
        parse_embed_answer(data, 3)
    with pytest.raises(UpstreamError):
        parse_embed_answer({"data": [{"index": 0, "embedding": "x"}]}, 1)


# ---------------------------------------------------------------- streams


def test_stream_usage_in_a_separate_last_chunk_is_merged_into_the_final_delta() -> None:
    assembler = StreamAssembler()
    out = assembler.feed(chunk({"role": "assistant", "content": ""}))
    out += assembler.feed(chunk({"content": "Hi"}))
    out += assembler.feed(chunk({}, "stop"))
    assert [d.content for d in out] == ["Hi"], "nothing final before usage (or the end) arrives"
    final = assembler.feed(chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 1}))
    assert len(final) == 1 and final[0].finish_reason is FinishReason.STOP
    assert final[0].usage == Usage(3, 1)
    assert assembler.end(done=True) is None


def test_stream_finish_and_usage_in_one_chunk() -> None:
    assembler = StreamAssembler()
    out = assembler.feed(chunk({"content": "Hi"}, "length", usage={"prompt_tokens": 1}))
    assert [(d.content, d.finish_reason) for d in out] == [("Hi", None), ("", FinishReason.LENGTH)]


def test_stream_without_usage_ends_at_done() -> None:
    assembler = StreamAssembler()
    assembler.feed(chunk({"content": "Hi"}))
    assembler.feed(chunk({}, "stop"))
    final = assembler.end(done=False)
    assert final is not None and final.finish_reason is FinishReason.STOP and final.usage is None


def test_stream_tool_fragments_and_reasoning() -> None:
    assembler = StreamAssembler()
    out = assembler.feed(chunk({"reasoning": "plan"}))
    out += assembler.feed(
        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]})
    )
    out += assembler.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}))
    out += assembler.feed(chunk({}, "tool_calls", usage={"completion_tokens": 2}))
    assert out[0].reasoning_content == "plan"
    assert out[1].tool_calls == (ToolCallDelta(0, "c", "f", ""),)
    assert out[2].tool_calls == (ToolCallDelta(0, "", "", '{"a":'),)
    assert out[-1].finish_reason is FinishReason.TOOL_CALLS


def test_stream_cut_before_finish_is_a_bad_response() -> None:
    assembler = StreamAssembler()
    assembler.feed(chunk({"content": "Hi"}))
    with pytest.raises(UpstreamError) as err:
        assembler.end(done=False)
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE


def test_stream_done_without_finish_is_a_stop() -> None:
    assembler = StreamAssembler()
    assembler.feed(chunk({"content": "Hi"}))
    final = assembler.end(done=True)
    assert final is not None and final.finish_reason is FinishReason.STOP


def test_stream_reasoning_only_and_empty() -> None:
    assembler = StreamAssembler()
    assembler.feed(chunk({"reasoning_content": "hmm"}))
    assembler.feed(chunk({}, "length"))
    final = assembler.end(done=True)
    assert final is not None and final.finish_reason is FinishReason.REASONING_ONLY
    empty = StreamAssembler()
    empty.feed(chunk({}, "stop"))
    with pytest.raises(UpstreamError) as err:
        empty.end(done=True)
    assert err.value.failure is UpstreamFailure.EMPTY_ANSWER
