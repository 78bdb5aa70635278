"""Chat, StreamChat and Embed through a real server to a real fake upstream."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmgateway.v1 import chat_pb2, common_pb2, embed_pb2, models_pb2
from tests.fakes import Behaviour, FakeOpenAI, FakeUsage, Fault
from tests.service.conftest import Running, Start, config_for


def user(text: str = "hi") -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, content=text)


async def test_chat_answers_with_usage_and_request_id(
    gateway: Running, upstream: FakeOpenAI
) -> None:
    upstream.behaviour = Behaviour(content="Hola", usage=FakeUsage(5, 3))
    call = gateway.stub.Chat(
        chat_pb2.ChatRequest(model="chat", messages=[user()]),
        timeout=5,
        metadata=(("x-request-id", "req-123"),),
    )
    response = await call
    assert response.content == "Hola"
    assert response.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (5, 3)
    assert response.request_id == "req-123"
    assert ("x-request-id", "req-123") in tuple(await call.trailing_metadata())
    assert (response.route, response.provider, response.model) == ("chat", "local", "m1")
    assert [a.outcome for a in response.attempts] == [common_pb2.ATTEMPT_OUTCOME_SUCCESS]
    assert upstream.last_request.json["model"] == "m1"


async def test_reasoning_only_answer_is_not_empty(gateway: Running, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(
        content="", reasoning="thinking hard", reasoning_field="reasoning", finish_reason="length"
    )
    response = await gateway.stub.Chat(chat_pb2.ChatRequest(messages=[user()]), timeout=5)
    assert response.content == ""
    assert response.reasoning_content == "thinking hard"
    assert response.finish_reason == chat_pb2.FINISH_REASON_REASONING_ONLY


async def test_stream_sends_deltas_then_summary(gateway: Running, upstream: FakeOpenAI) -> None:
    # Frames 20 ms apart arrive in separate reads, so each is its own delta (frames that
    # arrive together may leave as one message: nothing waits, nothing is held back).
    upstream.behaviour = Behaviour(
        content="one two three four", usage=FakeUsage(4, 4), chunk_delay_s=0.02
    )
    messages = [
        m
        async for m in gateway.stub.StreamChat(
            chat_pb2.StreamChatRequest(model="chat", messages=[user()]), timeout=5
        )
    ]
    deltas = [m.delta.content for m in messages if m.HasField("delta")]
    assert len(deltas) > 1 and "".join(deltas) == "one two three four"
    summary = messages[-1].summary
    assert messages[-1].HasField("summary") and not summary.cut
    assert summary.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert summary.usage.completion_tokens == 4
    assert upstream.last_request.json["stream_options"] == {"include_usage": True}


async def test_embed_returns_vectors_in_order(gateway: Running) -> None:
    response = await gateway.stub.Embed(
        embed_pb2.EmbedRequest(inputs=["a", "bb", "ccc"]), timeout=5
    )
    assert len(response.embeddings) == 3
    assert all(len(e.values) > 0 for e in response.embeddings)
    assert response.route == "embedding"


async def test_cancelled_stream_closes_upstream(gateway: Running, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="x " * 200, fault=Fault.HANG, hang_s=30)
    call = gateway.stub.StreamChat(chat_pb2.StreamChatRequest(messages=[user()]), timeout=30)
    await asyncio.sleep(0.3)
    call.cancel()
    await upstream.wait_disconnect(timeout=5)
    assert upstream.disconnects == 1


async def test_deadline_bounds_the_upstream_call(gateway: Running, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(fault=Fault.HANG, hang_s=30)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Chat(chat_pb2.ChatRequest(messages=[user()]), timeout=0.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await upstream.wait_disconnect(timeout=5)
    assert loop.time() - started < 5


async def test_upstream_failure_is_unavailable_without_secrets(
    start_gateway: Start, upstream: FakeOpenAI
) -> None:
    text = config_for(upstream.base_url).replace(
        "locality: local,", "locality: local, api_key_env: SECRET_KEY,"
    )
    gw = await start_gateway(text)
    upstream.behaviour = Behaviour(
        fault=Fault.HTTP_ERROR, status=503, error_message="down; key sk-test-secret-123456"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.stub.Chat(chat_pb2.ChatRequest(messages=[user()]), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "sk-test-secret-123456" not in caught.value.details()
    assert "Traceback" not in caught.value.details()


async def test_health_list_models_and_standard_health(gateway: Running) -> None:
    health = await gateway.stub.Health(models_pb2.HealthRequest(), timeout=5)
    assert {t.provider for t in health.targets} == {"local"}
    assert health.ready
    models = await gateway.stub.ListModels(models_pb2.ListModelsRequest(), timeout=5)
    assert {r.name for r in models.routes} == {"chat", "embedding"}
    std = health_pb2_grpc.HealthStub(gateway.channel)
    for service in ("", "llmgateway.v1.GatewayService"):
        answer = await std.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_graceful_shutdown_finishes_inflight_stream(
    gateway: Running, upstream: FakeOpenAI
) -> None:
    hold = asyncio.Event()
    upstream.behaviour = Behaviour(content="a b c d e f", hold=hold)
    std = health_pb2_grpc.HealthStub(gateway.channel)
    call = gateway.stub.StreamChat(chat_pb2.StreamChatRequest(messages=[user()]), timeout=10)
    first = await call.read()
    assert first.HasField("delta")
    stopping = asyncio.create_task(gateway.server.stop(5))
    await asyncio.sleep(0.2)
    # Draining: health says NOT_SERVING and new calls are refused, the open stream goes on.
    status = await std.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await gateway.stub.Chat(chat_pb2.ChatRequest(messages=[user()]), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    hold.set()
    rest = []
    while (message := await call.read()) != grpc.aio.EOF:
        rest.append(message)
    assert rest[-1].HasField("summary") and not rest[-1].summary.cut
    assert first.delta.content + "".join(m.delta.content for m in rest[:-1]) == "a b c d e f"
    await stopping


async def test_hot_reload_rejects_invalid_config(
    gateway: Running, tmp_path: object, upstream: FakeOpenAI
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "gw.yaml"
    path.write_text("routes: {chat: {targets: [{provider: missing, model: x}]}}\n")
    errors = await gateway.server.reload(str(path))
    assert any("missing" in e for e in errors)
    response = await gateway.stub.Chat(chat_pb2.ChatRequest(messages=[user()]), timeout=5)
    assert response.provider == "local"
    good = config_for(
        upstream.base_url, routes="  chat: {task: chat, targets: [{provider: local, model: m2}]}\n"
    )
    path.write_text(good)
    assert await gateway.server.reload(str(path)) == []
    response = await gateway.stub.Chat(chat_pb2.ChatRequest(messages=[user()]), timeout=5)
    assert response.model == "m2"
    assert gateway.server.snapshot.generation == 2
