"""Fixtures: a fake GatewayService on a real grpc.aio server, in this loop or a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from .fake_gateway import FakeGateway, ServerThread, start_server


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def threaded_target(fake: FakeGateway) -> Iterator[str]:
    """The fake served from a background thread's loop, for the blocking client."""
    server = ServerThread(fake)
    target = server.start()
    try:
        yield target
    finally:
        server.stop()


@pytest.fixture
async def aio_target(fake: FakeGateway) -> AsyncIterator[str]:
    """The fake served on the test's own event loop, for the asyncio client."""
    server, target = await start_server(fake)
    try:
        yield target
    finally:
        await server.stop(grace=None)
