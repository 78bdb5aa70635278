"""Hooks through which routing reports attempts, fallbacks and breaker transitions.

Routing calls these; telemetry implements them (spans, metrics, logs). Routing never
imports telemetry, so it stays testable with the no-op observer below.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from llm_gateway_server.core.types import AttemptOutcome, FinishReason, Privacy, Usage


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """What is known when an attempt starts."""

    route: str
    provider: str
    provider_kind: str
    model: str
    #: 1 for the first target tried, 2 for the first fallback, ...
    attempt: int
    #: "chat" or "embeddings" (gen_ai.operation.name).
    operation: str
    streaming: bool
    breaker_state: str
    privacy: Privacy
    server_address: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


class AttemptScope(Protocol):
    """The span/metric scope of one attempt; active while the upstream call runs."""

    def first_chunk(self) -> None:
        """A streamed attempt received its first chunk (time to first chunk)."""

    def finish(
        self,
        outcome: AttemptOutcome,
        *,
        usage: Usage | None = None,
        response_model: str = "",
        finish_reason: FinishReason | None = None,
        error: str = "",
        retries: int = 0,
    ) -> None:
        """Record how the attempt ended; called exactly once."""


class RoutingObserver(Protocol):
    """Receives routing events."""

    def attempt(self, info: AttemptInfo) -> contextlib.AbstractContextManager[AttemptScope]:
        """Open the scope of one attempt; the upstream call runs inside it."""

    def fallback(self, route: str, from_provider: str, from_model: str) -> None:
        """A request moved on from a failed target to the next."""

    def breaker_transition(self, provider: str, model: str, old: str, new: str) -> None:
        """A target's breaker changed state (closed, open, half_open)."""


class _NoopScope:
    def first_chunk(self) -> None:
        return None

    def finish(
        self,
        outcome: AttemptOutcome,
        *,
        usage: Usage | None = None,
        response_model: str = "",
        finish_reason: FinishReason | None = None,
        error: str = "",
        retries: int = 0,
    ) -> None:
        return None


class NoopObserver:
    """The observer used when telemetry is off, and in routing's own tests."""

    @contextlib.contextmanager
    def attempt(self, info: AttemptInfo) -> Iterator[AttemptScope]:
        """Yield a scope that records nothing."""
        yield _NoopScope()

    def fallback(self, route: str, from_provider: str, from_model: str) -> None:
        """Ignore the event."""

    def breaker_transition(self, provider: str, model: str, old: str, new: str) -> None:
        """Ignore the event."""
