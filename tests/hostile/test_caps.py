"""Caps on what an upstream sends: a 50 MB answer or SSE line is refused as BAD_RESPONSE,
naming the cap, while the gateway process's peak memory stays within a few MB."""

from __future__ import annotations

import grpc
import pytest

from llmgateway.v1 import chat_pb2
from tests.fakes import Behaviour, FakeOpenAI
from tests.hostile.conftest import GatewayProcess, Spawn, gateway_config

FIFTY_MB = 50 * 1024 * 1024
#: Peak growth allowed while refusing 50 MB: socket and read buffers, not the body.
GROWTH_KB = 8 * 1024
ROUTES = "  chat: {targets: [{provider: local, model: m}]}\n"
MESSAGES = [chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")]


def config(url: str, options: str = "") -> str:
    return gateway_config(
        f"  local: {{kind: openai_compatible, api_base: '{url}', locality: local,"
        " timeout_s: 60, retry: {max_attempts: 1}, probe: {enabled: false}"
        f"{options}}}\n",
        ROUTES,
    )


async def warm(gw: GatewayProcess) -> int:
    """One ordinary call of each kind, so imports and pools are in place; the baseline."""
    await gw.stub.Chat(chat_pb2.ChatRequest(model="chat", messages=MESSAGES), timeout=10)
    stream = gw.stub.StreamChat(chat_pb2.StreamChatRequest(model="chat", messages=MESSAGES))
    _ = [item async for item in stream]
    return gw.reset_peak_rss()


async def call(gw: GatewayProcess, *, streaming: bool) -> None:
    if streaming:
        request = chat_pb2.StreamChatRequest(model="chat", messages=MESSAGES)
        _ = [item async for item in gw.stub.StreamChat(request, timeout=60)]
    else:
        await gw.stub.Chat(chat_pb2.ChatRequest(model="chat", messages=MESSAGES), timeout=60)


async def refused(gw: GatewayProcess, *, streaming: bool) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(gw, streaming=streaming)
    return info.value


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_50_mb_answer_is_refused_without_holding_it(
    spawn_gateway: Spawn, declared: bool
) -> None:
    async with FakeOpenAI() as fake:
        # Declared: refused from the header at the default cap. Chunked: read up to a
        # 1 MiB cap (the default, 32 MiB, would be held whole before the refusal).
        options = "" if declared else ", max_response_bytes: 1048576"
        gw = await spawn_gateway(config(fake.base_url, options))
        baseline = await warm(gw)
        fds = gw.fds()
        fake.behaviour = Behaviour(oversize_bytes=FIFTY_MB, oversize_declared=declared)
        error = await refused(gw, streaming=False)
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert "max_response_bytes" in (error.details() or "")
        assert "bad_response" in (error.details() or "") or "larger than" in (error.details() or "")
        assert gw.peak_rss_kb() - baseline < GROWTH_KB
        await fake.wait_no_connections()  # the gateway hung up instead of reading on
        assert await gw.wait_fds_at_most(fds) <= fds


async def test_a_50_mb_sse_line_is_refused_at_the_event_cap(spawn_gateway: Spawn) -> None:
    async with FakeOpenAI() as fake:
        gw = await spawn_gateway(config(fake.base_url))
        baseline = await warm(gw)
        fds = gw.fds()
        fake.behaviour = Behaviour(oversize_bytes=FIFTY_MB)
        error = await refused(gw, streaming=True)
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert "max_event_bytes" in (error.details() or "")
        assert gw.peak_rss_kb() - baseline < GROWTH_KB
        await fake.wait_no_connections()
        assert await gw.wait_fds_at_most(fds) <= fds
