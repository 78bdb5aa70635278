"""The call record: one per request, filled by the core and by routing, closed exactly once.

A transport opens it through ``core.pipeline.CallPipeline.begin`` and closes it through
``CallPipeline.close``; in between the gateway core writes what was asked and answered, and
routing reports each attempt through the ``AttemptSink`` methods. After ``close`` nothing
writes it again: settlement (spend, stats, cache), the log line, metrics and the span end all
read the same closed record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from llm_gateway_server.core.errors import RequestInvalid
from llm_gateway_server.core.types import (
    ANONYMOUS,
    AttemptOutcome,
    AttemptRecord,
    ChatAnswer,
    ChatRequest,
    EmbedRequest,
    Principal,
    Usage,
)

#: The metadata header that names the caller (auth off) or a sub-label of it (auth on).
CALLER_HEADER = "x-llm-gateway-caller"
#: The caller of a call that names none, with auth off.
ANONYMOUS_CALLER = ANONYMOUS.tenant
#: The label of callers (and targets) past a configured limit in metrics and stats.
OTHER_LABEL = "other"

MAX_METADATA_KEYS = 16
MAX_METADATA_VALUE_CHARS = 256
_MAX_METADATA_KEY_CHARS = 64
_MAX_CALLER_CHARS = 64
# A caller goes into logs, metric labels and Redis field names: plain tokens only.
_CALLER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@")

_OPERATIONS = {"Chat": "chat", "StreamChat": "chat", "Embed": "embeddings"}


def fallbacks(attempts: tuple[AttemptRecord, ...] | list[AttemptRecord]) -> int:
    """Moves to a next target: one less than the targets tried (the one formula)."""
    return max(len(attempts) - 1, 0)


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` if it is within bounds, else ``RequestInvalid`` naming the field."""
    if len(metadata) > MAX_METADATA_KEYS:
        raise RequestInvalid("metadata", f"at most {MAX_METADATA_KEYS} keys, got {len(metadata)}")
    for key, value in metadata.items():
        if not key or len(key) > _MAX_METADATA_KEY_CHARS:
            raise RequestInvalid(
                "metadata", f"keys must have 1 to {_MAX_METADATA_KEY_CHARS} characters"
            )
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise RequestInvalid(
                f"metadata[{key}]", f"at most {MAX_METADATA_VALUE_CHARS} characters a value"
            )
    return dict(metadata)


def caller_header(metadata: tuple[tuple[str, str | bytes], ...]) -> str:
    """The ``x-llm-gateway-caller`` value, ``""`` when absent; invalid → ``RequestInvalid``."""
    for key, value in metadata:
        if key != CALLER_HEADER:
            continue
        if (
            not isinstance(value, str)
            or not 0 < len(value) <= _MAX_CALLER_CHARS
            or not _CALLER_CHARS.issuperset(value)
        ):
            raise RequestInvalid(
                CALLER_HEADER,
                f"must be 1 to {_MAX_CALLER_CHARS} letters, digits or -_.:@",
            )
        return value
    return ""


