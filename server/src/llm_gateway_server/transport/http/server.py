"""The HTTP facade's server: one aiohttp application in the gateway's process and loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from llm_gateway_server.gateway import Gateway
from llm_gateway_server.telemetry.rpc import RpcTelemetry
from llm_gateway_server.transport.http.calls import CallFailed, GatewayCalls
from llm_gateway_server.transport.http.errors import HttpError
from llm_gateway_server.transport.http.health_routes import HealthRoutes
from llm_gateway_server.transport.http.ollama_routes import OllamaRoutes
from llm_gateway_server.transport.http.openai_routes import OpenAIRoutes
from llm_gateway_server.transport.http.responses import json_response

logger = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _render(path: str, error: HttpError, request_id: str | None) -> web.Response:
    # Ollama's clients read {"error": "..."}; everything else gets OpenAI's error object.
    body = error.ollama_body() if path.startswith("/api/") else error.openai_body()
    headers = error.headers
    if request_id:
        headers["x-request-id"] = request_id
    return json_response(body, status=error.status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CallFailed as exc:
        return _render(request.path, exc.error, exc.request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own answers (unknown path, wrong method) in the facade's error format.
        reason = "ROUTE_NOT_FOUND" if exc.status == 404 else "INVALID_FIELD"
        message = f"{request.method} {request.path}: {exc.reason}"
        return _render(request.path, HttpError(exc.status, message, reason), None)


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 hosts may be bracketed) to a host and port."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class HttpFacade:
    """The OpenAI- and Ollama-compatible HTTP server over a ``Gateway``."""

    def __init__(
        self,
        gateway: Gateway,
        telemetry: RpcTelemetry,
        listen: str,
        *,
        reuse_port: bool = False,
    ) -> None:
        self.calls = GatewayCalls(gateway, telemetry)
        self._host, self.port = parse_listen(listen)
        self._reuse_port = reuse_port
        self._runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT`` as bound (the real port once started)."""
        return f"{self._host}:{self.port}"

    def application(self) -> web.Application:
        """The aiohttp application (routes and the error middleware)."""
        # Bodies over max_message_bytes are refused by aiohttp while reading, chunked or not.
        app = web.Application(
            middlewares=[_errors],
            client_max_size=self.calls.config.server.max_message_bytes,
        )
        app.add_routes(OpenAIRoutes(self.calls).routes())
        app.add_routes(OllamaRoutes(self.calls).routes())
        app.add_routes(HealthRoutes(self.calls).routes())
        return app

    async def start(self) -> int:
        """Listen; returns the bound port (the real one when the config said 0)."""
        # handler_cancellation: a client that disconnects cancels its handler, and with it
        # the upstream call, at once (aiohttp's default lets the handler run on).
        runner = web.AppRunner(
            self.application(),
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=self.calls.config.server.shutdown_grace_s,
        )
        await runner.setup()
        site = web.TCPSite(
            runner, self._host, self.port, reuse_address=True, reuse_port=self._reuse_port or None
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        logger.info("HTTP (OpenAI and Ollama compatible) on %s:%d", self._host, self.port)
        return self.port

    def drain(self) -> None:
        """Refuse new calls with 503 and report not ready; calls in flight go on."""
        self.calls.drain()

    async def stop(self) -> None:
        """Close the port; calls in flight get up to ``server.shutdown_grace_s`` to finish."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
