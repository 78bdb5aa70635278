"""ClientBase: the constructor and call settings shared by both clients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from llmgateway.client.channel import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT_S,
    CallSettings,
    channel_credentials,
    channel_options,
)


class ClientBase:
    """Settings common to GatewayClient and AsyncGatewayClient."""

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        secure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        retry_unavailable: bool = True,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Prepare a channel to the gateway; it connects lazily, on the first call.

        Args:
            target: `host:port` of the gateway, or any gRPC target URI.
            api_key: Sent as `authorization: Bearer <key>` on every call.
            timeout: Default deadline per call in seconds (300: the gateway's own
                default); None for none. Each call may give its own.
            secure: Use TLS with the system's root certificates.
            credentials: TLS credentials (mutual TLS, private CA); implies TLS.
            retry_unavailable: Let gRPC retry calls that fail with UNAVAILABLE.
            max_attempts: Attempts per call with retries on, 2 to 5.
            max_message_bytes: Largest message sent or received.
            options: Extra gRPC channel arguments; they override the above.
        """
        self.target = target
        self._settings = CallSettings(api_key=api_key, timeout=timeout)
        self._channel_options = channel_options(
            retry_unavailable=retry_unavailable,
            max_attempts=max_attempts,
            max_message_bytes=max_message_bytes,
            extra=options,
        )
        self._channel_credentials = channel_credentials(secure=secure, credentials=credentials)
        self._open_channel()

    def _open_channel(self) -> None:
        """Create the channel and the stub (sync or asyncio)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"

    def _call(self, timeout: float | None, request_id: str | None) -> dict[str, Any]:
        """The keyword arguments of one stub call: deadline and metadata."""
        return {
            "timeout": self._settings.deadline(timeout),
            "metadata": self._settings.metadata(request_id),
        }
