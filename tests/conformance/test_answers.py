"""The same answer comes out of every adapter, unary and streamed."""

from __future__ import annotations

import base64

import pytest

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import FinishReason, ImagePart, Message, Role, TextPart, Usage
from llm_gateway_server.providers.base import Provider
from tests.conformance.cases import API_KEY, AdapterCase
from tests.conformance.streams import (
    MODES,
    TRACEPARENT,
    Mode,
    arguments,
    chat_request,
    run,
    traced,
)
from tests.fakes import Behaviour, FakeToolCall, FakeUpstream, FakeUsage

pytestmark = pytest.mark.parametrize("mode", MODES)


async def test_content_finish_and_usage(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    fake.behaviour = Behaviour(content="Sunny, 21 degrees.", usage=FakeUsage(21, 13))
    answer = await run(provider, chat_request(case.model), mode)
    assert answer.content == "Sunny, 21 degrees."
    assert answer.reasoning_content == ""
    assert answer.tool_calls == ()
    assert answer.finish_reason is FinishReason.STOP
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (21, 13)
    assert answer.model == "m"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "thinking"])
async def test_reasoning_under_any_name(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode, field: str
) -> None:
    if field not in case.reasoning_fields and case.reasoning_fields != ("native",):
        pytest.skip(f"{case.id} reads reasoning as {case.reasoning_fields}")
    if case.reasoning_fields == ("native",) and field != "reasoning_content":
        pytest.skip(f"{case.fake.__name__} has one native reasoning encoding")
    fake.behaviour = Behaviour(
        content="It is sunny.", reasoning="The user wants weather.", reasoning_field=field
    )
    answer = await run(provider, chat_request(case.model), mode)
    assert answer.reasoning_content == "The user wants weather."
    assert answer.content == "It is sunny."
    assert answer.finish_reason is FinishReason.STOP


async def test_reasoning_only_is_its_own_outcome(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    fake.behaviour = Behaviour(
        content="", reasoning="Thinking until the budget ran out", finish_reason="length"
    )
    answer = await run(provider, chat_request(case.model), mode)
    assert answer.content == ""
    assert answer.reasoning_content == "Thinking until the budget ran out"
    assert answer.finish_reason is FinishReason.REASONING_ONLY


async def test_tool_calls(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    fake.behaviour = Behaviour(
        content="",
        tool_calls=[
            FakeToolCall("get_weather", {"city": "Paris", "unit": "C"}, id="call_a"),
            FakeToolCall("get_weather", {"city": "Lyon"}, id="call_b"),
        ],
    )
    answer = await run(provider, chat_request(case.model, tools=True), mode)
    assert [c.name for c in answer.tool_calls] == ["get_weather", "get_weather"]
    assert [arguments(c) for c in answer.tool_calls] == [
        {"city": "Paris", "unit": "C"},
        {"city": "Lyon"},
    ]
    assert all(c.id for c in answer.tool_calls)
    if case.upstream_tool_ids:
        assert [c.id for c in answer.tool_calls] == ["call_a", "call_b"]
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    assert b"get_weather" in fake.last_request.raw, "the tool definition reached the upstream"


async def test_usage_details(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    fake.behaviour = Behaviour(
        reasoning="Hmm.", usage=FakeUsage(40, 30, reasoning_tokens=12, cached_tokens=16)
    )
    usage = (await run(provider, chat_request(case.model), mode)).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (40, 30)
    if case.reasoning_tokens:
        assert usage.reasoning_tokens == 12
    if case.cached_tokens:
        assert usage.cached_tokens == 16


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("length", FinishReason.LENGTH), ("content_filter", FinishReason.CONTENT_FILTER)],
)
async def test_finish_reasons(
    case: AdapterCase,
    fake: FakeUpstream,
    provider: Provider,
    mode: Mode,
    finish: str,
    expected: FinishReason,
) -> None:
    if expected is FinishReason.CONTENT_FILTER and not case.content_filter:
        pytest.skip(f"{case.id}'s wire has no content-filter finish reason")
    if expected is FinishReason.CONTENT_FILTER and not case.filter_keeps_content:
        pytest.skip(f"{case.id} drops text before a filter stop (see the filtered-to-nothing test)")
    fake.behaviour = Behaviour(content="Partial answ", finish_reason=finish)
    answer = await run(provider, chat_request(case.model), mode)
    assert answer.content == "Partial answ"
    assert answer.finish_reason is expected


async def test_filtered_to_nothing_is_caller_caused(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    if not case.content_filter:
        pytest.skip(f"{case.id}'s wire has no content-filter finish reason")
    fake.behaviour = Behaviour(content="", finish_reason="content_filter")
    with pytest.raises(UpstreamError) as err:
        await run(provider, chat_request(case.model), mode)
    assert err.value.failure is UpstreamFailure.CONTENT_FILTER
    assert err.value.caller_caused


async def test_headers_reach_the_upstream(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    with traced():
        await run(provider, chat_request(case.model), mode)
    headers = {k.lower(): v for k, v in fake.last_request.headers.items()}
    assert headers.get("traceparent") == TRACEPARENT
    assert headers.get("x-team") == "conformance"
    name, value = case.auth_header
    assert headers.get(name.lower()) == value
    assert API_KEY not in str(fake.last_request.json)


async def test_inline_image_is_sent(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    request = chat_request(case.model)
    message = Message(
        Role.USER, parts=(TextPart("What is this?"), ImagePart(data=image, mime_type="image/png"))
    )
    request = type(request)(model=request.model, messages=(message,))
    answer = await run(provider, request, mode)
    assert answer.content
    assert base64.b64encode(image) in fake.last_request.raw


async def test_usage_of_a_plain_answer_is_complete(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    fake.behaviour = Behaviour(usage=FakeUsage(5, 3))
    usage = (await run(provider, chat_request(case.model), mode)).usage
    assert usage == Usage(prompt_tokens=5, completion_tokens=3)
