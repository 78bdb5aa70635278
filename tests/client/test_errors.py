"""GatewayError.from_rpc_error on grpc.aio's own error type, edge cases the server tests skip."""

from __future__ import annotations

import grpc
import grpc.aio

from llmgateway.client import GatewayError
from llmgateway.testing import rich_status

DETAILS_KEY = "grpc-status-details-bin"


def _aio_error(
    code: grpc.StatusCode, message: str, *trailers: tuple[str, str | bytes]
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(*trailers),
        details=message,
    )


def test_request_id_falls_back_to_error_info_metadata() -> None:
    status = rich_status(
        grpc.StatusCode.NOT_FOUND, "no route", "ROUTE_NOT_FOUND", metadata={"request_id": "r-9"}
    )
    error = GatewayError.from_rpc_error(
        _aio_error(
            grpc.StatusCode.NOT_FOUND, "no route", (DETAILS_KEY, status.SerializeToString())
        ),
        request_id="sent-by-caller",
    )
    assert error.reason == "ROUTE_NOT_FOUND"
    assert error.request_id == "r-9"


def test_details_contradicting_the_status_are_ignored() -> None:
    status = rich_status(grpc.StatusCode.NOT_FOUND, "no route", "ROUTE_NOT_FOUND")
    error = GatewayError.from_rpc_error(
        _aio_error(grpc.StatusCode.INTERNAL, "boom", (DETAILS_KEY, status.SerializeToString())),
        request_id="sent-by-caller",
    )
    assert error.code == grpc.StatusCode.INTERNAL
    assert error.reason == ""
    assert error.status is None
    assert error.request_id == "sent-by-caller"


def test_a_status_without_details() -> None:
    error = GatewayError.from_rpc_error(_aio_error(grpc.StatusCode.CANCELLED, "cancelled"))
    assert (error.code, error.message, error.reason, error.retry_after) == (
        grpc.StatusCode.CANCELLED,
        "cancelled",
        "",
        None,
    )
    assert error.metadata == {}
    assert str(error) == "CANCELLED: cancelled"
