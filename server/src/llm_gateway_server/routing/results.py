"""What the router hands back to transport: answers with the route, target and attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from llm_gateway_server.core.errors import GatewayError
from llm_gateway_server.core.types import (
    AttemptRecord,
    ChatAnswer,
    ChatDelta,
    EmbedAnswer,
    FinishReason,
    Usage,
)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A complete chat answer and how it was obtained."""

    answer: ChatAnswer
    route: str
    provider: str
    #: The model name sent upstream (``answer.model`` is what the upstream reported).
    model: str
    attempts: tuple[AttemptRecord, ...]


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """The last item of a stream: why it ended and the whole fallback trace.

    With ``cut``, the upstream failed after deltas had been sent: ``error`` is a
    ``StreamInterrupted`` the transport sends as the final status after this message.
    """

    finish_reason: FinishReason
    usage: Usage | None
    route: str
    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...]
    cut: bool = False
    error: GatewayError | None = None


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """Vectors and how they were obtained."""

    answer: EmbedAnswer
    route: str
    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...]


class RoutedStream(Protocol):
    """A committed stream, as ``Router.open_stream`` hands it back.

    Awaiting ``open_stream`` runs fallback until one target produced its first payload delta
    (the peek); errors before that are raised there, as ``chat``'s are. Iterating yields every
    payload delta, the peeked one first. The iteration never raises an upstream failure: it
    ends, and ``summary`` says how (``cut`` with ``error`` set when the upstream failed after
    the first delta). ``summary`` is ``None`` until the stream ended or was closed; ``aclose``
    (the caller went away) closes the upstream at once and fills ``summary`` with ``cut`` set
    and the usage the upstream reported so far, if any.
    """

    @property
    def route(self) -> str:
        """The route the stream was resolved on."""
        ...

    @property
    def provider(self) -> str:
        """The provider of the target that streams."""
        ...

    @property
    def model(self) -> str:
        """The model name sent upstream."""
        ...

    @property
    def summary(self) -> StreamSummary | None:
        """How the stream ended; ``None`` while it runs."""
        ...

    def __aiter__(self) -> AsyncIterator[ChatDelta]:
        """The payload deltas."""
        ...

    async def aclose(self) -> None:
        """Stop the stream and close the upstream (idempotent)."""
        ...
