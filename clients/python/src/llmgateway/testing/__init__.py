"""A test double for services that call llm-gateway: a real gRPC server, scripted answers.

Example:
    >>> fake = FakeGateway()
    >>> fake.reply("Hola")
    >>> fake.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", retry_after=2)
    >>> with serve_in_thread(fake) as target, GatewayClient(target) as client:
    ...     assert client.complete("hi") == "Hola"
"""

from __future__ import annotations

from llmgateway.testing.fake_gateway import DOMAIN, FakeGateway, Received, rich_status, unavailable
from llmgateway.testing.serving import ServerThread, serve, serve_in_thread, start_server

__all__ = [
    "DOMAIN",
    "FakeGateway",
    "Received",
    "ServerThread",
    "rich_status",
    "serve",
    "serve_in_thread",
    "start_server",
    "unavailable",
]
