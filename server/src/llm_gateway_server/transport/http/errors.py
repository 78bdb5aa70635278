"""The one table from the core's errors to HTTP statuses, and the two wire shapes of an error.

OpenAI clients pick their exception class from the status (404 -> NotFoundError, ...) and
read ``{"error": {"message", "type", "param", "code"}}``; Ollama clients read
``{"error": "..."}``. ``code`` is the ErrorReason, as in gRPC's ErrorInfo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llm_gateway_server.core.errors import GatewayError, RequestInvalid
from llm_gateway_server.core.status import code_name

#: HTTP status per canonical code (google.rpc.Code's own HTTP mapping), so the HTTP facades
#: and gRPC can never disagree about what an error is: the core decides the code once.
_STATUSES = {
    "INVALID_ARGUMENT": 400,
    # The caller asked for something no target may serve (privacy, disabled providers):
    # its request must change, so a 4xx the client does not retry.
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

#: OpenAI's ``error.type`` per status.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


@dataclass(frozen=True, slots=True)
class HttpError:
    """An error as the HTTP facades send it: status, headers and the OpenAI error object."""

    status: int
    message: str
    reason: str
    param: str | None = None
    retry_after_s: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After`` (whole seconds, rounded up) when the core gave a delay."""
        if self.retry_after_s is None or not math.isfinite(self.retry_after_s):
            return {}
        return {"Retry-After": str(max(math.ceil(self.retry_after_s), 0))}

    def openai_body(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "server_error"),
                "param": self.param,
                "code": self.reason,
            }
        }

    def ollama_body(self) -> dict[str, Any]:
        """``{"error": "..."}``, as Ollama answers."""
        return {"error": self.message}


def http_status(error: GatewayError) -> int:
    """The HTTP status for a gateway error."""
    if error.reason == "REQUEST_TOO_LARGE":
        return 413
    return _STATUSES.get(code_name(error), 500)


def from_gateway_error(error: GatewayError) -> HttpError:
    """The HTTP form of a core error (its message is already credential-free)."""
    return HttpError(
        status=http_status(error),
        message=error.message,
        reason=error.reason,
        param=error.field if isinstance(error, RequestInvalid) else None,
        retry_after_s=error.retry_after_s,
    )


def internal_error(request_id: str) -> HttpError:
    """A generic 500: never the exception text, which may hold anything."""
    return HttpError(
        status=500,
        message=f"internal error; see the gateway's logs for request id {request_id}",
        reason="INTERNAL",
    )
