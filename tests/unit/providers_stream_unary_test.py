"""stream_unary: a unary chat asked of the upstream as a stream, answered as one."""

from __future__ import annotations

import pytest

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import FinishReason, Message, ProviderChatRequest, Role
from llm_gateway_server.providers.openai_compatible import OpenAICompatibleProvider
from tests.fakes import Behaviour, FakeOpenAI, FakeToolCall, FakeUsage


def _provider(fake: FakeOpenAI) -> OpenAICompatibleProvider:
    config = ProviderConfig.model_validate(
        {"kind": "openai_compatible", "api_base": fake.base_url, "stream_unary": True}
    )
    return OpenAICompatibleProvider("local", config, api_key=None)


REQUEST = ProviderChatRequest(model="m", messages=(Message(Role.USER, "hi"),))


async def test_the_streamed_answer_is_assembled(fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour = Behaviour(
        content="one two three",
        reasoning="thoughts",
        tool_calls=[FakeToolCall("lookup", {"q": "x"})],
        usage=FakeUsage(5, 9),
    )
    provider = _provider(fake_openai)
    try:
        answer = await provider.chat(REQUEST, timeout_s=5)
    finally:
        await provider.aclose()
    assert fake_openai.last_request.json["stream"] is True
    assert answer.content == "one two three"
    assert answer.reasoning_content == "thoughts"
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("lookup", '{"q":"x"}')]
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 9)


async def test_an_empty_stream_is_an_empty_answer(fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour = Behaviour(content="")
    provider = _provider(fake_openai)
    try:
        with pytest.raises(UpstreamError) as caught:
            await provider.chat(REQUEST, timeout_s=5)
    finally:
        await provider.aclose()
    assert caught.value.failure is UpstreamFailure.EMPTY_ANSWER
