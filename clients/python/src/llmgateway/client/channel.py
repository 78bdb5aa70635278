"""Channel options (retry service config, message size) and per-call settings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from llmgateway.client.errors import REQUEST_ID_KEY
from llmgateway.v1 import gateway_service_pb2

#: Default deadline of every call, in seconds: the gateway's own default
#: (`server.default_deadline_s`), so a call the gateway would finish is not
#: cut short by the client.
DEFAULT_TIMEOUT_S = 300.0
#: The gateway's default largest message (its `server.max_message_bytes`).
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Attempts per call (first try included) when UNAVAILABLE is retried.
DEFAULT_MAX_ATTEMPTS = 4

SERVICE_NAME = gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name

# gRPC core caps maxAttempts at 5; a smaller configured value is honoured.
_MAX_ATTEMPTS_LIMIT = 5


def service_config(*, retry_unavailable: bool, max_attempts: int) -> str:
    """The channel's default service config as JSON.

    Retries are done by gRPC itself (gRFC A6): it retries only before any
    response message arrived, so a stream is never replayed after its first
    delta, and the call's deadline bounds all attempts together.
    """
    method_config: dict[str, Any] = {"name": [{"service": SERVICE_NAME}]}
    if retry_unavailable:
        if not 2 <= max_attempts <= _MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"max_attempts must be 2 to {_MAX_ATTEMPTS_LIMIT}, got {max_attempts}")
        method_config["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": "0.2s",
            "maxBackoff": "5s",
            "backoffMultiplier": 2,
            # Only UNAVAILABLE: the gateway already fell back across targets,
            # and every other code is either final or needs the caller's say.
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method_config]})


def channel_options(
    *,
    retry_unavailable: bool,
    max_attempts: int,
    max_message_bytes: int,
    extra: Sequence[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """gRPC channel arguments for a gateway client; `extra` ones come last and win."""
    if max_message_bytes <= 0:
        raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
    return [
        ("grpc.enable_retries", 1 if retry_unavailable else 0),
        (
            "grpc.service_config",
            service_config(retry_unavailable=retry_unavailable, max_attempts=max_attempts),
        ),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        *extra,
    ]


def channel_credentials(
    *, secure: bool, credentials: grpc.ChannelCredentials | None
) -> grpc.ChannelCredentials | None:
    """TLS credentials for the channel, or None for a plaintext channel."""
    if credentials is not None:
        return credentials
    return grpc.ssl_channel_credentials() if secure else None


@dataclass(frozen=True)
class CallSettings:
    """What every call of one client carries: the API key and the default deadline."""

    # Kept out of repr so the key never lands in a log line or a traceback.
    api_key: str | None = field(repr=False)
    timeout: float | None

    def metadata(self, request_id: str | None) -> tuple[tuple[str, str], ...]:
        """Request metadata: `authorization: Bearer <key>` and `x-request-id`."""
        pairs: list[tuple[str, str]] = []
        if self.api_key:
            pairs.append(("authorization", f"Bearer {self.api_key}"))
        if request_id:
            pairs.append((REQUEST_ID_KEY, request_id))
        return tuple(pairs)

    def deadline(self, timeout: float | None) -> float | None:
        """The per-call timeout when given, else the client's default."""
        return self.timeout if timeout is None else timeout