class BoundedLabels:
    """Label values past ``limit`` distinct ones become ``other`` (bounded metric series)."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER_LABEL
        self._seen.add(value)
        return value


class Pending(Protocol):
    """What the core still owes a call when it closes: its settlement (spend, stats, cache)."""

    async def settle(self, record: CallRecord) -> None:
        """Charge what the call delivered, release its reservation, store its answer."""


@dataclass(slots=True, eq=False)
class CallRecord:
    """Everything known about one call; see the module docstring for who writes what."""

    request_id: str
    #: ``grpc`` or ``http``.
    transport: str
    #: The RPC or endpoint name (``Chat``, ``StreamChat``, ``Embed``, ...).
    method: str
    #: Absolute ``time.monotonic()`` by which the caller wants its answer.
    deadline: float
    #: The config generation in force when the call began (adapters retire after it).
    generation: int = 0
    started: float = field(default_factory=time.perf_counter)
    principal: Principal = ANONYMOUS
    #: Who called: the tenant with auth on, else the caller header or ``anonymous``.
    caller: str = ANONYMOUS_CALLER
    #: With auth on, the caller header (a sub-label that never changes the tenant).
    sub_caller: str = ""
    #: ``caller`` bounded for metric labels and stats rows.
    caller_label: str = ANONYMOUS_CALLER
    metadata: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""
    # -- what was asked (the gateway core, at admission) --
    route: str = ""
    privacy: str = ""
    model_requested: str = ""
    streaming: bool = False
    request: ChatRequest | EmbedRequest | None = None
    #: ``max_tokens`` as sent upstream (a budget may have capped it).
    max_tokens: int | None = None
    # -- what happened (routing through the sink, the core at the end) --
    attempts: list[AttemptRecord] = field(default_factory=list)
    provider: str = ""
    model: str = ""
    usage: Usage | None = None
    #: True when ``usage`` was counted by the gateway (the upstream reported none).
    usage_counted: bool = False
    cost_usd: float | None = None
    finish_reason: str | None = None
    #: ``None``: the cache was not consulted.
    cache_hit: bool | None = None
    cut: bool = False
    answer: ChatAnswer | None = None
    first_token_at: float | None = None
    # -- how it ended (``close``) --
    status: str = ""
    error_reason: str = ""
    error_message: str = ""
    closed: bool = False
    pending: Pending | None = None
    #: The task serving the call (shutdown cuts running streams through it).
    task: asyncio.Task[object] | None = None
    #: True while the transport hands a message to its framework (a shutdown cut then waits
    #: for the next message instead of cancelling inside the framework's write).
    sending: bool = False
    #: Set by a shutdown cut: the transport ends the stream with a cut summary.
    interrupted: bool = False
    #: The telemetry's own per-call state (span, activation), opaque to everyone else.
    telemetry: object | None = None
    _current: tuple[str, str] | None = None

    @property
    def operation(self) -> str:
        """``chat``, ``embeddings`` or ``""`` (ListModels, Health, GetStats)."""
        return _OPERATIONS.get(self.method, "")

    @property
    def tenant(self) -> str:
        """The tenant the call is accounted to."""
        return self.principal.tenant

    @property
    def fallbacks(self) -> int:
        """Moves to a next target (``fallbacks`` of the attempts)."""
        return fallbacks(self.attempts)

    @property
    def cached(self) -> bool:
        """True when the answer came from the response cache."""
        return bool(self.cache_hit) and not self.attempts

    def duration_s(self) -> float:
        """Seconds since the call began."""
        return time.perf_counter() - self.started

    # -- AttemptSink --

    def attempt_started(self, provider: str, model: str) -> None:
        """Routing begins an attempt on ``provider``/``model``."""
        self._current = (provider, model)

    def attempt_ended(self, record: AttemptRecord) -> None:
        """Routing's attempt ended as ``record`` says."""
        self._current = None
        self.attempts.append(record)

    def first_token(self) -> None:
        """The first streamed delta is leaving the gateway (only the first call counts)."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def target(self) -> tuple[str, str]:
        """The target of the attempt running now, else of the last one; ``("", "")``."""
        if self._current is not None:
            return self._current
        if self.attempts:
            return self.attempts[-1].provider, self.attempts[-1].model
        return "", ""

    def end_attempts(self) -> None:
        """At close: an attempt still open was cancelled; name the target that answered."""
        if self._current is not None:
            provider, model = self._current
            self._current = None
            self.attempts.append(
                AttemptRecord(provider, model, AttemptOutcome.CANCELLED, 0.0, "cancelled")
            )
        if not self.provider and self.attempts:
            last = self.attempts[-1]
            self.provider, self.model = last.provider, last.model


async def settle_now(record: CallRecord) -> None:
    """Run the record's pending settlement now (once: later closes find nothing owed)."""
    pending, record.pending = record.pending, None
    if pending is not None:
        await pending.settle(record)
