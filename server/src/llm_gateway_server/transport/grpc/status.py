"""The gRPC side of status mapping: the core's canonical codes plus google.rpc error details."""

from __future__ import annotations

import logging
import math
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from llm_gateway_server.core.errors import GatewayError, RequestInvalid
from llm_gateway_server.core.status import code_name

logger = logging.getLogger(__name__)

#: google.rpc.ErrorInfo.domain of every error the gateway returns.
ERROR_DOMAIN = "llm-gateway"


def status_code(error: GatewayError) -> grpc.StatusCode:
    """The gRPC code for a gateway error (the core's canonical code, by name)."""
    return grpc.StatusCode[code_name(error)]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: GatewayError, request_id: str) -> grpc.Status:
    """Build the status with exactly one ErrorInfo, plus RetryInfo/BadRequest where they apply."""
    code = status_code(error)
    metadata = dict(error.metadata)
    metadata["request_id"] = request_id
    details = [
        _pack(
            error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
        )
    ]
    if error.retry_after_s is not None and math.isfinite(error.retry_after_s):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(max(error.retry_after_s, 0.0) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if isinstance(error, RequestInvalid):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=error.field, description=error.message
        )
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    status = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return _with_request_id(rpc_status.to_status(status), request_id)


def internal_status(request_id: str) -> grpc.Status:
    """A generic INTERNAL status: never the exception text, which may hold anything."""
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"request_id": request_id}
    )
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; see the gateway's logs for request id {request_id}",
        details=[_pack(info)],
    )
    return _with_request_id(rpc_status.to_status(status), request_id)


class _Status(grpc.Status):
    def __init__(
        self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, Any], ...]
    ) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing


def _with_request_id(status: Any, request_id: str) -> grpc.Status:
    # Errors carry the request id in trailers: they are sent without response headers.
    trailing = (*tuple(status.trailing_metadata or ()), ("x-request-id", request_id))
    return _Status(status.code, status.details, trailing)
