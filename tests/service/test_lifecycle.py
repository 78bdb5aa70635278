"""The server's own connection management never cuts a call it accepted: connection age,
reloads mid-stream, and shutdown (which ends a stream with a cut summary and a reason)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from llm_gateway_server.app import build_server
from llm_gateway_server.config.loader import load_config, parse_config
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc
from tests.fakes import FakeOpenAI
from tests.fakes.behaviour import Behaviour
from tests.service.test_validation import error_info

WORDS = 40
CONTENT = " ".join(f"w{i}" for i in range(WORDS))


def _config(upstream: FakeOpenAI, *, server: str = "") -> str:
    return (
        f"server: {{listen: '127.0.0.1:0', drain_delay_s: 0{server}}}\n"
        "providers:\n"
        f"  local: {{kind: openai_compatible, api_base: '{upstream.base_url}', locality: local,"
        " timeout_s: 30, retry: {max_attempts: 1}, probe: {enabled: false}}\n"
        "routes:\n  chat: {task: chat, targets: [{provider: local, model: m1}]}\n"
        "telemetry: {metrics_listen: ''}\n"
    )


def _request() -> chat_pb2.StreamChatRequest:
    return chat_pb2.StreamChatRequest(
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="stream slowly")]
    )


async def test_a_stream_longer_than_the_connection_age_completes() -> None:
    # 40 pieces 0.1 s apart: a 4 s stream on a connection that is asked to go after 2 s.
    async with FakeOpenAI(Behaviour(content=CONTENT, chunk_delay_s=0.1)) as upstream:
        config = _config(upstream, server=", max_connection_age_s: 2, shutdown_grace_s: 1")
        server = await build_server(parse_config(config))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
                items = [item async for item in stub.StreamChat(_request(), timeout=30)]
        finally:
            await server.stop(0)
    summary = items[-1].summary
    assert not summary.cut
    assert summary.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert "".join(i.delta.content for i in items[:-1]) == CONTENT


async def test_a_reload_that_changes_the_provider_of_a_running_stream(tmp_path: Path) -> None:
    slow = Behaviour(content=CONTENT, chunk_delay_s=0.05)
    async with FakeOpenAI(slow) as old, FakeOpenAI() as new:
        path = tmp_path / "gw.yaml"
        # A short shutdown grace: the old adapter must outlive it while its stream runs.
        path.write_text(_config(old, server=", shutdown_grace_s: 0.2"))
        server = await build_server(load_config(path), config_path=str(path))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
                call = stub.StreamChat(_request(), timeout=30)
                items = [await call.read()]
                path.write_text(path.read_text().replace(old.base_url, new.base_url))
                assert await server.reload() == []
                while (item := await call.read()) is not grpc.aio.EOF:
                    items.append(item)
                after = [i async for i in stub.StreamChat(_request(), timeout=30)]
        finally:
            await server.stop(0)
    summary = items[-1].summary
    assert not summary.cut and summary.provider == "local"
    assert "".join(i.delta.content for i in items[:-1]) == CONTENT
    # Calls begun after the reload go to the new upstream.
    assert not after[-1].summary.cut
    assert len(new.requests) == 1 and len(old.requests) == 1


async def test_a_stream_still_running_at_shutdown_gets_a_cut_summary_and_a_reason() -> None:
    async with FakeOpenAI(Behaviour(content=CONTENT, chunk_delay_s=0.5)) as upstream:
        server = await build_server(parse_config(_config(upstream)))
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            call = stub.StreamChat(_request(), timeout=60)
            items = [await call.read()]
            stopping = asyncio.create_task(server.stop(1.5))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _read_all(call, items)
            await stopping
    summary = items[-1].summary
    assert items[-1].HasField("summary")
    assert summary.cut and summary.finish_reason == chat_pb2.FINISH_REASON_ERROR
    assert summary.provider == "local" and summary.usage.completion_tokens > 0
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(caught.value).reason == "SHUTTING_DOWN"


async def _read_all(
    call: grpc.aio.UnaryStreamCall[chat_pb2.StreamChatRequest, chat_pb2.StreamChatResponse],
    items: list[chat_pb2.StreamChatResponse],
) -> None:
    while (item := await call.read()) is not grpc.aio.EOF:
        items.append(item)
