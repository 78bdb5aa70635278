"""End to end: the gateway in front of a real llama.cpp llama-server (tiny generated model)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest

from llmgateway.v1 import chat_pb2, common_pb2, embed_pb2
from tests.service.conftest import Running, Start, start_gateway

from .llama import CHAT_CTX_PER_SLOT, LlamaServer

pytestmark = pytest.mark.e2e
__all__ = ["start_gateway"]

SYSTEM = "You are terse."
PROMPT = "Name three colours of the rainbow."
LONG = CHAT_CTX_PER_SLOT - 192  # ignoring EOS this runs for tens of seconds on this model


def _config(chat: LlamaServer, embed: LlamaServer) -> str:
    return f"""
server: {{listen: '127.0.0.1:0', drain_delay_s: 0}}
providers:
  dead: {{kind: openai_compatible, api_base: 'http://127.0.0.1:9/v1', locality: local,
          retry: {{max_attempts: 1}}, probe: {{enabled: false}}}}
  llama: {{kind: openai_compatible, api_base: '{chat.base_url}', locality: local,
           retry: {{max_attempts: 1}}, extra_body: {{ignore_eos: true}}, stream_unary: true}}
  llama-embed: {{kind: openai_compatible, api_base: '{embed.base_url}', locality: local}}
routes:
  chat: {{task: chat, targets: [{{provider: llama, model: {chat.model}}}]}}
  fallback: {{task: chat, targets: [{{provider: dead, model: x}}, {{provider: llama, model: {chat.model}}}]}}
  embedding: {{task: embedding, targets: [{{provider: llama-embed, model: {embed.model}}}]}}
cache: {{enabled: false}}
telemetry: {{metrics_listen: ''}}
"""


@pytest.fixture
async def gateway(
    start_gateway: Start, llama_chat_server: LlamaServer, llama_embed_server: LlamaServer
) -> AsyncIterator[Running]:
    gw = await start_gateway(_config(llama_chat_server, llama_embed_server))
    yield gw
    assert await llama_chat_server.wait_idle(timeout=10), llama_chat_server.slots()


def _messages() -> list[chat_pb2.Message]:
    return [
        chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content=SYSTEM),
        chat_pb2.Message(role=chat_pb2.ROLE_USER, content=PROMPT),
    ]


async def _direct(llama: LlamaServer, **body: object) -> dict[str, object]:
    payload = {
        "model": llama.model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "ignore_eos": True,
        **body,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{llama.base_url}/chat/completions", json=payload) as resp,
    ):
        assert resp.status == 200, await resp.text()
        result: dict[str, object] = await resp.json()
        return result


async def test_chat_usage_equals_llama_servers_own(
    gateway: Running, llama_chat_server: LlamaServer
) -> None:
    answer = await gateway.stub.Chat(
        chat_pb2.ChatRequest(
            model="chat", messages=_messages(), max_tokens=12, temperature=0, seed=7
        ),
        timeout=30,
    )
    direct = await _direct(llama_chat_server, max_tokens=12, temperature=0, seed=7)
    usage = direct["usage"]
    assert isinstance(usage, dict)
    assert answer.content
    assert answer.usage.prompt_tokens == usage["prompt_tokens"]
    assert answer.usage.completion_tokens == usage["completion_tokens"] == 12
    assert answer.finish_reason == chat_pb2.FINISH_REASON_LENGTH
    assert (answer.provider, answer.model) == ("llama", llama_chat_server.model)
    # Greedy decoding: the same tokens through the gateway as directly.
    choices = direct["choices"]
    assert isinstance(choices, list)
    assert answer.content == choices[0]["message"]["content"]


async def test_stream_chat_deltas_and_usage(
    gateway: Running, llama_chat_server: LlamaServer
) -> None:
    request = chat_pb2.StreamChatRequest(
        model="chat", messages=_messages(), max_tokens=16, temperature=0
    )
    messages = [m async for m in gateway.stub.StreamChat(request, timeout=30)]
    deltas = [m.delta.content for m in messages if m.HasField("delta")]
    summary = messages[-1].summary
    assert len(deltas) > 1
    assert summary.usage.completion_tokens == 16
    direct = await _direct(llama_chat_server, max_tokens=16, temperature=0)
    choices = direct["choices"]
    assert isinstance(choices, list)
    assert "".join(deltas) == choices[0]["message"]["content"]


async def test_embed_matches_llama_server(
    gateway: Running, llama_embed_server: LlamaServer
) -> None:
    inputs = ["hello world", "a rainbow of colours"]
    answer = await gateway.stub.Embed(
        embed_pb2.EmbedRequest(model="embedding", inputs=inputs), timeout=30
    )
    assert len(answer.embeddings) == 2
    direct = llama_embed_server.post_json(
        "/v1/embeddings", {"model": llama_embed_server.model, "input": inputs}
    )
    expected = [d["embedding"] for d in sorted(direct["data"], key=lambda d: d["index"])]
    for got, want in zip(answer.embeddings, expected, strict=True):
        assert len(got.values) == len(want) == 64
        assert all(
            math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
            for a, b in zip(got.values, want, strict=True)
        )
    assert answer.usage.prompt_tokens == direct["usage"]["prompt_tokens"]


async def test_cancelled_stream_frees_the_llama_slot(
    gateway: Running, llama_chat_server: LlamaServer
) -> None:
    call = gateway.stub.StreamChat(
        chat_pb2.StreamChatRequest(model="chat", messages=_messages(), max_tokens=LONG), timeout=120
    )
    first = await call.read()
    assert first.HasField("delta")
    assert llama_chat_server.busy_slots() == 1
    call.cancel()
    assert await llama_chat_server.wait_idle(timeout=2), llama_chat_server.slots()


async def test_deadline_shorter_than_generation_ends_it_in_time(
    gateway: Running, llama_chat_server: LlamaServer
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Chat(
            chat_pb2.ChatRequest(model="chat", messages=_messages(), max_tokens=LONG), timeout=1.0
        )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - started < 3.0
    # The gateway dropped the upstream request; llama-server notices a dropped non-streaming
    # request at its next poll of the connection (about once a second).
    assert await llama_chat_server.wait_idle(timeout=5), llama_chat_server.slots()


async def test_fallback_from_a_dead_port_to_llama_server(gateway: Running) -> None:
    answer = await gateway.stub.Chat(
        chat_pb2.ChatRequest(model="fallback", messages=_messages(), max_tokens=8), timeout=30
    )
    assert answer.provider == "llama"
    assert [a.provider for a in answer.attempts] == ["dead", "llama"]
    assert [a.outcome for a in answer.attempts] == [
        common_pb2.ATTEMPT_OUTCOME_UPSTREAM_ERROR,
        common_pb2.ATTEMPT_OUTCOME_SUCCESS,
    ]
