"""Bad input gets INVALID_ARGUMENT or NOT_FOUND naming the field, never INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgateway.v1 import chat_pb2, embed_pb2
from tests.fakes import FakeOpenAI
from tests.service.conftest import Running


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)
    assert status is not None, "no google.rpc.Status in the trailers"
    infos = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    assert len(infos) == 1, "exactly one ErrorInfo"
    assert infos[0].domain == "llm-gateway"
    return infos[0]


def user(text: str = "hi") -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, content=text)


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({}, "messages"),
        ({"messages": [chat_pb2.Message(content="no role")]}, "messages[0].role"),
        ({"messages": [chat_pb2.Message(role=99, content="x")]}, "messages[0].role"),
        ({"messages": [user()], "max_tokens": -1}, "max_tokens"),
        ({"messages": [user()], "temperature": 3.0}, "temperature"),
        ({"messages": [user()], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        (
            {
                "messages": [
                    chat_pb2.Message(
                        role=chat_pb2.ROLE_USER,
                        parts=[
                            chat_pb2.Part(
                                image=chat_pb2.Image(data=b"x" * 2000, mime_type="image/png")
                            )
                        ],
                    )
                ]
            },
            "messages[0].parts[0].image.data",
        ),
        ({"messages": [user("x" * 300_000)]}, "request"),
    ],
)
async def test_chat_rejects_bad_fields(
    gateway: Running, upstream: FakeOpenAI, request_kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Chat(chat_pb2.ChatRequest(**request_kwargs), timeout=5)  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()
    assert error_info(caught.value).metadata["field"] == field
    assert upstream.requests == []


async def test_unknown_route_is_not_found(gateway: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Chat(chat_pb2.ChatRequest(model="nope", messages=[user()]), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in caught.value.details()
    assert error_info(caught.value).reason == "ROUTE_NOT_FOUND"


@pytest.mark.parametrize(("inputs", "field"), [([], "inputs"), (["ok", ""], "inputs[1]")])
async def test_embed_rejects_empty_input(gateway: Running, inputs: list[str], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Embed(embed_pb2.EmbedRequest(inputs=inputs), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == field


async def test_stream_rejects_bad_fields(gateway: Running) -> None:
    call = gateway.stub.StreamChat(chat_pb2.StreamChatRequest(), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages" in caught.value.details()
