"""Direct checks of the llama-server fixtures (no gateway): the ground truth e2e tests build on."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from .llama import CHAT_CTX_PER_SLOT, CHAT_SLOTS, LlamaServer
from .tiny_model import TinyModelSpec

pytestmark = pytest.mark.e2e

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """Decoded `data:` payloads of an OpenAI-style event stream, up to [DONE]."""
    async for raw in resp.content:
        line = raw.decode().strip()
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


async def test_chat_completion_returns_content_and_usage(
    llama_chat_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    body = {"model": llama_chat_server.model, "messages": MESSAGES, "max_tokens": 12, "seed": 7}
    answer = await _post(http, f"{llama_chat_server.base_url}/chat/completions", body)

    assert answer["model"] == llama_chat_server.model
    choice = answer["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] in {"length", "stop"}
    usage = answer["usage"]
    assert 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_prompt_tokens_match_server_tokenizer(
    llama_chat_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    body = {"model": llama_chat_server.model, "messages": MESSAGES, "max_tokens": 1}
    answer = await _post(http, f"{llama_chat_server.base_url}/chat/completions", body)

    # The same path the server takes: chat template, then tokenize with BOS and special tokens.
    root = llama_chat_server.root_url
    prompt = (await _post(http, f"{root}/apply-template", {"messages": MESSAGES}))["prompt"]
    assert "[INST] Name three colours" in prompt
    tokens = await _post(http, f"{root}/tokenize", {"content": prompt, "add_special": True})
    assert answer["usage"]["prompt_tokens"] == len(tokens["tokens"])


async def test_stream_yields_deltas_and_final_usage(
    llama_chat_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    body = {
        "model": llama_chat_server.model,
        "messages": MESSAGES,
        "max_tokens": 16,
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = f"{llama_chat_server.base_url}/chat/completions"
    async with http.post(url, json=body) as resp:
        assert resp.status == 200
        events = [event async for event in _sse_events(resp)]

    deltas = [e["choices"][0]["delta"].get("content") for e in events if e.get("choices")]
    texts = [d for d in deltas if d]
    assert len(texts) >= 2
    final = events[-1]
    assert final["choices"] == []
    usage = final["usage"]
    assert len(texts) <= usage["completion_tokens"] <= 16
    assert usage["prompt_tokens"] > 0
    assert not any(e.get("usage") for e in events[:-1])


async def test_cancelled_stream_frees_its_slot(
    llama_chat_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    assert len(llama_chat_server.slots()) == CHAT_SLOTS
    body = {
        "model": llama_chat_server.model,
        "messages": MESSAGES,
        # Ignoring EOS, this runs for tens of seconds here: only the client leaving can end it
        # within the wait below.
        "max_tokens": CHAT_CTX_PER_SLOT - 192,
        "ignore_eos": True,
        "stream": True,
    }
    url = f"{llama_chat_server.base_url}/chat/completions"
    async with http.post(url, json=body) as resp:
        events = _sse_events(resp)
        await anext(events)
        assert llama_chat_server.busy_slots() == 1
        resp.close()  # drop the connection mid-stream, as a cancelled client would

    assert await llama_chat_server.wait_idle(timeout=2), llama_chat_server.slots()


async def test_embeddings_have_model_dimension(
    llama_embed_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    body = {"model": llama_embed_server.model, "input": ["hello world", "a rainbow of colours"]}
    answer = await _post(http, f"{llama_embed_server.base_url}/embeddings", body)

    vectors = [item["embedding"] for item in sorted(answer["data"], key=lambda d: d["index"])]
    assert len(vectors) == 2
    n_embd = TinyModelSpec().n_embd
    assert all(len(v) == n_embd for v in vectors)
    # Mean pooling output is L2-normalised; different inputs give different vectors.
    assert all(math.isclose(math.hypot(*v), 1.0, rel_tol=1e-3) for v in vectors)
    assert vectors[0] != vectors[1]
    assert answer["usage"]["prompt_tokens"] > 0


async def test_models_endpoint_reports_alias_and_shape(
    llama_chat_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{llama_chat_server.base_url}/models") as resp:
        models = await resp.json()
    [model] = models["data"]
    assert model["id"] == llama_chat_server.model
    assert model["meta"]["n_embd"] == TinyModelSpec().n_embd
