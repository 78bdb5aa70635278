"""GatewayClient in-process on grpc_testing's channel: request building, retries, error mapping.

grpc_testing "plays server" for each call the client makes: the test takes the
call, reads what the client sent and ends it as it likes. It cannot drive a
grpc.aio servicer (grpc/grpc#24942), so the asyncio client is tested against
real servers only. Each client call runs in a worker thread, since it blocks
until the test ends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
import grpc_testing
import pytest
from grpc_status import rpc_status

from llmgateway.client import FinishReason, GatewayClient, GatewayError
from llmgateway.testing import rich_status, unavailable
from llmgateway.v1 import chat_pb2, common_pb2, embed_pb2, gateway_service_pb2

SERVICE = gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"]
CHAT = SERVICE.methods_by_name["Chat"]
STREAM = SERVICE.methods_by_name["StreamChat"]
EMBED = SERVICE.methods_by_name["Embed"]
API_KEY = "sk-test-0123456789"

T = TypeVar("T")


class Harness:
    """A client on a grpc_testing channel, and a worker thread to make its calls from."""

    def __init__(self) -> None:
        self.channel = grpc_testing.channel([SERVICE], grpc_testing.strict_real_time())
        self.client = GatewayClient.from_channel(self.channel, api_key=API_KEY, timeout=42)
        self._pool = ThreadPoolExecutor(max_workers=1)

    def call(self, function: Callable[[], T]) -> Future[T]:
        return self._pool.submit(function)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def harness() -> Iterator[Harness]:
    running = Harness()
    yield running
    running.close()


def failed(status: Any) -> tuple[Any, grpc.StatusCode, str]:
    """Trailing metadata, code and details of a failure carrying a google.rpc.Status."""
    plain = rpc_status.to_status(status)
    return (*plain.trailing_metadata, ("x-request-id", "gw-7")), plain.code, plain.details


def test_chat_request_and_metadata_are_built_from_the_options(harness: Harness) -> None:
    answer = harness.call(
        lambda: harness.client.chat(
            [{"role": "user", "content": "Hi"}],
            model="chat",
            system="Be brief.",
            privacy="strict",
            reasoning_effort="low",
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            tool_choice="auto",
            response_format={"type": "json_object"},
            stop="END",
            seed=7,
            request_id="job-1",
        )
    )
    metadata, request, rpc = harness.channel.take_unary_unary(CHAT)
    reply = chat_pb2.ChatResponse(content="Hello", finish_reason=chat_pb2.FINISH_REASON_LENGTH)
    rpc.terminate(reply, (), grpc.StatusCode.OK, "")
    assert answer.result().finish_reason is FinishReason.LENGTH
    assert ("authorization", f"Bearer {API_KEY}") in metadata
    assert ("x-request-id", "job-1") in metadata
    assert request.model == "chat"
    assert [m.role for m in request.messages] == [chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_USER]
    assert request.privacy == common_pb2.PRIVACY_STRICT
    assert request.reasoning_effort == chat_pb2.REASONING_EFFORT_LOW
    assert request.tools[0].name == "f"
    assert request.tool_choice.mode == chat_pb2.TOOL_CHOICE_MODE_AUTO
    assert request.response_format.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    assert (list(request.stop), request.seed) == (["END"], 7)
    assert not request.HasField("temperature")


def test_error_details_are_mapped(harness: Harness) -> None:
    answer = harness.call(lambda: harness.client.chat("Hi"))
    _, _, rpc = harness.channel.take_unary_unary(CHAT)
    status = rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "rate limit",
        "RATE_LIMITED",
        retry_after=1.5,
        metadata={"limit": "10/minute"},
    )
    rpc.terminate(None, *failed(status))
    with pytest.raises(GatewayError) as err:
        answer.result()
    error = err.value
    assert (error.code, error.reason, error.domain) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        "llm-gateway",
    )
    assert (error.retry_after, error.metadata, error.request_id) == (
        1.5,
        {"limit": "10/minute"},
        "gw-7",
    )
    assert isinstance(error.__cause__, grpc.RpcError)


def test_a_status_without_details_keeps_code_and_message(harness: Harness) -> None:
    answer = harness.call(lambda: harness.client.chat("Hi", request_id="mine"))
    _, _, rpc = harness.channel.take_unary_unary(CHAT)
    rpc.terminate(None, (), grpc.StatusCode.PERMISSION_DENIED, "no")
    with pytest.raises(GatewayError) as err:
        answer.result()
    assert (err.value.code, err.value.message, err.value.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "no",
        "",
    )
    assert err.value.status is None
    assert err.value.request_id == "mine"


def test_the_client_adds_no_retry_of_its_own(harness: Harness) -> None:
    """Retries are the channel's (gRPC core, UNAVAILABLE only): one call is one RPC here.

    The call's future completes only because no second RPC was made; a
    client-side retry would wait for the test to take that RPC.
    """
    answer = harness.call(lambda: harness.client.embed(["a"]))
    _, request, rpc = harness.channel.take_unary_unary(EMBED)
    rpc.terminate(None, *failed(unavailable()))
    with pytest.raises(GatewayError) as err:
        answer.result()
    assert (err.value.code, err.value.reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "ALL_TARGETS_FAILED",
    )
    assert list(request.inputs) == ["a"]


def test_embed_answer_is_one_vector_per_input(harness: Harness) -> None:
    vectors = harness.call(lambda: harness.client.embed("one"))
    _, request, rpc = harness.channel.take_unary_unary(EMBED)
    reply = embed_pb2.EmbedResponse(embeddings=[embed_pb2.Embedding(values=[0.5, 0.25])])
    rpc.terminate(reply, (), grpc.StatusCode.OK, "")
    assert vectors.result() == [[0.5, 0.25]]
    assert list(request.inputs) == ["one"]


def test_stream_sends_a_stream_request_and_maps_a_cut(harness: Harness) -> None:
    events = harness.call(lambda: list(harness.client.stream_text("Hi", model="chat")))
    _, request, rpc = harness.channel.take_unary_stream(STREAM)
    assert isinstance(request, chat_pb2.StreamChatRequest)
    assert request.model == "chat"
    rpc.send_response(chat_pb2.StreamChatResponse(delta=chat_pb2.ChatDelta(content="Hel")))
    cut = rich_status(grpc.StatusCode.UNAVAILABLE, "upstream failed", "STREAM_INTERRUPTED")
    rpc.terminate(*failed(cut))
    with pytest.raises(GatewayError) as err:
        events.result()
    assert err.value.reason == "STREAM_INTERRUPTED"


def test_leaving_a_stream_early_cancels_the_rpc(harness: Harness) -> None:
    def first_piece() -> str:
        for piece in harness.client.stream_text("Hi"):
            return piece
        return ""

    piece = harness.call(first_piece)
    _, _, rpc = harness.channel.take_unary_stream(STREAM)
    rpc.send_response(chat_pb2.StreamChatResponse(delta=chat_pb2.ChatDelta(content="Hel")))
    assert piece.result() == "Hel"
    rpc.cancelled()  # Blocks until the client cancelled; the test's timeout bounds it.
