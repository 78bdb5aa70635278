"""Which canonical status (a google.rpc.Code name) each gateway error is, for every transport.

gRPC sends the code itself; the HTTP facades map the same names to HTTP statuses. The call
record stores the name, so log lines and metrics read alike whatever the transport.
"""

from __future__ import annotations

import asyncio
import time

from llm_gateway_server.core.errors import (
    DeadlineExceeded,
    GatewayError,
    LimitExceeded,
    NoPermittedTarget,
    NoTargetLeft,
    NotPermitted,
    RequestInvalid,
    RouteNotFound,
    ShuttingDown,
    StateUnavailable,
    StreamInterrupted,
    Unauthenticated,
    UpstreamError,
)

_CODES: tuple[tuple[type[GatewayError], str], ...] = (
    (RequestInvalid, "INVALID_ARGUMENT"),
    (RouteNotFound, "NOT_FOUND"),
    (Unauthenticated, "UNAUTHENTICATED"),
    (NotPermitted, "PERMISSION_DENIED"),
    (LimitExceeded, "RESOURCE_EXHAUSTED"),
    (NoPermittedTarget, "FAILED_PRECONDITION"),
    (NoTargetLeft, "UNAVAILABLE"),
    (StreamInterrupted, "UNAVAILABLE"),
    (DeadlineExceeded, "DEADLINE_EXCEEDED"),
    (ShuttingDown, "UNAVAILABLE"),
    (StateUnavailable, "UNAVAILABLE"),
)

#: How close to its deadline a cancelled call counts as ended by the deadline.
_DEADLINE_MARGIN_S = 0.05


def code_name(error: GatewayError) -> str:
    """The canonical code name for a gateway error."""
    if isinstance(error, UpstreamError):
        # Caller-caused upstream refusals (context too long, content policy) are the
        # caller's to fix; anything else that escaped routing means no target answered.
        return "INVALID_ARGUMENT" if error.caller_caused else "UNAVAILABLE"
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    return "INTERNAL"


def past_deadline(deadline: float) -> bool:
    """True at or within a hair of ``deadline`` (``time.monotonic()``)."""
    return time.monotonic() >= deadline - _DEADLINE_MARGIN_S


def outcome(exc: BaseException | None, *, deadline: float) -> tuple[str, str, str]:
    """``(code name, ErrorInfo reason, message)`` of how a call ended.

    A cancellation at or past the caller's deadline is the deadline's (DEADLINE_EXCEEDED);
    any other cancellation is the caller going away (CANCELLED), never INTERNAL.
    """
    if exc is None:
        return "OK", "", ""
    if isinstance(exc, GatewayError):
        return code_name(exc), exc.reason, exc.message
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        if past_deadline(deadline):
            return "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED", "the caller's deadline passed"
        return "CANCELLED", "CANCELLED", ""
    return "INTERNAL", "INTERNAL", ""
