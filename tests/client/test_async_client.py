"""AsyncGatewayClient against a real grpc.aio server running a fake GatewayService."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import grpc
import pytest
import trustme

from llmgateway.client import AsyncGatewayClient, GatewayError
from llmgateway.testing import FakeGateway, rich_status, start_server, unavailable
from llmgateway.v1 import chat_pb2, common_pb2

API_KEY = "sk-test-async-0123456789"


async def test_chat_sends_prompt_and_options(fake: FakeGateway, aio_target: str) -> None:
    async with AsyncGatewayClient(aio_target) as client:
        answer = await client.chat(
            "Describe it", model="vision", system="Be brief.", privacy="flexible", task="vision"
        )
        text = await client.complete("ping")
    assert answer.content == "echo: Describe it"
    assert text == "echo: ping"
    sent: chat_pb2.ChatRequest = fake.calls[0].request
    assert [m.role for m in sent.messages] == [chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_USER]
    assert sent.privacy == common_pb2.PRIVACY_FLEXIBLE
    assert sent.task == common_pb2.TASK_VISION
    assert not sent.HasField("temperature")


async def test_api_key_and_request_id_metadata(fake: FakeGateway, aio_target: str) -> None:
    async with AsyncGatewayClient(aio_target, api_key=API_KEY) as client:
        answer = await client.chat("Hi", request_id="req-a1")
    assert fake.calls[0].metadata["authorization"] == f"Bearer {API_KEY}"
    assert fake.calls[0].metadata["x-request-id"] == "req-a1"
    assert answer.request_id == "req-a1"


async def test_deadlines(fake: FakeGateway, aio_target: str) -> None:
    async with AsyncGatewayClient(aio_target, timeout=20.0) as client:
        await client.health()
    assert fake.calls[0].time_remaining is not None
    assert 10.0 < fake.calls[0].time_remaining <= 20.5

    fake.delay = 30
    async with AsyncGatewayClient(aio_target, timeout=0.3) as client:
        with pytest.raises(GatewayError) as err:
            await client.chat("Hi")
        assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(GatewayError) as err:
            await client.embed(["a"], timeout=0.1)
        assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED

    fake.delay = 0.5
    async with AsyncGatewayClient(aio_target, timeout=0.1) as client:
        assert await client.complete("Hi", timeout=10) == "echo: Hi"


async def test_unavailable_is_retried_and_invalid_argument_is_not(
    fake: FakeGateway, aio_target: str
) -> None:
    fake.failures = [unavailable(), unavailable()]
    async with AsyncGatewayClient(aio_target) as client:
        assert await client.complete("Hi") == "echo: Hi"
        assert len(fake.calls) == 3

        fake.calls.clear()
        fake.failures = [
            rich_status(grpc.StatusCode.INVALID_ARGUMENT, "no messages", "INVALID_FIELD")
        ]
        with pytest.raises(GatewayError) as err:
            await client.chat([])
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(fake.calls) == 1


async def test_error_details_are_decoded(fake: FakeGateway, aio_target: str) -> None:
    fake.failures = [
        rich_status(
            grpc.StatusCode.NOT_FOUND,
            "no route named 'nope'",
            "ROUTE_NOT_FOUND",
            metadata={"route": "nope"},
        ),
        rich_status(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "token rate limit reached",
            "TOKEN_RATE_LIMITED",
            retry_after=2.25,
        ),
    ]
    async with AsyncGatewayClient(aio_target, api_key=API_KEY) as client:
        with pytest.raises(GatewayError) as not_found:
            await client.chat("Hi", model="nope", request_id="req-nf")
        with pytest.raises(GatewayError) as limited:
            await client.embed(["a"])
    assert not_found.value.code == grpc.StatusCode.NOT_FOUND
    assert not_found.value.reason == "ROUTE_NOT_FOUND"
    assert not_found.value.metadata == {"route": "nope"}
    assert not_found.value.request_id == "req-nf"
    assert not_found.value.retry_after is None
    assert limited.value.reason == "TOKEN_RATE_LIMITED"
    assert limited.value.retry_after == pytest.approx(2.25)
    assert limited.value.request_id == "generated-2"
    assert API_KEY not in str(limited.value)


async def test_stream_and_stream_text(fake: FakeGateway, aio_target: str) -> None:
    fake.failures = [unavailable()]
    async with AsyncGatewayClient(aio_target) as client:
        events = [event async for event in client.stream("Hi", reasoning_effort="low")]
        text = [piece async for piece in client.stream_text("Hi")]
    assert [event.WhichOneof("event") for event in events] == ["delta"] * 3 + ["summary"]
    assert text == ["Hel", "lo"]
    # The first attempt failed before any message and was retried.
    assert fake.methods() == ["StreamChat"] * 3
    assert fake.calls[0].request.reasoning_effort == chat_pb2.REASONING_EFFORT_LOW


async def test_cut_stream_raises_after_the_deltas(fake: FakeGateway, aio_target: str) -> None:
    fake.cut_stream = True
    received: list[chat_pb2.StreamChatResponse] = []

    async def read_all(client: AsyncGatewayClient) -> None:
        async for event in client.stream("Hi"):
            received.append(event)

    async with AsyncGatewayClient(aio_target) as client:
        with pytest.raises(GatewayError) as err:
            await read_all(client)
    assert received[-1].summary.cut
    assert err.value.reason == "STREAM_INTERRUPTED"
    assert len(fake.calls) == 1


async def test_leaving_a_stream_early_cancels_the_call(fake: FakeGateway, aio_target: str) -> None:
    fake.stream_pause = 30
    async with AsyncGatewayClient(aio_target) as client:
        async with aclosing(client.stream_text("Hi")) as pieces:
            first = await anext(pieces)
        assert first == "Hel"
        # The server's handler is cancelled (and so would be the upstream).
        assert await asyncio.to_thread(fake.stream_cancelled.wait, 10)
        # The channel is still usable after the cancelled stream.
        assert await client.complete("again") == "echo: again"


async def test_embed_list_models_health_stats(fake: FakeGateway, aio_target: str) -> None:
    async with AsyncGatewayClient(aio_target) as client:
        vectors = await client.embed(["xy", "z"], privacy="strict")
        models = await client.list_models()
        health = await client.health()
        stats = await client.stats(route="chat")
    assert vectors == [[2.0, 0.0], [1.0, 1.0]]
    assert fake.calls[0].request.privacy == common_pb2.PRIVACY_STRICT
    assert models.routes[0].name == "chat"
    assert health.ready
    assert stats.stats[0].requests == 2
    assert fake.methods() == ["Embed", "ListModels", "Health", "GetStats"]


async def test_concurrent_calls_share_one_channel(fake: FakeGateway, aio_target: str) -> None:
    async with AsyncGatewayClient(aio_target) as client:
        answers = await asyncio.gather(*(client.complete(f"q{i}") for i in range(8)))
    assert answers == [f"echo: q{i}" for i in range(8)]


def test_client_made_outside_a_loop_works_inside_one(threaded_target: str) -> None:
    client = AsyncGatewayClient(threaded_target)

    async def use() -> str:
        async with client:
            return await client.complete("Hi")

    assert asyncio.run(use()) == "echo: Hi"


async def test_closed_client_refuses_calls(aio_target: str) -> None:
    client = AsyncGatewayClient(aio_target)
    await client.health()
    await client.close()
    with pytest.raises(ValueError, match="closed"):
        await client.health()


async def test_messages_over_max_message_bytes_are_refused(
    fake: FakeGateway, aio_target: str
) -> None:
    async with AsyncGatewayClient(aio_target, max_message_bytes=1024) as client:
        with pytest.raises(GatewayError) as err:
            await client.chat("x" * 4096)
        assert await client.complete("small") == "echo: small"
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.methods() == ["Chat"]


async def test_tls_with_a_private_ca(fake: FakeGateway) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_credentials = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]
    )
    server, target = await start_server(fake, server_credentials)
    try:
        trusted = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        async with AsyncGatewayClient(target, credentials=trusted, api_key=API_KEY) as client:
            assert await client.complete("over TLS") == "echo: over TLS"
        # Without the private CA the server's certificate is not trusted.
        async with AsyncGatewayClient(target, secure=True, timeout=5) as client:
            with pytest.raises(GatewayError) as err:
                await client.health()
        assert err.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(grace=None)
    assert fake.calls[0].metadata["authorization"] == f"Bearer {API_KEY}"


class _TagCalls(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds one metadata pair to every unary call, as a caller's own interceptor would."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), ("x-team", "search"))
        return await continuation(details._replace(metadata=metadata), request)


async def test_from_channel_uses_the_callers_channel(fake: FakeGateway, aio_target: str) -> None:
    channel = grpc.aio.insecure_channel(aio_target, interceptors=[_TagCalls()])
    fake.embed_reply([[0.5, 0.5]])
    async with AsyncGatewayClient.from_channel(channel, api_key=API_KEY, timeout=9) as client:
        assert await client.embed("text") == [[0.5, 0.5]]
    (call,) = fake.calls
    assert call.metadata["x-team"] == "search"
    assert call.metadata["authorization"] == f"Bearer {API_KEY}"
    assert call.time_remaining is not None and 0 < call.time_remaining <= 10
