"""The event-loop watch of the service and routing tests catches what blocks the loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.loop_watch import LoopWatch


async def _under_watch(body: Any) -> list[str]:
    watch = LoopWatch(0.05)
    original: Any = asyncio.Handle._run
    asyncio.Handle._run = watch.wrap(original)  # type: ignore[method-assign]
    try:
        await asyncio.get_running_loop().create_task(body())
    finally:
        asyncio.Handle._run = original  # type: ignore[method-assign]
    return watch.seen


async def test_a_blocking_call_is_caught() -> None:
    async def blocks() -> None:
        time.sleep(0.25)  # a synchronous Redis or DNS call looks like this to the loop

    seen = await _under_watch(blocks)
    assert len(seen) == 1
    assert "running test_a_blocking_call_is_caught.<locals>.blocks" in seen[0]


async def test_a_cpu_hog_is_caught() -> None:
    async def computes() -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.1:
            pass

    assert len(await _under_watch(computes)) == 1


async def test_short_steps_pass() -> None:
    async def polite() -> None:
        for _ in range(20):
            await asyncio.sleep(0.005)

    assert await _under_watch(polite) == []
