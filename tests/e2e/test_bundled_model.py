"""End to end on the bundled real model (SmolLM2-135M-Instruct): what `make run` serves.

The tiny random model (test_gateway_llama.py) stays where speed matters; these few checks show
the same paths hold on a real chat model with a chat template, real text and real embeddings.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from llmgateway.v1 import chat_pb2, embed_pb2
from tests.service.conftest import Running, Start, start_gateway

from .bundled import BUNDLED_EMBEDDING_DIM
from .llama import LlamaServer

pytestmark = pytest.mark.e2e
__all__ = ["start_gateway"]

SYSTEM = "You are a helpful assistant. Answer in one short sentence."
PROMPT = "Name three colours of the rainbow."
COLOURS = {"red", "orange", "yellow", "green", "blue", "indigo", "violet"}
#: Ignoring EOS this runs for many seconds on this model: long enough to cancel mid-flight.
LONG = 3000


def _config(llama: LlamaServer) -> str:
    # As in the shipped config: one provider for chat and embeddings, streamed even for Chat.
    return f"""
server: {{listen: '127.0.0.1:0', drain_delay_s: 0}}
providers:
  bundled: {{kind: openai_compatible, api_base: '{llama.base_url}', locality: local,
             stream_unary: true, retry: {{max_attempts: 1}}}}
  bundled-long: {{kind: openai_compatible, api_base: '{llama.base_url}', locality: local,
                  retry: {{max_attempts: 1}}, extra_body: {{ignore_eos: true}}}}
routes:
  chat: {{task: chat, targets: [{{provider: bundled, model: {llama.model}}}]}}
  long: {{task: chat, targets: [{{provider: bundled-long, model: {llama.model}}}]}}
  embedding: {{task: embedding, targets: [{{provider: bundled, model: {llama.model}}}]}}
cache: {{enabled: false}}
telemetry: {{metrics_listen: ''}}
"""


@pytest.fixture
async def gateway(start_gateway: Start, bundled_server: LlamaServer) -> AsyncIterator[Running]:
    gw = await start_gateway(_config(bundled_server))
    yield gw
    assert await bundled_server.wait_idle(timeout=10), bundled_server.slots()


def _messages() -> list[chat_pb2.Message]:
    return [
        chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content=SYSTEM),
        chat_pb2.Message(role=chat_pb2.ROLE_USER, content=PROMPT),
    ]


async def _direct(llama: LlamaServer, **body: object) -> dict[str, Any]:
    payload = {
        "model": llama.model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        **body,
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.post(f"{llama.base_url}/chat/completions", json=payload) as resp,
    ):
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def test_chat_answers_real_text_with_llama_servers_usage(
    gateway: Running, bundled_server: LlamaServer
) -> None:
    answer = await gateway.stub.Chat(
        chat_pb2.ChatRequest(
            model="chat", messages=_messages(), max_tokens=24, temperature=0, seed=7
        ),
        timeout=60,
    )
    direct = await _direct(bundled_server, max_tokens=24, temperature=0, seed=7)
    words = set(re.findall(r"[a-z]+", answer.content.lower()))
    assert words & COLOURS, answer.content
    # Greedy decoding: the same tokens through the gateway as directly, counted the same.
    assert answer.content == direct["choices"][0]["message"]["content"]
    assert answer.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert answer.usage.completion_tokens == direct["usage"]["completion_tokens"]
    assert (answer.provider, answer.model) == ("bundled", bundled_server.model)


async def test_stream_chat_sends_the_answer_in_deltas(
    gateway: Running, bundled_server: LlamaServer
) -> None:
    request = chat_pb2.StreamChatRequest(
        model="chat", messages=_messages(), max_tokens=24, temperature=0
    )
    messages = [m async for m in gateway.stub.StreamChat(request, timeout=60)]
    deltas = [m.delta.content for m in messages if m.HasField("delta")]
    summary = messages[-1].summary
    direct = await _direct(bundled_server, max_tokens=24, temperature=0)
    assert len(deltas) > 1
    assert "".join(deltas) == direct["choices"][0]["message"]["content"]
    assert summary.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert summary.usage.completion_tokens == direct["usage"]["completion_tokens"]


async def test_embed_matches_llama_server(gateway: Running, bundled_server: LlamaServer) -> None:
    inputs = ["The sky is blue.", "Grass is green.", "Compilers translate source code."]
    answer = await gateway.stub.Embed(
        embed_pb2.EmbedRequest(model="embedding", inputs=inputs), timeout=60
    )
    direct = bundled_server.post_json(
        "/v1/embeddings", {"model": bundled_server.model, "input": inputs}
    )
    expected = [d["embedding"] for d in sorted(direct["data"], key=lambda d: d["index"])]
    got = [list(e.values) for e in answer.embeddings]
    for mine, theirs in zip(got, expected, strict=True):
        assert len(mine) == len(theirs) == BUNDLED_EMBEDDING_DIM
        assert all(
            math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
            for a, b in zip(mine, theirs, strict=True)
        )
    assert answer.usage.prompt_tokens == direct["usage"]["prompt_tokens"]

    # A real model: the two sentences about colours are closer to each other than to the third.
    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    assert cosine(got[0], got[1]) > cosine(got[0], got[2])


async def test_a_cancelled_stream_frees_the_slot(
    gateway: Running, bundled_server: LlamaServer
) -> None:
    call = gateway.stub.StreamChat(
        chat_pb2.StreamChatRequest(model="long", messages=_messages(), max_tokens=LONG),
        timeout=120,
    )
    first = await call.read()
    assert first.HasField("delta")
    assert bundled_server.busy_slots() == 1
    call.cancel()
    assert await bundled_server.wait_idle(timeout=5), bundled_server.slots()
