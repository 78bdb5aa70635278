"""The one adapter between the HTTP facades and the call pipeline (``pipeline.CallPipeline``).

Every HTTP call goes through ``pipeline.begin/open/close`` exactly as a gRPC call does:
request id, deadline, auth, the caller, the call record and how it ends live there. This
module only turns HTTP headers into the pipeline's metadata pairs and a failed call into the
facade's error object.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from llm_gateway_server.config.model import GatewayConfig
from llm_gateway_server.core.calls import CallRecord
from llm_gateway_server.core.errors import GatewayError
from llm_gateway_server.core.types import ChatRequest, EmbedRequest, Task
from llm_gateway_server.gateway import ChatOutcome, EmbedOutcome, Gateway
from llm_gateway_server.pipeline import CallPipeline
from llm_gateway_server.routing.views import HealthView, RouteView
from llm_gateway_server.streams import GatewayStream
from llm_gateway_server.transport.http.errors import HttpError, from_gateway_error, internal_error


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


def http_error(exc: BaseException, request_id: str) -> HttpError:
    """The facade's error for ``exc`` (a generic 500 for anything but a core error)."""
    if isinstance(exc, GatewayError):
        return from_gateway_error(exc)
    return internal_error(request_id)


@dataclass(slots=True)
class Call:
    """One HTTP call: its record in the call pipeline."""

    record: CallRecord

    @property
    def request_id(self) -> str:
        """The request id (the caller's ``x-request-id`` when it was a plain token)."""
        return self.record.request_id

    @property
    def route(self) -> str:
        """The resolved route, once the core has resolved it."""
        return self.record.route

    def first_token(self) -> None:
        """The first streamed delta is leaving the gateway."""
        self.record.first_token()


class GatewayCalls:
    """Opens calls through the pipeline and runs the core's operations for the facades."""

    def __init__(self, gateway: Gateway, pipeline: CallPipeline) -> None:
        self._gateway = gateway
        self._pipeline = pipeline
        self.draining = False

    @property
    def config(self) -> GatewayConfig:
        """The config in force for calls starting now."""
        return self._gateway.snapshot.config

    def drain(self) -> None:
        """Readiness turns false; the pipeline refuses new calls (503, SHUTTING_DOWN)."""
        self.draining = True
        self._pipeline.drain()

    @contextlib.asynccontextmanager
    async def call(self, method: str, request: web.Request) -> AsyncIterator[Call]:
        """One call: begin, open (auth, caller), close; errors become ``CallFailed``.

        Args:
            method: The RPC it corresponds to (``Chat``, ``StreamChat``, ``Embed``, ...), so
                metrics and log lines are the same whichever transport served it.
            request: The HTTP request.
        """
        metadata = _metadata(request)
        pipeline = self._pipeline
        record = pipeline.begin("http", method, metadata, None)
        try:
            await pipeline.open(record, metadata)
            yield Call(record)
        except asyncio.CancelledError as exc:
            await pipeline.close(record, exc)
            raise
        except CallFailed:
            raise
        except BaseException as exc:
            await pipeline.close(record, exc)
            raise CallFailed(http_error(exc, record.request_id), record.request_id) from None
        else:
            await pipeline.close(record, None)

    async def close(self, call: Call, exc: BaseException | None) -> HttpError | None:
        """End ``call`` now (a stream that failed or was cut after it started)."""
        await self._pipeline.close(call.record, exc)
        return None if exc is None else http_error(exc, call.request_id)

    async def chat(self, call: Call, request: ChatRequest) -> ChatOutcome:
        """One complete answer."""
        return await self._gateway.chat(request, call.record)

    async def stream(self, call: Call, request: ChatRequest) -> GatewayStream:
        """A committed stream (fallback is over once this returns)."""
        return await self._gateway.stream(request, call.record)

    async def embed(self, call: Call, request: EmbedRequest) -> EmbedOutcome:
        """One vector per input."""
        return await self._gateway.embed(request, call.record)

    def models(self, call: Call, task: Task | None = None) -> list[RouteView]:
        """The routes this caller may use."""
        return self._gateway.list_models(call.record.principal, task)

    def health(self) -> HealthView:
        """Routing's live health view."""
        return self._gateway.health()

    def ready(self) -> bool:
        """Readiness as grpc.health.v1 reports it: routing ready and not draining."""
        return not self.draining and self._gateway.health().ready
