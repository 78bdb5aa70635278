"""GatewayError: a failed gateway call with its google.rpc details decoded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

import grpc
from google.rpc.error_details_pb2 import ErrorInfo, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status

#: The response metadata key carrying the request id (sent and received).
REQUEST_ID_KEY = "x-request-id"

Metadata = tuple[tuple[str, str | bytes], ...]

_Detail = TypeVar("_Detail", ErrorInfo, RetryInfo)


class GatewayError(Exception):
    """A gateway call that ended with a non-OK gRPC status.

    Attributes:
        code: The canonical gRPC status code.
        message: The status message (gRPC "details" string).
        reason: `ErrorInfo.reason`, such as `ROUTE_NOT_FOUND` or `RATE_LIMITED`
            (see `llmgateway.v1.ErrorReason`); empty when the status had none,
            for example a deadline that passed in the client.
        domain: `ErrorInfo.domain` (`llm-gateway` for the gateway's errors).
        metadata: `ErrorInfo.metadata`: dynamic values such as `field` or `route`.
        retry_after: `RetryInfo.retry_delay` in seconds, when the gateway says
            retrying later makes sense; otherwise None.
        request_id: The request id: from the response metadata, else from
            `ErrorInfo.metadata["request_id"]`, else the one the caller sent;
            empty when none is known.
        status: The whole `google.rpc.Status` (for `BadRequest` and other
            details), or None when the call carried no rich status.
        trailing_metadata: The call's trailing metadata.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        request_id: str = "",
        status: Status | None = None,
        trailing_metadata: Metadata = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_after = retry_after
        self.request_id = request_id
        self.status = status
        self.trailing_metadata = trailing_metadata

    def __str__(self) -> str:
        parts = [f"{self.code.name}: {self.message}"]
        if self.reason:
            parts.append(f"reason={self.reason}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"GatewayError(code={self.code.name}, reason={self.reason!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, *, request_id: str = "") -> GatewayError:
        """Build a GatewayError from a failed call of the sync or the asyncio API.

        Args:
            error: The exception gRPC raised; for both APIs it is also the call,
                with `code()`, `details()` and the metadata.
            request_id: The `x-request-id` the caller sent, used when the
                response metadata carries none.
        """
        code = _call_code(error)
        trailing = _pairs(_metadata_of(error, "trailing_metadata"))
        initial = _pairs(_metadata_of(error, "initial_metadata"))
        status = _rich_status(error)
        info = _unpack(status, ErrorInfo)
        retry = _unpack(status, RetryInfo)
        sent_back = (
            _find(trailing, REQUEST_ID_KEY)
            or _find(initial, REQUEST_ID_KEY)
            or (info.metadata.get("request_id", "") if info is not None else "")
        )
        return cls(
            code,
            _details(error),
            reason=info.reason if info is not None else "",
            domain=info.domain if info is not None else "",
            metadata=dict(info.metadata) if info is not None else None,
            retry_after=(
                retry.retry_delay.ToTimedelta().total_seconds() if retry is not None else None
            ),
            request_id=sent_back or request_id,
            status=status,
            trailing_metadata=trailing,
        )


@contextmanager
def gateway_errors(request_id: str | None) -> Iterator[None]:
    """Turn a `grpc.RpcError` raised inside the block into a GatewayError.

    Works around awaits as well, so the sync and the asyncio client share it.
    """
    try:
        yield
    except grpc.RpcError as error:
        raise GatewayError.from_rpc_error(error, request_id=request_id or "") from error


def _call_code(error: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(error, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    value = details() if callable(details) else None
    return value if isinstance(value, str) else ""


def _metadata_of(error: grpc.RpcError, name: str) -> object:
    getter = getattr(error, name, None)
    return getter() if callable(getter) else None


def _pairs(metadata: object) -> Metadata:
    """Normalize sync (tuple of pairs) and aio (`grpc.aio.Metadata`) metadata."""
    if not isinstance(metadata, Iterable):
        return ()
    pairs: list[tuple[str, str | bytes]] = []
    for item in metadata:
        if isinstance(item, tuple) and len(item) == 2:
            key, value = item
            if isinstance(key, str) and isinstance(value, str | bytes):
                pairs.append((key, value))
    return tuple(pairs)


def _find(metadata: Metadata, key: str) -> str:
    for name, value in metadata:
        if name == key and isinstance(value, str):
            return value
    return ""


def _rich_status(error: grpc.RpcError) -> Status | None:
    try:
        status = rpc_status.from_call(error)
    except (ValueError, AttributeError, TypeError):
        # A details trailer that contradicts the call's own status (or no call
        # at all) is not trustworthy; keep the plain code and message.
        return None
    return status if isinstance(status, Status) else None


def _unpack(status: Status | None, kind: type[_Detail]) -> _Detail | None:
    """The first detail of the given type, as google.rpc clients read it."""
    if status is None:
        return None
    for detail in status.details:
        found = kind()
        # Unpack checks the type URL and says whether it matched.
        if detail.Unpack(found):
            return found
    return None
