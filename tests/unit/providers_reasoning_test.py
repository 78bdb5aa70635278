"""Inline think tags: the incremental splitter, and both adapters against fake upstreams."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.assembly import AnswerBuilder
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    ChatAnswer,
    ChatDelta,
    FinishReason,
    Message,
    ProviderChatRequest,
    Role,
)
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.providers.reasoning import (
    StreamSplitter,
    ThinkSplitter,
    split_answer,
    tags_enabled,
)
from llm_gateway_server.providers.registry import build_provider
from tests.fakes import Behaviour, FakeOllama, FakeOpenAI

REQUEST = ProviderChatRequest(model="qwen3:8b", messages=(Message(Role.USER, "hi"),))
THOUGHT = "<think>\nThe user greets me. I greet back.\n</think>\n\nHello!"


def split(text: str, cuts: list[int]) -> tuple[str, str]:
    """Feed ``text`` cut at ``cuts``; return all reasoning and all content."""
    splitter = ThinkSplitter()
    bounds = [0, *sorted(set(cuts)), len(text)]
    reasoning, content = [], []
    for a, b in itertools.pairwise(bounds):
        r, c = splitter.feed(text[a:b])
        reasoning.append(r)
        content.append(c)
    r, c = splitter.end()
    return "".join(reasoning) + r, "".join(content) + c


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (THOUGHT, ("\nThe user greets me. I greet back.\n", "Hello!")),
        ("<thinking>plan</thinking>Answer", ("plan", "Answer")),
        ("  \n<think>x</think> y", ("x", "y")),
        ("No tags here.", ("", "No tags here.")),
        ("Say <think> later</think> stays", ("", "Say <think> later</think> stays")),
        ("<think>never closed", ("never closed", "")),
        ("<thin", ("", "<thin")),
        ("<b>bold</b>", ("", "<b>bold</b>")),
        ("", ("", "")),
    ],
)
def test_splitter_cases(text: str, expected: tuple[str, str]) -> None:
    assert split(text, []) == expected
    # Every single-character split gives the same result.
    assert split(text, list(range(1, len(text)))) == expected


@given(
    st.sampled_from(["<think>", "<thinking>", "", " <think>", "<thin"]),
    st.text(alphabet="ab <>/thinkg\n", max_size=30),
    st.lists(st.integers(0, 60), max_size=8),
)
def test_chunking_never_changes_the_result(prefix: str, body: str, cuts: list[int]) -> None:
    text = prefix + body
    whole = split(text, [])
    assert split(text, [c for c in cuts if c < len(text)]) == whole
    reasoning, content = whole
    # Nothing is lost or invented: the pieces are in the text, in order.
    assert len(reasoning) + len(content) <= len(text)
    assert content in text


def test_splitter_holds_back_only_a_tag_length() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<think>" + "r" * 10_000) == ("r" * 10_000, "")
    assert splitter.feed("more</thi") == ("more", "")
    assert splitter.feed("nk>answer") == ("", "answer")


def test_unary_answer_reasoning_only_and_empty() -> None:
    answer = split_answer(ChatAnswer(content="<think>only thinking</think>"), enabled=True)
    assert (answer.content, answer.reasoning_content) == ("", "only thinking")
    assert answer.finish_reason is FinishReason.REASONING_ONLY
    with pytest.raises(UpstreamError) as caught:
        split_answer(ChatAnswer(content="<think></think>"), enabled=True)
    assert caught.value.failure is UpstreamFailure.EMPTY_ANSWER
    kept = ChatAnswer(content=THOUGHT)
    assert split_answer(kept, enabled=False) is kept


def test_stream_splitter_flushes_before_the_final_delta() -> None:
    splitter = StreamSplitter(enabled=True)
    out = splitter.feed([ChatDelta(content="<thi"), ChatDelta(content="nk>abc</th")])
    out += splitter.feed([ChatDelta(content="ink>")])
    out += splitter.feed([ChatDelta(finish_reason=FinishReason.STOP)])
    out += splitter.end(None)
    builder = AnswerBuilder()
    for delta in out:
        builder.add(delta)
    assert (builder.answer().reasoning_content, builder.answer().content) == ("abc", "")
    assert out[-1].finish_reason is FinishReason.REASONING_ONLY


def test_default_is_on_for_local_providers_only() -> None:
    local = ProviderConfig(kind="openai_compatible", api_base="http://x/v1", locality="local")
    cloud = ProviderConfig(kind="openai_compatible", api_base="http://x/v1", locality="cloud")
    assert tags_enabled(local) and not tags_enabled(cloud)
    assert not tags_enabled(local.model_copy(update={"reasoning_tags": False}))
    assert tags_enabled(cloud.model_copy(update={"reasoning_tags": True}))


# ---------------------------------------------------------------- through fake upstreams

SPLIT_TAGS = ("<th", "ink>The user gree", "ts me.</thi", "nk>\n\n", "Hel", "lo!")


@pytest.fixture(params=["openai_compatible", "ollama"])
async def adapter(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Provider, Any]]:
    fake: FakeOpenAI | FakeOllama = FakeOpenAI() if request.param != "ollama" else FakeOllama()
    async with fake:
        config = ProviderConfig(kind=request.param, api_base=fake.base_url, locality="local")
        provider = build_provider("local", config, None)
        yield provider, fake
        await provider.aclose()


async def test_unary_think_tags_move_to_reasoning(adapter: tuple[Provider, Any]) -> None:
    provider, fake = adapter
    fake.behaviour = Behaviour(content="<think>The user greets me.</think>\n\nHello!")
    answer = await provider.chat(REQUEST, timeout_s=10)
    assert (answer.reasoning_content, answer.content) == ("The user greets me.", "Hello!")
    assert answer.finish_reason is FinishReason.STOP


async def test_streamed_tags_split_across_chunks(adapter: tuple[Provider, Any]) -> None:
    provider, fake = adapter
    fake.behaviour = Behaviour(content="".join(SPLIT_TAGS), content_pieces=SPLIT_TAGS)
    deltas = [d async for d in provider.stream(REQUEST, timeout_s=10)]
    assert "".join(d.reasoning_content for d in deltas) == "The user greets me."
    assert "".join(d.content for d in deltas) == "Hello!"
    assert all("<" not in d.content for d in deltas)
    assert deltas[-1].finish_reason is FinishReason.STOP


async def test_off_leaves_the_content_alone(fake_openai: FakeOpenAI) -> None:
    config = ProviderConfig(
        kind="openai_compatible",
        api_base=fake_openai.base_url,
        locality="local",
        reasoning_tags=False,
    )
    provider = build_provider("local", config, None)
    fake_openai.behaviour = Behaviour(content=THOUGHT)
    answer = await provider.chat(REQUEST, timeout_s=10)
    await provider.aclose()
    assert (answer.content, answer.reasoning_content) == (THOUGHT, "")
