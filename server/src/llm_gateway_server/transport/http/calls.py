"""The one adapter between the HTTP facades and the call pipeline (``Gateway`` + telemetry).

Every use of ``Gateway``'s and ``RpcTelemetry``'s API by the HTTP transport is here: request
id, auth, deadline, the RPC scope, ending it with a status, and the core calls. When the
transport-agnostic pipeline lands, this module is what switches to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from llm_gateway_server.config.model import GatewayConfig
from llm_gateway_server.core.errors import GatewayError, ShuttingDown
from llm_gateway_server.core.types import (
    CallContext,
    ChatDelta,
    ChatRequest,
    EmbedRequest,
    Task,
)
from llm_gateway_server.gateway import ChatOutcome, EmbedOutcome, Gateway, StreamEnd
from llm_gateway_server.routing.views import HealthView, RouteView
from llm_gateway_server.telemetry.rpc import RpcScope, RpcTelemetry
from llm_gateway_server.transport.http.errors import HttpError, from_gateway_error, internal_error
from llm_gateway_server.transport.status import status_code

logger = logging.getLogger(__name__)


class CallFailed(Exception):
    """A call ended with an error before any response byte was sent; the facade renders it."""

    def __init__(self, error: HttpError, request_id: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.request_id = request_id


def _metadata(request: web.Request) -> tuple[tuple[str, str], ...]:
    # Headers play the part of gRPC invocation metadata (lower-case keys): authorization,
    # x-request-id, traceparent and x-llm-gateway-caller reach the pipeline the same way.
    return tuple((key.lower(), value) for key, value in request.headers.items())


@dataclass(slots=True)
class Call:
    """One HTTP call in the pipeline: its telemetry scope and its core context."""

    scope: RpcScope
    ctx: CallContext

    @property
    def request_id(self) -> str:
        """The request id (the caller's ``x-request-id`` when it was a plain token)."""
        return self.scope.request_id

    @property
    def route(self) -> str:
        """The resolved route, once the core has resolved it."""
        return self.scope.route

    def first_token(self) -> None:
        """The first streamed delta is leaving the gateway."""
        self.scope.first_token()

    def ok(self) -> None:
        """End the call as answered."""
        self.scope.end("OK")

    def cancelled(self) -> None:
        """End the call as cancelled by the client."""
        self.scope.end("CANCELLED")

    def failed(self, exc: BaseException) -> HttpError:
        """End the call with ``exc``; the error to send (a generic one for a bug)."""
        return _end_failed(self.scope, exc)


def _end_failed(scope: RpcScope, exc: BaseException) -> HttpError:
    if isinstance(exc, GatewayError):
        attempts = getattr(exc, "attempts", None)
        if attempts:
            # The fallback trace of a failed call still belongs in its log line.
            scope.attempts = len(attempts)
            scope.fallbacks = max(len(attempts) - 1, 0)
        scope.end(status_code(exc).name, error_reason=exc.reason, error_message=exc.message)
        return from_gateway_error(exc)
    logger.error("unexpected error in request %s", scope.request_id, exc_info=exc)
    scope.end("INTERNAL", error_reason="INTERNAL")
    return internal_error(scope.request_id)


class GatewayCalls:
    """Opens calls and runs the core's operations for the HTTP facades."""

    def __init__(self, gateway: Gateway, telemetry: RpcTelemetry) -> None:
        self._gateway = gateway
        self._telemetry = telemetry
        self.draining = False

    @property
    def config(self) -> GatewayConfig:
        """The config in force for calls starting now."""
        return self._gateway.snapshot.config

    def drain(self) -> None:
        """Refuse new calls (503, SHUTTING_DOWN); calls in flight go on."""
        self.draining = True

    @contextlib.asynccontextmanager
    async def call(self, method: str, request: web.Request) -> AsyncIterator[Call]:
        """One call: scope, auth and deadline; errors become ``CallFailed``.

        Args:
            method: The RPC it corresponds to (``Chat``, ``StreamChat``, ``Embed``, ...), so
                metrics and log lines are the same whichever transport served it.
            request: The HTTP request.
        """
        metadata = _metadata(request)
        scope = self._telemetry.start(method, metadata)
        try:
            if self.draining:
                raise ShuttingDown("the server is shutting down; retry on another replica")
            principal = await self._gateway.authenticate(metadata)
            deadline = time.monotonic() + self.config.server.default_deadline_s
            call = Call(scope, CallContext(scope.request_id, deadline, principal))
            yield call
            call.ok()
        except asyncio.CancelledError:
            scope.end("CANCELLED")
            raise
        except CallFailed:
            raise
        except BaseException as exc:
            raise CallFailed(_end_failed(scope, exc), scope.request_id) from None

    async def chat(self, call: Call, request: ChatRequest) -> ChatOutcome:
        """One complete answer."""
        return await self._gateway.chat(request, call.ctx, call.scope)

    def stream(
        self, call: Call, request: ChatRequest
    ) -> AsyncGenerator[ChatDelta | StreamEnd, None]:
        """Deltas as they arrive, then one ``StreamEnd``."""
        return self._gateway.stream(request, call.ctx, call.scope)

    async def embed(self, call: Call, request: EmbedRequest) -> EmbedOutcome:
        """One vector per input."""
        return await self._gateway.embed(request, call.ctx, call.scope)

    def models(self, call: Call, task: Task | None = None) -> list[RouteView]:
        """The routes this caller may use."""
        return self._gateway.list_models(call.ctx.principal, task)

    def health(self) -> HealthView:
        """Routing's live health view."""
        return self._gateway.health()

    def ready(self) -> bool:
        """Readiness as grpc.health.v1 reports it: routing ready and not draining."""
        return not self.draining and self._gateway.health().ready
