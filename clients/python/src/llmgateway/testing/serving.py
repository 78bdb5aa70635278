"""Real grpc.aio servers on a free loopback port for a FakeGateway: in this loop or a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc
import grpc.aio

from llmgateway.testing.fake_gateway import FakeGateway
from llmgateway.v1 import gateway_service_pb2_grpc

# Bounds start and stop of the threaded server, so a broken test fails instead of hanging.
_THREAD_CALL_TIMEOUT_S = 10.0


async def start_server(
    servicer: FakeGateway, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, str]:
    """A started grpc.aio server on a free loopback port; returns it and its target."""
    server = grpc.aio.server()
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)
    address = "127.0.0.1:0"
    port = (
        server.add_secure_port(address, credentials)
        if credentials is not None
        else server.add_insecure_port(address)
    )
    await server.start()
    return server, f"127.0.0.1:{port}"


@asynccontextmanager
async def serve(
    servicer: FakeGateway, credentials: grpc.ServerCredentials | None = None
) -> AsyncIterator[str]:
    """Serve the fake on the running event loop, for AsyncGatewayClient; yields the target."""
    server, target = await start_server(servicer, credentials)
    try:
        yield target
    finally:
        await server.stop(grace=None)


@contextmanager
def serve_in_thread(servicer: FakeGateway) -> Iterator[str]:
    """Serve the fake from a daemon thread's event loop, for GatewayClient; yields the target."""
    server = ServerThread(servicer)
    target = server.start()
    try:
        yield target
    finally:
        server.stop()


class ServerThread:
    """Runs the aio server on its own event loop in a daemon thread, for sync clients."""

    def __init__(self, servicer: FakeGateway) -> None:
        self._servicer = servicer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=_THREAD_CALL_TIMEOUT_S)

    def start(self) -> str:
        """Start the thread and the server; the target to connect to."""
        self._thread.start()
        self._server, target = self._run(start_server(self._servicer))
        return str(target)

    def stop(self) -> None:
        """Stop the server (calls in flight are cancelled), then the thread."""
        try:
            if self._server is not None:
                self._run(self._server.stop(grace=None))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_THREAD_CALL_TIMEOUT_S)
            self._loop.close()
