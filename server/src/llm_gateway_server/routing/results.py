"""What the router hands back to transport: answers with the route, target and attempts."""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway_server.core.errors import GatewayError
from llm_gateway_server.core.types import (
    AttemptRecord,
    ChatAnswer,
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
