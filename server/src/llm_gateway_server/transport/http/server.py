"""The HTTP facade's server: one aiohttp application in the gateway's process and loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from llm_gateway_server.gateway import Gateway
from llm_gateway_server.pipeline import CallPipeline
from llm_gateway_server.transport.http.calls import CallFailed, GatewayCalls
from llm_gateway_server.transport.http.errors import HttpError
from llm_gateway_server.transport.http.health_routes import HealthRoutes
from llm_gateway_server.transport.http.ollama_routes import OllamaRoutes
from llm_gateway_server.transport.http.openai_routes import OpenAIRoutes
from llm_gateway_server.transport.http.responses import json_response

logger = logging.getLogger(__name__)

#: Seconds aiohttp gives the calls still running when the grace is over before cancelling them.
_CANCEL_AFTER_S = 0.05

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _render(path: str, error: HttpError, request_id: str | None) -> web.Response:
    # Ollama's clients read {"error": "..."}; everything else gets OpenAI's error object.
    body = error.ollama_body() if path.startswith("/api/") else error.openai_body()
    headers = error.headers
    if request_id:
        headers["x-request-id"] = request_id
    return json_response(body, status=error.status, headers=headers)


class _InFlight:
    """Counts requests being handled, so a stop can wait for them (bounded by the grace)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if not self.count:
            self._idle.set()

    async def wait_idle(self, grace: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()


def _middleware(in_flight: _InFlight) -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
        in_flight.enter()
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
        finally:
            in_flight.leave()

    return errors


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 hosts may be bracketed) to a host and port."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class HttpFacade:
    """The OpenAI- and Ollama-compatible HTTP server over a ``Gateway``."""

    def __init__(
        self,
        gateway: Gateway,
        pipeline: CallPipeline,
        listen: str,
        *,
        reuse_port: bool = False,
    ) -> None:
        self.calls = GatewayCalls(gateway, pipeline)
        self._host, self.port = parse_listen(listen)
        self._reuse_port = reuse_port
        self._runner: web.AppRunner | None = None
        self._in_flight = _InFlight()

    @property
    def address(self) -> str:
        """``HOST:PORT`` as bound (the real port once started)."""
        return f"{self._host}:{self.port}"

    def application(self) -> web.Application:
        """The aiohttp application (routes and the error middleware)."""
        # Bodies over max_message_bytes are refused by aiohttp while reading, chunked or not.
        app = web.Application(
            middlewares=[_middleware(self._in_flight)],
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
            # stop() waits for calls in flight itself, up to its grace; what is left then
            # is cancelled after this (aiohttp reads 0 as "wait forever").
            shutdown_timeout=_CANCEL_AFTER_S,
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

    async def stop(self, grace: float) -> None:
        """Close the port; calls in flight get up to ``grace`` seconds, then are cancelled."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for site in list(runner.sites):
            await site.stop()
        await self._in_flight.wait_idle(grace)
        await runner.cleanup()
