"""The connection pool never manufactures an outage: with no ``max_in_flight`` the gateway is
not the limit, and a bounded pool makes calls wait (within their deadline), never fail."""

from __future__ import annotations

import asyncio

import pytest

from llmgateway.v1 import chat_pb2, models_pb2
from tests.fakes import Behaviour, FakeOpenAI
from tests.hostile.conftest import GatewayProcess, Spawn, gateway_config

ROUTES = "  chat: {targets: [{provider: local, model: m}]}\n"
REQUEST = chat_pb2.ChatRequest(
    model="chat", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")]
)


def provider(url: str, options: str = "", *, connect_timeout_s: float = 3) -> str:
    return (
        f"  local: {{kind: openai_compatible, api_base: '{url}', locality: local,"
        f" timeout_s: 20, connect_timeout_s: {connect_timeout_s}, retry: {{max_attempts: 1}},"
        f" probe: {{enabled: false}}, breaker: {{failure_threshold: 3}}{options}}}\n"
    )


async def peak_connections(fake: FakeOpenAI, done: asyncio.Event) -> int:
    peak = 0
    while not done.is_set():
        peak = max(peak, fake.open_connections)
        await asyncio.sleep(0.05)
    return peak


async def one_call(gw: GatewayProcess, *, streaming: bool) -> str:
    if not streaming:
        return (await gw.stub.Chat(REQUEST, timeout=30)).content
    request = chat_pb2.StreamChatRequest(model="chat", messages=REQUEST.messages)
    messages = [m async for m in gw.stub.StreamChat(request, timeout=30)]
    assert not messages[-1].summary.cut
    return "".join(m.delta.content for m in messages if m.HasField("delta"))


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
async def test_200_slow_calls_without_max_in_flight_all_succeed(
    spawn_gateway: Spawn, streaming: bool
) -> None:
    async with FakeOpenAI(Behaviour(first_token_delay_s=3.5)) as fake:
        gw = await spawn_gateway(gateway_config(provider(fake.base_url), ROUTES))
        fds_before = gw.fds()
        done = asyncio.Event()
        watcher = asyncio.create_task(peak_connections(fake, done))
        try:
            calls = (one_call(gw, streaming=streaming) for _ in range(200))
            answers = await asyncio.gather(*calls)
        finally:
            done.set()
            peak = await watcher
        assert answers == ["Hello from the fake."] * 200
        assert len(fake.requests) == 200
        # More than aiohttp's default pool of 100 (and the old 128) were open at once.
        assert peak > 128
        target = next(t for t in (await gw.health()).targets if t.provider == "local")
        assert target.breaker_state == models_pb2.BREAKER_STATE_CLOSED
        assert target.consecutive_failures == 0
        assert target.last_error == ""
        # The 200 upstream connections are pooled (keep-alive), not leaked: closing the
        # fake's side lets the gateway drop them all.
        await fake.close()
        assert await gw.wait_fds_at_most(fds_before + 5) <= fds_before + 5


async def test_a_bounded_pool_queues_within_the_deadline_not_connect_timeout(
    spawn_gateway: Spawn,
) -> None:
    async with FakeOpenAI(Behaviour(first_token_delay_s=0.6)) as fake:
        # Connecting may take 0.2 s; waiting for one of the 2 pooled connections takes
        # longer, and must not count as a connect timeout.
        local = provider(fake.base_url, ", max_connections: 2", connect_timeout_s=0.2)
        gw = await spawn_gateway(gateway_config(local, ROUTES))
        done = asyncio.Event()
        watcher = asyncio.create_task(peak_connections(fake, done))
        try:
            answers = await asyncio.gather(*(gw.stub.Chat(REQUEST, timeout=30) for _ in range(6)))
        finally:
            done.set()
            peak = await watcher
        assert peak <= 2
        assert [a.content for a in answers] == ["Hello from the fake."] * 6
        target = next(t for t in (await gw.health()).targets if t.provider == "local")
        assert target.breaker_state == models_pb2.BREAKER_STATE_CLOSED
        assert target.last_error == ""
