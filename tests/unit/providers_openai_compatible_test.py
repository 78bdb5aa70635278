"""Native adapter specifics against FakeOpenAI: request shape, stream endings, pooling."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    ChatDelta,
    FinishReason,
    Message,
    ProviderChatRequest,
    Role,
    Sampling,
)
from llm_gateway_server.providers.openai_compatible import OpenAICompatibleProvider
from llm_gateway_server.providers.registry import build_provider
from tests.fakes import Behaviour, FakeOpenAI, Fault

KEY = "sk-native-SECRET-0123456789abcdef"
REQUEST = ProviderChatRequest(model="m", messages=(Message(Role.USER, "hi"),))


@pytest.fixture
async def native(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider(
        "local",
        ProviderConfig(kind=ProviderKind.OPENAI_COMPATIBLE, api_base=fake_openai.base_url + "/"),
        api_key=KEY,
    )
    yield provider
    await provider.aclose()


async def stream_all(provider: OpenAICompatibleProvider) -> list[object]:
    return [d async for d in provider.stream(REQUEST, timeout_s=5)]


async def test_openai_kind_uses_max_completion_tokens(fake_openai: FakeOpenAI) -> None:
    provider = build_provider(
        "oa", ProviderConfig(kind=ProviderKind.OPENAI, api_base=fake_openai.base_url), KEY
    )
    request = ProviderChatRequest(
        model="m", messages=REQUEST.messages, sampling=Sampling(max_tokens=9)
    )
    await provider.chat(request, timeout_s=5)
    await provider.aclose()
    body = fake_openai.last_request.json
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body


async def test_compatible_kind_uses_max_tokens(
    fake_openai: FakeOpenAI, native: OpenAICompatibleProvider
) -> None:
    request = ProviderChatRequest(
        model="m", messages=REQUEST.messages, sampling=Sampling(max_tokens=9)
    )
    await native.chat(request, timeout_s=5)
    assert fake_openai.last_request.json["max_tokens"] == 9
    assert fake_openai.last_request.path == "/v1/chat/completions"


async def test_stream_without_done_but_with_finish_is_complete(
    fake_openai: FakeOpenAI, native: OpenAICompatibleProvider
) -> None:
    fake_openai.behaviour = Behaviour(send_done=False, usage_in_separate_chunk=False)
    deltas = await stream_all(native)
    assert deltas[-1].finish_reason is FinishReason.STOP  # type: ignore[attr-defined]
    assert deltas[-1].usage is not None  # type: ignore[attr-defined]


async def test_stream_ending_early_without_finish_is_a_bad_response(
    fake_openai: FakeOpenAI, native: OpenAICompatibleProvider
) -> None:
    fake_openai.behaviour = Behaviour(fault=Fault.TRUNCATE, cut_after=3)
    with pytest.raises(UpstreamError) as err:
        await stream_all(native)
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"error": {"message": "overloaded", "code": 503}}, UpstreamFailure.SERVER_ERROR),
        (
            {"error": {"message": "maximum context length exceeded", "code": 400}},
            UpstreamFailure.CONTEXT_LENGTH,
        ),
        ({"error": "something broke"}, UpstreamFailure.SERVER_ERROR),
    ],
)
async def test_error_event_mid_stream(
    fake_openai: FakeOpenAI,
    native: OpenAICompatibleProvider,
    error: object,
    expected: UpstreamFailure,
) -> None:
    fake_openai.behaviour = Behaviour(stream_error=error)
    seen: list[ChatDelta] = []

    async def consume() -> None:
        async for delta in native.stream(REQUEST, timeout_s=5):
            seen.append(delta)

    with pytest.raises(UpstreamError) as err:
        await consume()
    assert err.value.failure is expected
    assert [d.content for d in seen] == ["Hello "]


async def test_error_body_with_status_200_is_no_answer(
    fake_openai: FakeOpenAI, native: OpenAICompatibleProvider
) -> None:
    fake_openai.behaviour = Behaviour(
        fault=Fault.HTTP_ERROR, status=200, error_body={"error": {"message": "overloaded"}}
    )
    with pytest.raises(UpstreamError) as err:
        await native.chat(REQUEST, timeout_s=5)
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE


async def test_keep_alive_reuses_one_connection(
    fake_openai: FakeOpenAI, native: OpenAICompatibleProvider
) -> None:
    for _ in range(3):
        await native.chat(REQUEST, timeout_s=5)
        await stream_all(native)
    assert fake_openai.open_connections == 1
    await native.aclose()
    await fake_openai.wait_no_connections()


async def test_parallel_calls_share_the_pool(
    fake_openai: FakeOpenAI, native: OpenAICompatibleProvider
) -> None:
    fake_openai.behaviour = Behaviour(first_token_delay_s=0.05)
    answers = await asyncio.gather(*(native.chat(REQUEST, timeout_s=5) for _ in range(8)))
    assert {a.content for a in answers} == {"Hello from the fake."}
    assert len(fake_openai.requests) == 8


async def test_upstream_echoing_the_key_is_redacted(
    fake_openai: FakeOpenAI, native: OpenAICompatibleProvider
) -> None:
    fake_openai.behaviour = Behaviour(
        fault=Fault.HTTP_ERROR, status=401, error_message=f"Bearer {KEY} rejected"
    )
    with pytest.raises(UpstreamError) as err:
        await native.chat(REQUEST, timeout_s=5)
    assert err.value.failure is UpstreamFailure.AUTH
    assert KEY not in err.value.message


def test_compatible_needs_an_api_base_and_openai_has_a_default() -> None:
    provider = build_provider("oa", ProviderConfig(kind=ProviderKind.OPENAI), KEY)
    assert isinstance(provider, OpenAICompatibleProvider)


def test_native_kinds_never_import_litellm() -> None:
    code = (
        "import sys\n"
        "from llm_gateway_server.config.providers import ProviderConfig\n"
        "from llm_gateway_server.providers.registry import build_provider\n"
        "build_provider('a', ProviderConfig(kind='openai_compatible', api_base='http://x/v1'), None)\n"
        "build_provider('b', ProviderConfig(kind='openai'), 'k')\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
