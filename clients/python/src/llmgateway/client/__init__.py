"""A thin typed client for llm-gateway: sync and asyncio, with helpers for everyday calls."""

from __future__ import annotations

from llmgateway.client.async_client import AsyncGatewayClient
from llmgateway.client.errors import GatewayError
from llmgateway.client.request_builders import ChatInput, EnumLike, MessageLike
from llmgateway.client.sync_client import GatewayClient

__all__ = [
    "AsyncGatewayClient",
    "ChatInput",
    "EnumLike",
    "GatewayClient",
    "GatewayError",
    "MessageLike",
]
