"""The gateway's error hierarchy.

Each error carries a stable ``reason`` (a name of ``llmgateway.v1.ErrorReason`` without its
prefix) and credential-free ``metadata``. Which gRPC status each class becomes is decided in
one place only: ``transport/status.py``. Whether an upstream failure is retryable is decided
once, by the adapter that saw the upstream answer.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_gateway_server.core.types import AttemptRecord


class GatewayError(Exception):
    """Base of every error the gateway reports to callers."""

    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_after_s = retry_after_s


class RequestInvalid(GatewayError):
    """The caller's request is malformed; ``field`` names the offending field."""

    default_reason = "INVALID_FIELD"

    def __init__(self, field: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"{field}: {message}", reason=reason, metadata={"field": field})
        self.field = field


class RouteNotFound(GatewayError):
    """``model`` names no route and no permitted direct target."""

    default_reason = "ROUTE_NOT_FOUND"


class Unauthenticated(GatewayError):
    """No API key, or an unknown one."""

    default_reason = "API_KEY_MISSING"


class NotPermitted(GatewayError):
    """The caller's key may not use this route or privacy."""

    default_reason = "ROUTE_NOT_PERMITTED"


class LimitExceeded(GatewayError):
    """A rate limit, token limit, budget or concurrency queue is exhausted."""

    default_reason = "RATE_LIMITED"


class NoPermittedTarget(GatewayError):
    """The route has no target this request may use (privacy, disabled providers)."""

    default_reason = "NO_PERMITTED_TARGET"


class NoTargetLeft(GatewayError):
    """Every permitted target failed or had an open breaker."""

    default_reason = "ALL_TARGETS_FAILED"

    def __init__(
        self,
        message: str,
        *,
        attempts: Sequence[AttemptRecord] = (),
        retry_after_s: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata, retry_after_s=retry_after_s)
        self.attempts = tuple(attempts)


class StreamInterrupted(GatewayError):
    """The upstream failed after deltas had been sent to the caller."""

    default_reason = "STREAM_INTERRUPTED"


class DeadlineExceeded(GatewayError):
    """The caller's deadline passed before an answer."""

    default_reason = "DEADLINE_EXCEEDED"


class ShuttingDown(GatewayError):
    """The server is draining; the caller should retry on another replica."""

    default_reason = "SHUTTING_DOWN"


class StateUnavailable(GatewayError):
    """The shared state store (Redis) does not answer and the operation cannot fail open."""

    default_reason = "STATE_UNAVAILABLE"


class UpstreamFailure(enum.StrEnum):
    """What went wrong upstream; decides retryability and the attempt outcome."""

    CONNECT = "connect"  # refused, reset, DNS
    TIMEOUT = "timeout"  # no answer within the attempt timeout
    SERVER_ERROR = "server_error"  # 5xx
    RATE_LIMITED = "rate_limited"  # 429
    BAD_RESPONSE = "bad_response"  # malformed JSON, cut SSE, wrong shape
    EMPTY_ANSWER = "empty_answer"  # neither content, reasoning nor tool calls
    AUTH = "auth"  # 401/403: the gateway's key for that provider is wrong
    NOT_FOUND = "not_found"  # 404/405: wrong model name or endpoint at that provider
    CONTEXT_LENGTH = "context_length"  # caller-caused: conversation too long
    CONTENT_FILTER = "content_filter"  # caller-caused: content policy
    BAD_REQUEST = "bad_request"  # caller-caused: a parameter the upstream refused


#: Failures caused by the request itself: another target would refuse it too, so no
#: fallback, and the breaker does not count them.
CALLER_CAUSED = frozenset(
    {UpstreamFailure.CONTEXT_LENGTH, UpstreamFailure.CONTENT_FILTER, UpstreamFailure.BAD_REQUEST}
)

_REASONS = {
    UpstreamFailure.CONTEXT_LENGTH: "CONTEXT_LENGTH_EXCEEDED",
    UpstreamFailure.CONTENT_FILTER: "CONTENT_FILTERED",
    UpstreamFailure.BAD_REQUEST: "UPSTREAM_REJECTED_REQUEST",
}


class UpstreamError(GatewayError):
    """A provider call failed. Raised by adapters only; ``message`` must be credential-free."""

    default_reason = "ALL_TARGETS_FAILED"
    #: False when the time ran out on the gateway's own resources (a pooled connection)
    #: before anything was sent: the upstream did nothing wrong, so no breaker counts it.
    upstream_fault = True

    def __init__(
        self,
        failure: UpstreamFailure,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(
            message,
            reason=_REASONS.get(failure),
            retry_after_s=retry_after_s,
        )
        self.failure = failure
        self.status = status

    @property
    def caller_caused(self) -> bool:
        """True when the request itself was refused; never counts against a breaker."""
        return self.failure in CALLER_CAUSED
