"""A real gateway (grpc.aio on 127.0.0.1:0) in front of real fake upstreams (aiohttp)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest

from llm_gateway_server.app import GatewayServer, build_server
from llm_gateway_server.config.loader import parse_config
from llmgateway.v1 import gateway_service_pb2_grpc
from tests.fakes import FakeOpenAI


@dataclass
class Running:
    """A started gateway with a channel and stub connected to it."""

    server: GatewayServer
    channel: grpc.aio.Channel
    stub: gateway_service_pb2_grpc.GatewayServiceStub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


def config_for(upstream_url: str, *, extra: str = "", routes: str | None = None) -> str:
    """A config with one local openai_compatible provider `local` at ``upstream_url``."""
    routes = routes or (
        "  chat: {task: chat, targets: [{provider: local, model: m1}]}\n"
        "  embedding: {task: embedding, targets: [{provider: local, model: e1}]}\n"
    )
    return (
        "server: {listen: '127.0.0.1:0', allow_direct_targets: true, max_message_bytes: 200000,"
        " max_image_bytes: 1000, shutdown_grace_s: 5, drain_delay_s: 0.5}\n"
        "providers:\n"
        f"  local: {{kind: openai_compatible, api_base: '{upstream_url}', locality: local,"
        " timeout_s: 10, retry: {max_attempts: 1}, probe: {enabled: false}}\n"
        "routes:\n" + routes + "telemetry: {metrics_listen: '', log_format: json}\n" + extra
    )


Start = Callable[[str], Awaitable[Running]]


@pytest.fixture
async def start_gateway() -> AsyncIterator[Start]:
    """Start gateways from config text; all are stopped after the test."""
    running: list[Running] = []

    async def start(config_text: str) -> Running:
        server = await build_server(
            parse_config(config_text, env={"SECRET_KEY": "sk-test-secret-123456"})
        )
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        item = Running(server, channel, gateway_service_pb2_grpc.GatewayServiceStub(channel))
        running.append(item)
        return item

    yield start
    for item in running:
        await item.channel.close()
        await item.server.stop(0)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    """A fake OpenAI-compatible upstream."""
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def gateway(start_gateway: Start, upstream: FakeOpenAI) -> Running:
    """A gateway whose routes go to ``upstream``."""
    return await start_gateway(config_for(upstream.base_url))


@pytest.fixture(autouse=True)
def _loop_watch(no_slow_callbacks: None) -> None:
    """Every service test fails if anything blocks the gateway's event loop (see loop_watch)."""
