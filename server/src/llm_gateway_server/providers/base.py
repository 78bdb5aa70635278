"""The one small interface every provider adapter implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol, runtime_checkable

from llm_gateway_server.core.types import (
    ChatAnswer,
    ChatDelta,
    EmbedAnswer,
    ProbeResult,
    ProviderChatRequest,
    ProviderEmbedRequest,
)


@runtime_checkable
class Provider(Protocol):
    """An upstream LLM API seen through one adapter.

    Adapters know nothing about routes, keys or gRPC. Every failure leaves as
    ``core.errors.UpstreamError`` with a credential-free message, classified once here
    (retryable or caused by the request). ``timeout_s`` bounds the whole call (for a
    stream: the wait for each next chunk and the whole stream within the deadline the
    router computed); adapters must not wait past it.
    """

    name: str

    async def chat(self, request: ProviderChatRequest, *, timeout_s: float) -> ChatAnswer:
        """Return one complete answer."""
        ...

    def stream(
        self, request: ProviderChatRequest, *, timeout_s: float
    ) -> AsyncGenerator[ChatDelta, None]:
        """Yield deltas as they arrive; the last carries ``finish_reason`` (and usage if sent).

        Closing the iterator (``aclose``, or cancelling the consuming task) must close the
        upstream HTTP request at once.
        """
        ...

    async def embed(self, request: ProviderEmbedRequest, *, timeout_s: float) -> EmbedAnswer:
        """Return one vector per input, in order."""
        ...

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        """Cheaply check the upstream is up (e.g. GET /v1/models); never raises."""
        ...

    async def aclose(self) -> None:
        """Release connection pools."""
        ...
