"""Fixtures of the routing tests: a fake clock, a router factory, and a leak check."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.routing.router import Router
from tests.routing.fakes import FakeClock

MakeRouter = Callable[..., Router]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_router(clock: FakeClock) -> AsyncIterator[MakeRouter]:
    """Build routers on the fake clock with a seeded rng; all are closed afterwards."""
    made: list[Router] = []

    def build(snap: ConfigSnapshot, providers: Mapping[str, Provider], **kw: Any) -> Router:
        kw.setdefault("clock", clock)
        kw.setdefault("rng", random.Random(7))
        router = Router(snap, providers, **kw)
        made.append(router)
        return router

    yield build
    for router in made:
        await router.aclose()


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves an asyncio task running behind it."""
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"tasks left behind: {leaked}"


@pytest.fixture(autouse=True)
def _loop_watch(no_slow_callbacks: None) -> None:
    """Routing must never block the event loop either (see loop_watch)."""
