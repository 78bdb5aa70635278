"""A real gateway with its HTTP facade on 127.0.0.1:0, in front of fake upstreams."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from llm_gateway_server.app import GatewayServer, build_server
from llm_gateway_server.config.loader import parse_config
from tests.fakes import FakeOpenAI

#: The API key of the gateway started by ``secured`` configs.
KEY = "key-team-a"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class HttpGateway:
    """A started gateway and the base URLs of its HTTP facade."""

    server: GatewayServer

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (Ollama clients' host)."""
        assert self.server.http is not None
        return f"http://127.0.0.1:{self.server.http.port}"

    @property
    def openai_base(self) -> str:
        """What an openai client's ``base_url`` is set to."""
        return f"{self.url}/v1"


def http_config(
    local: FakeOpenAI,
    cloud: FakeOpenAI | None = None,
    *,
    secured: bool = False,
    key_options: str = "",
    server: str = "",
) -> str:
    """Routes ``chat`` and ``embedding`` on ``local``; with ``cloud``, a cloud-only route
    ``cloudy`` and a route ``mixed`` falling back from local to cloud."""
    providers = (
        f"  local: {{kind: openai_compatible, api_base: '{local.base_url}', locality: local,"
        " timeout_s: 10, retry: {max_attempts: 1}, probe: {enabled: false}}\n"
    )
    routes = (
        "  chat: {task: chat, targets: [{provider: local, model: m1}]}\n"
        "  embedding: {task: embedding, targets: [{provider: local, model: e1}]}\n"
    )
    if cloud is not None:
        providers += (
            f"  cloud: {{kind: openai_compatible, api_base: '{cloud.base_url}', locality: cloud,"
            " timeout_s: 10, retry: {max_attempts: 1}, probe: {enabled: false}}\n"
        )
        routes += (
            "  cloudy: {task: chat, default: false, max_privacy: flexible,"
            " targets: [{provider: cloud, model: big}]}\n"
            "  mixed: {task: chat, default: false, max_privacy: flexible,"
            " targets: [{provider: local, model: small}, {provider: cloud, model: big}]}\n"
        )
    auth = ""
    if secured:
        auth = (
            "auth:\n  enabled: true\n  keys:\n"
            f"    - {{name: team-a, sha256: '{digest(KEY)}', max_privacy: flexible{key_options}}}\n"
        )
    return (
        "server: {listen: '127.0.0.1:0', allow_direct_targets: true, max_message_bytes: 200000,"
        f" max_image_bytes: 1000, shutdown_grace_s: 5{server or ', drain_delay_s: 0'}}}\n"
        "http: {listen: '127.0.0.1:0'}\n"
        "providers:\n"
        + providers
        + "routes:\n"
        + routes
        + auth
        + "telemetry: {metrics_listen: ''}\n"
    )


Start = Callable[[str], Awaitable[HttpGateway]]


@pytest.fixture
async def start_http() -> AsyncIterator[Start]:
    """Start gateways (gRPC and HTTP) from config text; all are stopped after the test."""
    running: list[GatewayServer] = []

    async def start(config_text: str) -> HttpGateway:
        server = await build_server(parse_config(config_text))
        await server.start()
        running.append(server)
        return HttpGateway(server)

    yield start
    for server in running:
        await server.stop(0)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    """The local fake upstream."""
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def cloud() -> AsyncIterator[FakeOpenAI]:
    """The cloud fake upstream."""
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def gw(start_http: Start, upstream: FakeOpenAI) -> HttpGateway:
    """A gateway without auth whose routes go to ``upstream``."""
    return await start_http(http_config(upstream))
