"""Fixtures: the shipped fake GatewayService (llmgateway.testing), in this loop or a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from llmgateway.testing import FakeGateway, serve, serve_in_thread


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def threaded_target(fake: FakeGateway) -> Iterator[str]:
    """The fake served from a background thread's loop, for the blocking client."""
    with serve_in_thread(fake) as target:
        yield target


@pytest.fixture
async def aio_target(fake: FakeGateway) -> AsyncIterator[str]:
    """The fake served on the test's own event loop, for the asyncio client."""
    async with serve(fake) as target:
        yield target
