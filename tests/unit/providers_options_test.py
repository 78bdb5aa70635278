"""Provider options and thinking off, per kind, as each fake upstream receives them."""

from __future__ import annotations

import pytest

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.errors import RequestInvalid
from llm_gateway_server.core.types import (
    Message,
    ProviderChatRequest,
    ProviderEmbedRequest,
    ReasoningEffort,
    Role,
    Sampling,
)
from llm_gateway_server.providers.options import check_options, from_json, options_for
from llm_gateway_server.providers.registry import build_provider
from tests.fakes import FakeAnthropic, FakeOllama, FakeOpenAI

MESSAGES = (Message(Role.USER, "hi"),)
OLLAMA_OPTIONS = {"num_ctx": 8192, "keep_alive": "10m", "top_k": 20, "repeat_penalty": 1.1}


async def test_ollama_options_go_where_ollama_reads_them(fake_ollama: FakeOllama) -> None:
    provider = build_provider(
        "ollama", ProviderConfig(kind=ProviderKind.OLLAMA, api_base=fake_ollama.base_url), None
    )
    request = ProviderChatRequest(
        model="qwen3:8b", messages=MESSAGES, provider_options=OLLAMA_OPTIONS
    )
    await provider.chat(request, timeout_s=10)
    body = fake_ollama.requests[-1].json
    assert body["options"]["num_ctx"] == 8192
    assert body["options"]["top_k"] == 20 and body["options"]["repeat_penalty"] == 1.1
    assert body["keep_alive"] == "10m"
    await provider.embed(
        ProviderEmbedRequest(model="nomic", inputs=("a",), provider_options={"keep_alive": "1m"}),
        timeout_s=10,
    )
    assert fake_ollama.requests[-1].json["keep_alive"] == "1m"
    await provider.aclose()


async def test_ollama_thinking_off_is_think_false(fake_ollama: FakeOllama) -> None:
    provider = build_provider(
        "ollama", ProviderConfig(kind=ProviderKind.OLLAMA, api_base=fake_ollama.base_url), None
    )
    sampling = Sampling(reasoning_effort=ReasoningEffort.NONE)
    await provider.chat(
        ProviderChatRequest(model="qwen3:8b", messages=MESSAGES, sampling=sampling), timeout_s=10
    )
    await provider.aclose()
    assert fake_ollama.requests[-1].json["think"] is False


async def test_openai_thinking_off_is_the_lowest_effort(fake_openai: FakeOpenAI) -> None:
    config = ProviderConfig(kind=ProviderKind.OPENAI, api_base=fake_openai.base_url)
    provider = build_provider("openai", config, "sk-test-0123456789")
    sampling = Sampling(reasoning_effort=ReasoningEffort.NONE)
    await provider.chat(
        ProviderChatRequest(model="o4-mini", messages=MESSAGES, sampling=sampling), timeout_s=10
    )
    await provider.aclose()
    assert fake_openai.last_request.json["reasoning_effort"] == "low"


async def test_anthropic_thinking_off_sends_no_thinking(fake_anthropic: FakeAnthropic) -> None:
    config = ProviderConfig(kind=ProviderKind.ANTHROPIC, api_base=fake_anthropic.base_url)
    provider = build_provider("claude", config, "sk-ant-test-0123456789")
    sampling = Sampling(reasoning_effort=ReasoningEffort.NONE, max_tokens=64)
    await provider.chat(
        ProviderChatRequest(model="claude-sonnet-4-5", messages=MESSAGES, sampling=sampling),
        timeout_s=10,
    )
    await provider.aclose()
    body = fake_anthropic.requests[-1].json
    assert "thinking" not in body or body["thinking"].get("type") == "disabled"


def test_check_options_per_kind() -> None:
    kinds = {ProviderKind.OLLAMA, ProviderKind.GEMINI}
    check_options(OLLAMA_OPTIONS, kinds, embedding=False)
    with pytest.raises(RequestInvalid) as caught:
        check_options({"num_ctx": 1}, {ProviderKind.OPENAI}, embedding=False)
    assert caught.value.metadata == {"field": "provider_options.num_ctx"}
    with pytest.raises(RequestInvalid, match="set by the gateway"):
        check_options({"messages": []}, {ProviderKind.LITELLM}, embedding=False)
    # A mixed route: each target gets the keys of its kind only.
    assert options_for(ProviderKind.GEMINI, OLLAMA_OPTIONS) == {"top_k": 20}
    assert options_for(ProviderKind.OLLAMA, OLLAMA_OPTIONS) == OLLAMA_OPTIONS


def test_whole_numbers_come_back_as_ints() -> None:
    assert from_json({"num_ctx": 8192.0, "x": [1.0, 0.5], "y": {"z": 2.0}}) == {
        "num_ctx": 8192,
        "x": [1, 0.5],
        "y": {"z": 2},
    }
    assert isinstance(from_json(8192.0), int)


async def test_extra_body_reaches_ollama_too(fake_ollama: FakeOllama) -> None:
    config = ProviderConfig(
        kind=ProviderKind.OLLAMA, api_base=fake_ollama.base_url, extra_body={"num_ctx": 16384}
    )
    provider = build_provider("ollama", config, None)
    await provider.chat(ProviderChatRequest(model="qwen3:8b", messages=MESSAGES), timeout_s=10)
    # The call's own options win over the config's.
    request = ProviderChatRequest(
        model="qwen3:8b", messages=MESSAGES, provider_options={"num_ctx": 4096}
    )
    await provider.chat(request, timeout_s=10)
    await provider.aclose()
    first, second = (r.json for r in fake_ollama.requests[-2:])
    assert first["options"]["num_ctx"] == 16384
    assert second["options"]["num_ctx"] == 4096


def test_the_docs_list_every_accepted_key() -> None:
    from pathlib import Path

    from llm_gateway_server.providers import options

    doc = (Path(__file__).parents[2] / "docs" / "provider-options.md").read_text()
    chat, embed = doc.split("## Embedding keys per kind")
    for section, table in ((chat, options.CHAT_KEYS), (embed, options.EMBED_KEYS)):
        rows = {
            line.split("|")[1].strip(" `"): line
            for line in section.splitlines()
            if line.startswith("| `")
        }
        for kind, keys in table.items():
            for key in keys or ():
                assert f"`{key}`" in rows[kind.value], (kind, key)
    for key in options.RESERVED:
        assert f"`{key}`" in doc
