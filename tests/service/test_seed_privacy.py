"""The shipped privacy-router config through a real server, with fake Ollama and Gemini.

The seed's table: STRICT goes to the local Ollama models; FLEXIBLE goes to Gemini first
(chat and OCR ``gemini-2.5-flash``, vision ``gemini-2.5-pro``) with the local model as
fallback; embeddings stay local for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml

from llmgateway.v1 import chat_pb2, common_pb2, embed_pb2
from tests.fakes import Behaviour, FakeGemini, FakeOpenAI, Fault
from tests.service.conftest import Running, Start
from tests.service.test_validation import error_info

CONFIG = Path(__file__).parents[2] / "configs" / "seed-privacy-routing.yaml"

LOCAL = {
    common_pb2.TASK_CHAT: "CognitiveComputations/dolphin-mistral-nemo:latest",
    common_pb2.TASK_VISION: "qwen3-vl:8b",
    common_pb2.TASK_OCR: "deepseek-ocr:3b",
}
CLOUD = {
    common_pb2.TASK_CHAT: "gemini-2.5-flash",
    common_pb2.TASK_VISION: "gemini-2.5-pro",
    common_pb2.TASK_OCR: "gemini-2.5-flash",
}


def seed_config(ollama: FakeOpenAI, gemini: FakeGemini) -> str:
    """The shipped file, with the listen address, Gemini's base and probes made testable."""
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw["server"]["listen"] = "127.0.0.1:0"
    raw["server"]["drain_delay_s"] = 0
    raw["providers"]["ollama"]["probe"] = {"enabled": False}
    raw["providers"]["ollama"]["retry"] = {"max_attempts": 1}
    raw["providers"]["ollama"]["api_base"] = ollama.base_url
    raw["providers"]["gemini"]["api_base"] = gemini.base_url
    raw["providers"]["gemini"]["api_key_env"] = "SECRET_KEY"
    raw["providers"]["gemini"]["retry"] = {"max_attempts": 1}
    raw["telemetry"] = {"metrics_listen": ""}
    return yaml.safe_dump(raw)


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(Behaviour(content="From Gemini.")) as fake:
        yield fake


@pytest.fixture
async def seed(start_gateway: Start, upstream: FakeOpenAI, gemini: FakeGemini) -> Running:
    upstream.behaviour = Behaviour(content="From Ollama.")
    return await start_gateway(seed_config(upstream, gemini))


def _chat(task: int, privacy: int) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(
        task=task,  # type: ignore[arg-type]
        privacy=privacy,  # type: ignore[arg-type]
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="confidential text")],
    )


@pytest.mark.parametrize("task", list(LOCAL))
async def test_strict_goes_to_ollama(
    seed: Running, upstream: FakeOpenAI, gemini: FakeGemini, task: int
) -> None:
    for privacy in (common_pb2.PRIVACY_STRICT, common_pb2.PRIVACY_UNSPECIFIED):
        answer = await seed.stub.Chat(_chat(task, privacy), timeout=10)
        assert (answer.provider, answer.model, answer.content) == (
            "ollama",
            LOCAL[task],
            "From Ollama.",
        )
    assert gemini.requests == []


@pytest.mark.parametrize("task", list(LOCAL))
async def test_flexible_goes_to_gemini_first(
    seed: Running, upstream: FakeOpenAI, gemini: FakeGemini, task: int
) -> None:
    answer = await seed.stub.Chat(_chat(task, common_pb2.PRIVACY_FLEXIBLE), timeout=10)
    assert (answer.provider, answer.model, answer.content) == (
        "gemini",
        CLOUD[task],
        "From Gemini.",
    )
    assert CLOUD[task] in gemini.requests[-1].path
    assert upstream.requests == []


async def test_flexible_falls_back_to_the_local_model(
    seed: Running, upstream: FakeOpenAI, gemini: FakeGemini
) -> None:
    gemini.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=503)
    answer = await seed.stub.Chat(
        _chat(common_pb2.TASK_CHAT, common_pb2.PRIVACY_FLEXIBLE), timeout=10
    )
    assert (answer.provider, answer.model) == ("ollama", LOCAL[common_pb2.TASK_CHAT])
    assert len(gemini.requests) == 1


async def test_strict_failure_names_the_cloud_target_skipped(
    seed: Running, upstream: FakeOpenAI, gemini: FakeGemini
) -> None:
    await upstream.refuse()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await seed.stub.Chat(_chat(common_pb2.TASK_CHAT, common_pb2.PRIVACY_STRICT), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "skipped for STRICT privacy: gemini/gemini-2.5-flash" in (caught.value.details() or "")
    assert gemini.requests == []


@pytest.mark.parametrize("privacy", [common_pb2.PRIVACY_STRICT, common_pb2.PRIVACY_FLEXIBLE])
async def test_embeddings_are_served_locally(
    seed: Running, upstream: FakeOpenAI, gemini: FakeGemini, privacy: int
) -> None:
    answer = await seed.stub.Embed(
        embed_pb2.EmbedRequest(inputs=["a", "b"], privacy=privacy),  # type: ignore[arg-type]
        timeout=10,
    )
    assert (answer.provider, answer.model) == ("ollama", "nomic-embed-text:latest")
    assert len(answer.embeddings) == 2
    assert gemini.requests == []


async def test_a_huge_model_name_is_cut_in_the_error(seed: Running) -> None:
    request = _chat(common_pb2.TASK_CHAT, common_pb2.PRIVACY_STRICT)
    request.model = "m" * 6000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await seed.stub.Chat(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(caught.value.details() or "") < 400
    info = error_info(caught.value)
    assert all(len(value) < 300 for value in info.metadata.values())


async def test_local_think_tags_reach_the_caller_as_reasoning(
    seed: Running, upstream: FakeOpenAI
) -> None:
    pieces = ("<thi", "nk>Private ", "thoughts.</th", "ink>\n\nThe ", "answer.")
    upstream.behaviour = Behaviour(content="".join(pieces), content_pieces=pieces)
    answer = await seed.stub.Chat(
        _chat(common_pb2.TASK_CHAT, common_pb2.PRIVACY_STRICT), timeout=10
    )
    assert (answer.reasoning_content, answer.content) == ("Private thoughts.", "The answer.")
    request = chat_pb2.StreamChatRequest.FromString(
        _chat(common_pb2.TASK_CHAT, common_pb2.PRIVACY_STRICT).SerializeToString()
    )
    reasoning, content = [], []
    async for message in seed.stub.StreamChat(request, timeout=10):
        if message.HasField("delta"):
            reasoning.append(message.delta.reasoning_content)
            content.append(message.delta.content)
        else:
            assert message.summary.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert "".join(reasoning) == "Private thoughts."
    assert "".join(content) == "The answer."
