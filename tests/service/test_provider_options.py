"""Per-request provider options and REASONING_EFFORT_NONE through a real server."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from llmgateway.client import AsyncGatewayClient
from llmgateway.v1 import chat_pb2, embed_pb2
from tests.fakes import FakeOpenAI
from tests.service.conftest import Running
from tests.service.test_validation import error_info


def _options(**values: object) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _chat(**kwargs: object) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(
        model="chat",
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hello")],
        **kwargs,  # type: ignore[arg-type]
    )


async def test_options_reach_the_upstream_body(gateway: Running, upstream: FakeOpenAI) -> None:
    options = _options(top_k=40, min_p=0.05, chat_template_kwargs={"enable_thinking": True})
    await gateway.stub.Chat(_chat(provider_options=options), timeout=10)
    body = upstream.last_request.json
    assert body["top_k"] == 40 and isinstance(body["top_k"], int)
    assert body["min_p"] == 0.05
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert body["model"] == "m1" and body["messages"][0]["content"] == "hello"
    # Streams take them too.
    stream_request = chat_pb2.StreamChatRequest.FromString(
        _chat(provider_options=_options(repeat_penalty=1.1)).SerializeToString()
    )
    async for _ in gateway.stub.StreamChat(stream_request, timeout=10):
        pass
    assert upstream.last_request.json["repeat_penalty"] == 1.1
    assert upstream.last_request.json["stream"] is True


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("model", "set by the gateway"),
        ("stream", "set by the gateway"),
        ("num_ctx", "not an option"),
    ],
)
async def test_reserved_and_unknown_keys_are_refused(
    gateway: Running, upstream: FakeOpenAI, key: str, why: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Chat(_chat(provider_options=_options(**{key: 1})), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == f"provider_options.{key}"
    assert why in (caught.value.details() or "")
    assert upstream.requests == []


async def test_embedding_options(gateway: Running, upstream: FakeOpenAI) -> None:
    request = embed_pb2.EmbedRequest(
        model="embedding", inputs=["a"], provider_options=_options(user="u-1")
    )
    await gateway.stub.Embed(request, timeout=10)
    assert upstream.last_request.json["user"] == "u-1"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Embed(
            embed_pb2.EmbedRequest(
                model="embedding", inputs=["a"], provider_options=_options(input=["x"])
            ),
            timeout=10,
        )
    assert error_info(caught.value).metadata["field"] == "provider_options.input"


async def test_reasoning_effort_none_turns_thinking_off(
    gateway: Running, upstream: FakeOpenAI
) -> None:
    await gateway.stub.Chat(_chat(reasoning_effort=chat_pb2.REASONING_EFFORT_NONE), timeout=10)
    body = upstream.last_request.json
    # vLLM and llama.cpp refuse an effort of "none"; Qwen-style templates take this.
    assert "reasoning_effort" not in body
    assert body["chat_template_kwargs"] == {"enable_thinking": False}


async def test_python_client_sends_options_and_effort_none(
    gateway: Running, upstream: FakeOpenAI
) -> None:
    async with AsyncGatewayClient(gateway.address) as client:
        await client.chat(
            "hello", model="chat", reasoning_effort="none", provider_options={"top_k": 5}
        )
    body = upstream.last_request.json
    assert body["top_k"] == 5
    assert body["chat_template_kwargs"] == {"enable_thinking": False}


async def test_python_client_embeds_with_options(gateway: Running, upstream: FakeOpenAI) -> None:
    async with AsyncGatewayClient(gateway.address) as client:
        vectors = await client.embed(["a"], model="embedding", provider_options={"user": "u-2"})
    assert len(vectors) == 1
    assert upstream.last_request.json["user"] == "u-2"
