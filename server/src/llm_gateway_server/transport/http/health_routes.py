"""Probes and the facade's description: /healthz, /readyz, /health, /openapi.json."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from aiohttp import web

from llm_gateway_server.transport.http.calls import GatewayCalls
from llm_gateway_server.transport.http.openapi import openapi_document
from llm_gateway_server.transport.http.responses import json_response


def _plain(value: Any) -> Any:
    # dataclasses.asdict keeps enums and datetimes; JSON wants their names and ISO text.
    if isinstance(value, enum.Enum):
        return value.name.lower() if isinstance(value.value, int) else value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class HealthRoutes:
    """Liveness, readiness, the Health RPC's summary, and the OpenAPI document."""

    def __init__(self, calls: GatewayCalls) -> None:
        self._calls = calls
        self._openapi: dict[str, Any] | None = None

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes."""
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/health", self.health),
            web.get("/openapi.json", self.openapi),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness: the process serves HTTP (restarting it would not help otherwise)."""
        return json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Readiness, as ``llmgateway.v1.GatewayService`` in grpc.health.v1: 200 or 503."""
        if self._calls.ready():
            return json_response({"status": "SERVING"})
        return json_response({"status": "NOT_SERVING"}, status=503)

    async def health(self, request: web.Request) -> web.StreamResponse:
        """The Health RPC's per-route, per-target and per-provider summary as JSON.

        Like the Health RPC it needs a key when auth is on (it names providers and their
        last errors); the probes above need none.
        """
        async with self._calls.call("Health", request) as call:
            view = self._calls.health()
            body = _plain(dataclasses.asdict(view))
            # The privacy router answered {"status": "ok"}; its callers keep working.
            body["status"] = "ok" if view.ready else "degraded"
            return json_response(body, headers={"x-request-id": call.request_id})

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 description of the facade, generated from its pydantic models."""
        if self._openapi is None:
            self._openapi = openapi_document()
        return json_response(self._openapi)
