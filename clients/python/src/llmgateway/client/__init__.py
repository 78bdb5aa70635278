"""A thin typed client for llm-gateway: sync and asyncio, with helpers for everyday calls."""

from __future__ import annotations

from llmgateway.client.answers import ChatAnswer, FinishReason
from llmgateway.client.async_client import AsyncGatewayClient
from llmgateway.client.errors import GatewayError
from llmgateway.client.options import (
    CacheLike,
    ChatOptions,
    EnumLike,
    RequestOptions,
    ResponseFormatLike,
    ToolChoiceLike,
    ToolLike,
)
from llmgateway.client.request_builders import ChatInput, MessageLike
from llmgateway.client.sync_client import GatewayClient

__all__ = [
    "AsyncGatewayClient",
    "CacheLike",
    "ChatAnswer",
    "ChatInput",
    "ChatOptions",
    "EnumLike",
    "FinishReason",
    "GatewayClient",
    "GatewayError",
    "MessageLike",
    "RequestOptions",
    "ResponseFormatLike",
    "ToolChoiceLike",
    "ToolLike",
]
